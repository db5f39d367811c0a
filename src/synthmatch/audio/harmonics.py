"""The harmonics of a pitched note over time: how loud each multiple of f0 is, from attack to release.

    analysis = analyse_harmonics(audio, sample_rate, f0_hz)
    analysis.amplitudes      # (n_frames, n_harmonics) linear amplitudes, frame i at analysis.times_s[i]
    analysis.harmonicity     # 0 (noise) .. 1 (all the energy at harmonics)

Each moment is one Hann-windowed FFT, 12 periods of f0 long (so neighbouring harmonics sit 12 bins
apart and do not smear into one another), zero-padded twice. Harmonic k's amplitude is the largest
bin within a quarter of f0 of k * f0, which tolerates a drifting pitch and the stretched partials of
real strings. The moments are spread evenly over the sounding part of the note: from the first
window that reaches 40 dB below the loudest to the last one above it.

The harmonicity is the share of the energy between f0/2 and the top harmonic that lies within two
(unpadded) bins of a harmonic peak, rescaled so that white noise, whose energy spreads evenly, scores
about 0 and a sum of harmonics 1; it is averaged over the moments weighted by their energy. It is
what a rule choosing a table made from the target can read (`synth.wavetables.harmonic_frame`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["HarmonicAnalysis", "analyse_harmonics", "DEFAULT_FRAMES", "MAX_HARMONICS"]

DEFAULT_FRAMES = 12
MAX_HARMONICS = 96
_PERIODS = 12  # window length in periods of f0
_MIN_WINDOW = 1024
_PAD = 2  # zero-padding factor of each FFT
_SEARCH = 0.25  # a harmonic's peak is looked for within this share of f0 around k * f0
_LOBE_BINS = 2  # unpadded bins either side of a peak that count as the harmonic's energy
_SOUNDING_DB = 40.0  # moments within this of the loudest window are analysed
_FLOOR_DB = 80.0  # harmonics this far below a frame's strongest are set to 0


@dataclass(frozen=True)
class HarmonicAnalysis:
    """Harmonic amplitudes of a note at several moments.

    Attributes:
        f0_hz: the fundamental analysed.
        times_s: (n_frames,) the centre of each moment, seconds from the start of the audio.
        amplitudes: (n_frames, n_harmonics) linear amplitude of harmonics 1..n_harmonics at each moment.
        levels_db: (n_frames,) RMS of each moment's window, dBFS.
        harmonicity: energy-weighted share of the energy at harmonics, 0 (noise) .. 1.
    """

    f0_hz: float
    times_s: np.ndarray
    amplitudes: np.ndarray
    levels_db: np.ndarray
    harmonicity: float

    @property
    def n_frames(self) -> int:
        return int(self.amplitudes.shape[0])

    @property
    def n_harmonics(self) -> int:
        return int(self.amplitudes.shape[1])

    def brightness(self) -> np.ndarray:
        """(n_frames,) the amplitude-weighted mean harmonic number of each moment (a spectral centroid in
        units of f0): higher is brighter."""
        k = np.arange(1, self.n_harmonics + 1)
        power = np.square(self.amplitudes)
        return (power @ k) / np.maximum(power.sum(axis=1), 1e-30)


def _n_harmonics(f0_hz: float, sample_rate: int, max_harmonics: int) -> int:
    below_nyquist = int((0.5 * sample_rate - _SEARCH * f0_hz) // f0_hz)
    return max(1, min(max_harmonics, below_nyquist))


def analyse_harmonics(
    audio: np.ndarray,
    sample_rate: int,
    f0_hz: float,
    n_frames: int = DEFAULT_FRAMES,
    max_harmonics: int = MAX_HARMONICS,
) -> HarmonicAnalysis:
    """Measure the harmonics of `audio` (a pitched note at `f0_hz`) at `n_frames` moments.

    Args:
        audio: (N,) mono audio, the whole note.
        sample_rate: its rate in Hz.
        f0_hz: its fundamental (`audio.pitch.estimate_pitch(...).f0_hz`).
        n_frames: moments measured, spread over the sounding part (fewer when the note is short).
        max_harmonics: harmonics measured, at most; fewer when the rest lie above Nyquist.
    Raises:
        ValueError: f0 not finite and positive, or audio empty or not finite.
    """
    a = np.asarray(audio, np.float64).reshape(-1)
    if not (math.isfinite(f0_hz) and 0 < f0_hz < sample_rate / 2):
        raise ValueError(f"f0 must be a frequency below Nyquist, got {f0_hz}")
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise ValueError("harmonic analysis needs finite, non-empty audio")
    if n_frames < 1 or max_harmonics < 1:
        raise ValueError(f"n_frames and max_harmonics must be >= 1, got {n_frames}, {max_harmonics}")
    window = max(_MIN_WINDOW, int(round(_PERIODS * sample_rate / f0_hz)))
    n_fft = 1 << int(math.ceil(math.log2(window * _PAD)))
    padded = np.concatenate([np.zeros(window // 2), a, np.zeros(window // 2)])
    hann = np.hanning(window)

    # the sounding part: window centres every ~10 ms whose RMS is within _SOUNDING_DB of the loudest
    hop = max(1, sample_rate // 100)
    centres = np.arange(0, a.size, hop)
    csum = np.concatenate([[0.0], np.cumsum(np.square(padded))])
    rms = np.sqrt((csum[centres + window] - csum[centres]) / window)
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (-_SOUNDING_DB / 20)) if rms.max() > 0 else centres[:1]
    first, last = centres[loud[0]], centres[loud[-1]]
    n = max(1, min(n_frames, (last - first) // hop + 1))
    at = np.round(np.linspace(first, last, n)).astype(np.int64)

    n_harm = _n_harmonics(f0_hz, sample_rate, max_harmonics)
    bin_hz = sample_rate / n_fft
    k = np.arange(1, n_harm + 1)
    search = max(1, int(round(_SEARCH * f0_hz / bin_hz)))
    lobe = _LOBE_BINS * _PAD
    lo_bin = int(0.5 * f0_hz / bin_hz)
    hi_bin = min(n_fft // 2, int(round((n_harm + 0.5) * f0_hz / bin_hz)))

    amplitudes = np.zeros((n, n_harm))
    levels = np.zeros(n)
    shares, energies = np.zeros(n), np.zeros(n)
    for i, c in enumerate(at):
        seg = padded[c : c + window]
        levels[i] = 10 * np.log10(max(float(np.mean(np.square(seg))), 1e-24))
        mag = np.abs(np.fft.rfft(seg * hann, n_fft)) * (2.0 / hann.sum())
        power = np.square(mag)
        counted = np.zeros(mag.size, bool)
        for j, centre in enumerate(np.round(k * f0_hz / bin_hz).astype(np.int64)):
            lo, hi = max(0, centre - search), min(mag.size, centre + search + 1)
            if lo >= hi:
                continue
            peak = lo + int(np.argmax(mag[lo:hi]))
            amplitudes[i, j] = mag[peak]
            counted[max(0, peak - lobe) : peak + lobe + 1] = True
        band = slice(lo_bin, hi_bin)
        total = float(power[band].sum())
        energies[i] = total
        if total > 0:
            # white noise puts the counted bins' share of the band in them: rescale that to 0
            chance = float(counted[band].mean())
            share = float(power[band][counted[band]].sum()) / total
            shares[i] = max(0.0, (share - chance) / max(1e-9, 1 - chance))
        strongest = amplitudes[i].max()
        if strongest > 0:
            amplitudes[i][amplitudes[i] < strongest * 10 ** (-_FLOOR_DB / 20)] = 0.0
    harmonicity = float(np.sum(shares * energies) / energies.sum()) if energies.sum() > 0 else 0.0
    return HarmonicAnalysis(
        f0_hz=float(f0_hz),
        times_s=at / float(sample_rate),
        amplitudes=amplitudes.astype(np.float32),
        levels_db=levels.astype(np.float32),
        harmonicity=harmonicity,
    )
