"""Spectral distances between sounds: the one place refinement, metrics and tests get them from.

All distances work on mono float audio at one sample rate and compare log-mel magnitudes from
`features.log_mel`, so they share the model's spectral front end. Lengths are matched by trimming to
the shorter signal (a renderer and a target of the same duration differ by at most a few samples).

`match_distance` is the distance between a target and its match that refinement minimises and
evaluation reports (`mel_l1`): the multi-scale log-mel L1 of the two sounds loudness-normalised, since a
user's recording level is arbitrary. `MultiScaleLogMel(target, sr, loudness_normalize=True)` computes
it against a fixed target whose spectra are computed once (6-10 ms per 4 s candidate on one core, a
tenth of a typical render: benchmarks/refine.py, "objective").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from synthmatch.audio.features import MelSettings, log_mel, normalize_loudness

__all__ = [
    "log_mel_l1",
    "multiscale_log_mel_l1",
    "MultiScaleLogMel",
    "scales_for_windows_ms",
    "match_distance",
    "match_lengths",
]


def match_lengths(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two sounds as flat float32 arrays cut to the shorter one's length (ValueError when one is empty)."""
    a = np.asarray(a, np.float32).reshape(-1)
    b = np.asarray(b, np.float32).reshape(-1)
    n = min(len(a), len(b))
    if n == 0:
        raise ValueError("cannot compare empty audio")
    return a[:n], b[:n]


def log_mel_l1(a: np.ndarray, b: np.ndarray, settings: MelSettings = MelSettings()) -> float:
    """Mean absolute difference of natural-log mel spectrograms (0 for identical audio)."""
    a, b = match_lengths(a, b)
    return float(np.mean(np.abs(log_mel(a, settings) - log_mel(b, settings))))


def scales_for_windows_ms(
    sample_rate: int, windows_ms: Sequence[float] = (10, 25, 100), n_mels: int = 64
) -> tuple[MelSettings, ...]:
    """Mel settings whose FFT windows are the powers of two closest to the given durations."""
    out = []
    for ms in windows_ms:
        n_fft = int(2 ** round(np.log2(max(16.0, sample_rate * ms / 1000.0))))
        bands = min(n_mels, n_fft // 8)  # keep bands wider than FFT bins at small windows
        out.append(MelSettings(sample_rate=sample_rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=bands))
    return tuple(out)


@dataclass
class MultiScaleLogMel:
    """Multi-scale log-mel L1 against a fixed target, with the target's spectra computed once.

    Args:
        target: mono target audio.
        sample_rate: its sample rate.
        windows_ms: analysis windows (about 10, 25 and 100 ms by default).
        loudness_normalize: compare the sounds at equal loudness (target and each candidate scaled to
            the same RMS): the `match_distance` refinement minimises.
    """

    target: np.ndarray
    sample_rate: int
    windows_ms: Sequence[float] = (10, 25, 100)
    loudness_normalize: bool = False

    def __post_init__(self) -> None:
        self.target = np.asarray(self.target, np.float32).reshape(-1)
        if self.loudness_normalize:
            self.target = normalize_loudness(self.target)
        self.scales = scales_for_windows_ms(self.sample_rate, self.windows_ms)
        # kept as tensors: a call stays in torch from the candidate's spectra to the mean (no copies back
        # to NumPy per scale), which is what makes it cheap next to a render
        self._target_specs = [log_mel(torch.from_numpy(self.target), s) for s in self.scales]

    def __call__(self, candidate: np.ndarray) -> float:
        cand, _ = match_lengths(candidate, self.target)
        if self.loudness_normalize:
            cand = normalize_loudness(cand)
        x = torch.from_numpy(cand)
        total = 0.0
        for s, tspec in zip(self.scales, self._target_specs):
            spec = log_mel(x, s)
            t = min(spec.shape[-1], tspec.shape[-1])
            total += float(spec[..., :t].sub_(tspec[..., :t]).abs_().mean())
        return total / len(self.scales)


def multiscale_log_mel_l1(
    a: np.ndarray, b: np.ndarray, sample_rate: int, windows_ms: Sequence[float] = (10, 25, 100)
) -> float:
    """Multi-scale log-mel L1 between two sounds (windows about 10/25/100 ms)."""
    a, b = match_lengths(a, b)
    return MultiScaleLogMel(b, sample_rate, windows_ms)(a)


def match_distance(target: np.ndarray, match: np.ndarray, sample_rate: int) -> float:
    """How far a match sounds from its target: multi-scale log-mel L1 at equal loudness (0 = identical)."""
    t, m = match_lengths(target, match)
    return MultiScaleLogMel(t, sample_rate, loudness_normalize=True)(m)
