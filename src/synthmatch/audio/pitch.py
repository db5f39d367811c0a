"""Pitch and timing of a one-shot note: MIDI note with a confidence, key-held time and release.

Matching renders the candidate presets at the target's own pitch and timing, so these estimates feed
prediction (the model's MIDI-note input), refinement and the final render.

Pitch is a subharmonic-summation estimate (Hermes 1988) on a peak-preserving log-frequency spectrum:
the long-term magnitude spectrum of the note's loud part is resampled to 1/48-octave bins, keeping the
largest FFT bin inside each, and every candidate f0 (MIDI 24-108) scores the weighted sum of the
spectrum at its harmonics minus the sum halfway between them. Subtracting the in-between positions
removes the octave errors of plain harmonic sums (f0/2 collects every harmonic of f0; 2 f0 loses the odd
ones), and taking the largest bin tolerates the smeared partials of unison-detuned supersaws and the
stretched ones of real strings. The winner is then refined from the exact frequencies of its first
partials (parabolic interpolation on the FFT), since the log grid alone can put a low sine 0.7
semitones off. The confidence is the harmonic contrast of the winner: how far its harmonics stand above
the spectrum between them (about 1 for a saw, 0.1-0.3 for noise and drums).

Inharmonic sounds whose partials share a common period get that period: the FM bell in examples/
(440 Hz carrier, 616 Hz modulator) has strong partials at 176, 440, 792 and 1056 Hz, all harmonics of
88 Hz, and is estimated at MIDI 41 rather than A4. That is deliberate: at MIDI 41 a Vital preset can
reproduce every one of those partials as a harmonic (at MIDI 69 the 176 Hz one is out of reach), and
refinement from init reaches a lower loss there (1.19 against 1.41 at MIDI 69, 300 evaluations);
`--midi-note` overrides it.

Timing comes from the RMS envelope (10 ms frames) of the whole note: the key is taken as released at the
last "knee" where a steady or gently decaying level turns into a fast fall, or else where it bends into
a slower one; sounds with no such knee (plucks, drums, notes cut off by the end of the file) are taken
as held to the end.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import asdict, dataclass

import numpy as np

from synthmatch.audio.features import stft_magnitude
from synthmatch.defaults import DEFAULT_SAMPLE_RATE

log = logging.getLogger(__name__)

__all__ = [
    "note_name",
    "PitchEstimate",
    "NoteTiming",
    "estimate_pitch",
    "estimate_timing",
    "hz_to_midi",
    "midi_to_hz",
    "FALLBACK_MIDI_NOTE",
    "PITCHED_CONFIDENCE",
]

FALLBACK_MIDI_NOTE = 60
# Harmonic contrast above which a sound counts as pitched (noise and drums measure 0.1-0.3, detuned
# supersaws and filtered notes 0.5 and above; see tests/inference/test_pitch.py).
PITCHED_CONFIDENCE = 0.4

_BINS_PER_OCTAVE = 48
_F_LO = 27.5  # A0: the lowest log-spectrum bin
_MIDI_MIN, _MIDI_MAX = 24, 108  # candidate range (C1 .. C8)
_N_HARMONICS = 24
_F_MAX = 10000.0  # harmonics above this are ignored (little pitch information, much noise)
_COMPRESSION = 0.5  # magnitude ** 0.5: weak partials count, but far less than in dB
_N_REFINE_HARMONICS = 8  # partials that fix the exact f0 (few: real strings stretch the higher ones)


def hz_to_midi(f_hz: float) -> float:
    return 69.0 + 12.0 * math.log2(f_hz / 440.0)


def midi_to_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(midi_note: int) -> str:
    """MIDI note name, MIDI 60 = C4 (Vital's and most DAWs' octave numbering): 57 -> "A3"."""
    return f"{_NOTE_NAMES[midi_note % 12]}{midi_note // 12 - 1}"


@dataclass(frozen=True)
class PitchEstimate:
    """The pitch of a note.

    Attributes:
        f0_hz: estimated fundamental (NaN when unpitched).
        midi: fractional MIDI pitch (NaN when unpitched).
        midi_note: the MIDI note to render at: round(midi), or FALLBACK_MIDI_NOTE when unpitched.
        confidence: harmonic contrast in [0, 1].
        pitched: confidence >= PITCHED_CONFIDENCE.
    """

    f0_hz: float
    midi: float
    midi_note: int
    confidence: float
    pitched: bool

    @property
    def cents_off(self) -> float:
        """How far the pitch is from the rendered note, in cents (0 when unpitched)."""
        return 0.0 if not self.pitched else 100.0 * (self.midi - self.midi_note)

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


@dataclass(frozen=True)
class NoteTiming:
    """When the key was released and how long the sound lasts.

    Attributes:
        duration_s: length of the analysed audio (what gets rendered).
        note_duration_s: seconds the key is held in the render.
        release_s: seconds from the key release until the sound falls 60 dB below its peak.
        held_to_end: True when no release was found (plucks, drums, notes cut off by the file's end).
    """

    duration_s: float
    note_duration_s: float
    release_s: float
    held_to_end: bool

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------
# pitch
def _loud_region(audio: np.ndarray, sample_rate: int, max_s: float = 1.5, min_s: float = 0.25) -> np.ndarray:
    """The part of the note that says most about its pitch: after the attack, where it is loud.

    Frames within 30 dB of the loudest one, skipping ~30 ms of attack transient, at least `min_s` long
    (short plucks need a long window to resolve low harmonics) and at most `max_s`.
    """
    frame = max(1, sample_rate // 100)
    n = len(audio) // frame
    if n < 3:
        return audio
    env = np.sqrt(np.mean(np.square(audio[: n * frame].reshape(n, frame), dtype=np.float64), axis=1))
    loud = np.flatnonzero(env >= env.max() * 10 ** (-30 / 20))
    start, end = int(loud[0]), int(loud[-1]) + 1
    start += min(3, max(0, (end - start) // 4))
    end = min(n, max(end, start + int(min_s * 100)), start + int(max_s * 100))
    return audio[start * frame : end * frame]


@functools.lru_cache(maxsize=8)
def _log_axis(sample_rate: int, n_fft: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-frequency bin edges mapped onto FFT bins: (centres_hz, first_fft_bin, last_fft_bin)."""
    f_hi = min(_F_MAX * 1.05, sample_rate / 2 * 0.95)
    n_bins = int(math.floor(_BINS_PER_OCTAVE * math.log2(f_hi / _F_LO)))
    centres = _F_LO * 2.0 ** (np.arange(n_bins) / _BINS_PER_OCTAVE)
    half = 2.0 ** (0.5 / _BINS_PER_OCTAVE)
    bin_hz = sample_rate / n_fft
    first = np.ceil(centres / half / bin_hz).astype(int)
    last = np.floor(centres * half / bin_hz).astype(int)
    return centres, first, last


def _fft_n(sample_rate: int) -> int:
    return 8192 * max(
        1, int(round(sample_rate / DEFAULT_SAMPLE_RATE))
    )  # ~0.19 s: resolves harmonics of MIDI 24


def _long_term_spectrum(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(n_fft // 2 + 1,) average STFT magnitude of the analysed region."""
    n_fft = _fft_n(sample_rate)
    x = audio.astype(np.float32)
    if len(x) < n_fft:  # one frame with the note in the middle of the window
        left = (n_fft - len(x)) // 2
        x = np.pad(x, (left, n_fft - len(x) - left))
    mag = stft_magnitude(x, n_fft, n_fft // 4, center=False)  # (F, T)
    return mag.mean(axis=1).astype(np.float64)


def _log_spectrum(spec: np.ndarray, sample_rate: int) -> np.ndarray:
    """Peak-preserving 1/48-octave magnitude spectrum, relative to its peak and compressed."""
    n_fft = _fft_n(sample_rate)
    centres, first, last = _log_axis(sample_rate, n_fft)
    fft_hz = np.arange(len(spec)) * sample_rate / n_fft
    # Narrow low bins: interpolate; wide high bins: the largest FFT bin inside them.
    out = np.interp(centres, fft_hz, spec)
    wide = last >= first
    if np.any(wide):
        # maximum over [first, last] for each wide bin, via a cumulative trick on sorted ranges
        idx = np.flatnonzero(wide)
        peaks = np.array([spec[first[i] : last[i] + 1].max() for i in idx])
        out[idx] = np.maximum(out[idx], peaks)
    peak = out.max()
    if peak <= 0:
        return np.zeros_like(out)
    return (out / peak) ** _COMPRESSION


@functools.lru_cache(maxsize=1)
def _comb() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k = np.arange(1, _N_HARMONICS + 1, dtype=np.float64)
    on = np.round(_BINS_PER_OCTAVE * np.log2(k)).astype(int)  # harmonic k of f0, in log bins
    off = np.round(_BINS_PER_OCTAVE * np.log2(k - 0.5)).astype(int)  # halfway below it
    weights = k**-0.6
    return on, off, weights


def _salience(logspec: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each candidate f0 bin: (salience, harmonic sum, in-between sum); NaN-free."""
    on, off, w = _comb()
    n = len(logspec)
    lo = int(round(_BINS_PER_OCTAVE * math.log2(midi_to_hz(_MIDI_MIN) / _F_LO)))
    hi = min(n - 1, int(round(_BINS_PER_OCTAVE * math.log2(midi_to_hz(_MIDI_MAX) / _F_LO))))
    cands = np.arange(lo, hi + 1)
    pad = np.concatenate([np.zeros(-off.min() + 1), logspec, np.zeros(on.max() + 1)])
    shift = -off.min() + 1
    pos_on = cands[:, None] + on[None, :] + shift  # (C, K)
    pos_off = cands[:, None] + off[None, :] + shift
    valid = (cands[:, None] + on[None, :]) < n  # harmonics inside the analysed band
    wk = np.where(valid, w[None, :], 0.0)
    harm = (pad[pos_on] * wk).sum(1)
    between = (pad[pos_off] * wk).sum(1)
    return cands, harm - between, harm


def _refine_f0(spec: np.ndarray, sample_rate: int, f0: float) -> float:
    """f0 from the exact frequencies of its first partials, where the log grid is too coarse.

    Below about MIDI 40 the FFT bins are wider than a quarter semitone and a sine's (or a sub bass's)
    pitch read off the 1/48-octave grid can be 0.7 semitones off. Each of the first 8 harmonics found
    near k * f0 (a local maximum within 40 dB of the strongest one) is located to a fraction of a bin by
    parabolic interpolation of the log magnitude; f0 is then the magnitude-weighted least-squares fit of
    f_k = k * f0. Without a usable harmonic the grid estimate is kept.
    """
    n_fft = _fft_n(sample_rate)
    bin_hz = sample_rate / n_fft
    log_mag = np.log(spec + 1e-12)
    floor = float(spec.max()) * 10 ** (-40 / 20)
    num = den = 0.0
    for k in range(1, _N_REFINE_HARMONICS + 1):
        fk = k * f0
        if fk >= min(_F_MAX, sample_rate / 2 * 0.95):
            break
        half = max(1.5 * bin_hz, fk * min(2 ** (1 / 12) - 1, 0.4 / k))  # a semitone, less than f0/2.5
        lo = max(1, int(math.floor((fk - half) / bin_hz)))
        hi = min(len(spec) - 2, int(math.ceil((fk + half) / bin_hz)))
        if hi <= lo:
            continue
        i = lo + int(np.argmax(spec[lo : hi + 1]))
        if spec[i] < floor or not (spec[i] >= spec[i - 1] and spec[i] >= spec[i + 1]):
            continue  # no partial here (or the window's edge is the top of a neighbour's slope)
        y0, y1, y2 = log_mag[i - 1], log_mag[i], log_mag[i + 1]
        denom = y0 - 2 * y1 + y2
        delta = float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5)) if denom < 0 else 0.0
        w = float(spec[i])
        num += w * k * (i + delta) * bin_hz
        den += w * k * k
    if den <= 0:
        return f0
    refined = num / den
    # never move further than the grid's own uncertainty (a semitone)
    return refined if abs(12 * math.log2(refined / f0)) <= 1.0 else f0


def estimate_pitch(audio: np.ndarray, sample_rate: int) -> PitchEstimate:
    """The MIDI pitch of a one-shot note and how sure the estimate is.

    Args:
        audio: (N,) mono audio (leading silence may remain; it is skipped).
        sample_rate: its sample rate in Hz.
    Returns:
        A PitchEstimate; unpitched sounds get `pitched=False` and `midi_note=FALLBACK_MIDI_NOTE`.
    """
    a = np.asarray(audio, np.float32).reshape(-1)
    if a.size < 256 or not np.any(a):
        return PitchEstimate(math.nan, math.nan, FALLBACK_MIDI_NOTE, 0.0, False)
    region = _loud_region(a, sample_rate)
    spec = _long_term_spectrum(region, sample_rate)
    logspec = _log_spectrum(spec, sample_rate)
    cands, sal, harm = _salience(logspec)
    best = int(np.argmax(sal))
    # Parabolic interpolation between neighbouring candidates for a sub-bin pitch.
    offset = 0.0
    if 0 < best < len(sal) - 1:
        y0, y1, y2 = sal[best - 1], sal[best], sal[best + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            offset = float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5))
    f0 = _refine_f0(spec, sample_rate, _F_LO * 2.0 ** ((cands[best] + offset) / _BINS_PER_OCTAVE))
    contrast = float(sal[best] / harm[best]) if harm[best] > 0 else 0.0
    confidence = float(np.clip(contrast, 0.0, 1.0))
    midi = hz_to_midi(f0)
    pitched = confidence >= PITCHED_CONFIDENCE
    if not pitched:
        return PitchEstimate(math.nan, math.nan, FALLBACK_MIDI_NOTE, confidence, False)
    note = int(np.clip(round(midi), 0, 127))
    return PitchEstimate(float(f0), float(midi), note, confidence, True)


# ---------------------------------------------------------------------------------------------------
# timing
def _envelope_db(audio: np.ndarray, sample_rate: int, frame_s: float = 0.01) -> tuple[np.ndarray, float]:
    frame = max(1, int(round(sample_rate * frame_s)))
    n = len(audio) // frame
    if n == 0:
        return np.full(1, -200.0), frame / sample_rate
    rms = np.sqrt(np.mean(np.square(audio[: n * frame].reshape(n, frame), dtype=np.float64), axis=1))
    return 20 * np.log10(rms + 1e-10), frame / sample_rate


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or len(x) < width:
        return x
    kernel = np.ones(width) / width
    padded = np.pad(x, (width // 2, width - 1 - width // 2), mode="edge")
    return np.convolve(padded, kernel, mode="valid")


# The release: a steady level (falling less than a third as fast as after, at most RELEASE_STEADY_DB_S)
# that bends into a fall of at least RELEASE_FALL_DB_S over the next RELEASE_WINDOW_S, never to come
# back within RELEASE_RETURN_DB of it (tremolo and vibrato wiggles do, a release does not).
RELEASE_WINDOW_S = 0.2
RELEASE_FALL_DB_S = 8.0
RELEASE_STEADY_DB_S = 20.0
RELEASE_RETURN_DB = 2.0


def _release_knee(env: np.ndarray, hop: float) -> int | None:
    """The frame where the key was released, or None when the level shows no release.

    Every frame from just after the attack's peak to RELEASE_WINDOW_S before the end is a candidate
    when it is within 40 dB of the peak, steady before and falling after (see the constants above), and
    the fall is final: the level, smoothed over 250 ms, never returns within RELEASE_RETURN_DB of it
    from 300 ms later on, and drops on to the end (12 dB, or at half the release rate). Of the
    candidates, the earliest whose bend (slope before minus slope after) is at least half the strongest
    wins: a release is the first sharp bend of the final fall, later bends within the release (a faster
    tail) are not. That frame is then moved to where the fall starts (`_break`). The last 100 ms are left
    out: a file's own fade-out is no release.
    """
    n = len(env) - int(round(0.1 / hop))
    w = int(round(RELEASE_WINDOW_S / hop))
    if n < 3 * w:
        return None
    env = env[:n]
    peak = float(env.max())
    first = int(np.argmax(env >= peak - 3.0))  # the attack's peak: the first within 3 dB of the top
    attack = first + int(np.argmax(env[first : first + int(round(0.1 / hop)) + 1]))
    slow = _smooth(env, int(round(0.25 / hop)))
    later_max = np.maximum.accumulate(slow[::-1])[::-1]  # loudest smoothed level from each frame on
    gap = int(round(0.3 / hop))
    candidates: list[tuple[int, float]] = []
    settle = int(round(0.05 / hop))  # the attack's own overshoot
    for i in range(attack + settle + max(1, w // 2), n - w):
        if env[i] < peak - 40.0:
            break
        wb = min(w, i - attack - settle)  # a short note has a short plateau
        before = (env[i] - env[i - wb]) / (wb * hop)
        after = (env[i + w] - env[i]) / (w * hop)
        steady = before > max(-40.0, min(-RELEASE_STEADY_DB_S, after / 3))
        if not steady or after >= -RELEASE_FALL_DB_S or before - after < RELEASE_FALL_DB_S:
            continue
        if i + gap < n and later_max[i + gap] > slow[i] - RELEASE_RETURN_DB:
            continue
        drop = env[i] - env[-1]
        if drop < 12.0 and env[-1] > peak - 40.0 and drop < 0.5 * RELEASE_FALL_DB_S * (n - 1 - i) * hop:
            continue  # a sustained level that sags a little by the end is no release
        candidates.append((i, before - after))
    if not candidates:
        return None
    strongest = max(bend for _, bend in candidates)
    knee = next(i for i, bend in candidates if bend >= 0.5 * strongest)
    hi = min(n, knee + 2 * w + 1)
    deep = np.flatnonzero(env[knee:hi] < env[knee] - 30.0)  # a fast fall into silence is no line
    if deep.size:
        hi = knee + int(deep[0]) + 1
    return _break(env, max(attack, knee - w), hi)


def _line_sse(y: np.ndarray) -> float:
    """Squared error of the least-squares line through y."""
    if len(y) < 3:
        return 0.0
    x = np.arange(len(y), dtype=np.float64)
    a = np.vstack([x, np.ones_like(x)]).T
    coef = np.linalg.lstsq(a, y, rcond=None)[0]
    r = y - a @ coef
    return float(r @ r)


def _break(env: np.ndarray, lo: int, hi: int) -> int:
    """The frame in [lo, hi) where two straight lines (a level, then a fall) fit the envelope best."""
    y = env[lo:hi].astype(np.float64)
    errors = [_line_sse(y[: b + 1]) + _line_sse(y[b:]) for b in range(3, len(y) - 3)]
    return lo + 3 + int(np.argmin(errors)) if errors else lo


def estimate_timing(audio: np.ndarray, sample_rate: int) -> NoteTiming:
    """When the key was released (seconds after the start) and how long the release lasts.

    The release is where a steady level bends into its final fall (`_release_knee`: fast or slow, with
    tremolo or not). Without one the key is taken as held to the end: plucks and drums that die away on
    their own, notes cut off by the end of the file. Estimate it on the whole note: a window that ends
    before the release cannot see it. Measured on the dev set: docs/BENCHMARKS.md, "Key-held time".
    """
    a = np.asarray(audio, np.float32).reshape(-1)
    duration_s = len(a) / float(sample_rate)
    env, hop = _envelope_db(a, sample_rate)
    env = _smooth(env, 5)
    peak = float(env.max())
    above = np.flatnonzero(env >= peak - 60.0)
    end_s = (above[-1] + 1) * hop if above.size else duration_s
    knee = _release_knee(env, hop)
    if knee is None:
        return NoteTiming(duration_s, duration_s, max(0.0, end_s - duration_s), True)
    note_s = float(np.clip((knee + 0.5) * hop, 0.01, duration_s))
    return NoteTiming(duration_s, note_s, float(max(0.0, end_s - note_s)), False)
