"""Metrics that say how close a match sounds to its target, and how close its parameters are.

Audio metrics (all gain-invariant: both sounds are loudness-normalised first, because a user's recording
level is arbitrary; lower is better unless noted):
- `mel_l1`: multi-scale log-mel L1, windows about 10 / 25 / 100 ms (audio.distances);
- `mfcc`: mean Euclidean distance of MFCC 1-19 (c0, the level, left out) per frame;
- `spectral_convergence`: ||S_t - S_m||_F / ||S_t||_F on the linear STFT magnitude (2048/512);
- `envelope_cos`: cosine similarity of the RMS envelopes (10 ms frames), higher is better;
- `pitch_error`: |f0(target) - f0(match)| in semitones when both are pitched (NaN otherwise);
- `level_error_db`: |RMS level of the match - RMS level of the target| in dB (the one level-dependent
  metric: the preset a user gets should play at the target's loudness);
- `silent`: 1 when the match renders below -60 dBFS RMS (counted, not ranked).
Parameter metrics, where ground truth exists: mean absolute error of the continuous vector and
categorical accuracy.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch

from synthmatch.audio.distances import match_lengths, multiscale_log_mel_l1
from synthmatch.audio.features import MelSettings, log_mel, normalize_loudness, stft_magnitude
from synthmatch.synth.presets import ParamVector

__all__ = [
    "AUDIO_METRICS",
    "HIGHER_IS_BETTER",
    "audio_metrics",
    "parameter_metrics",
    "mel_l1",
    "mfcc_distance",
    "spectral_convergence",
    "envelope_cosine",
    "pitch_error",
    "level_error_db",
]

HIGHER_IS_BETTER = {"envelope_cos", "cat_accuracy"}


def _prep(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = match_lengths(a, b)
    return normalize_loudness(a), normalize_loudness(b)


@functools.lru_cache(maxsize=8)
def _dct_matrix(n_mels: int, n_coef: int) -> np.ndarray:
    k = np.arange(n_coef)[:, None]
    n = np.arange(n_mels)[None, :]
    m = np.cos(np.pi / n_mels * (n + 0.5) * k) * math.sqrt(2.0 / n_mels)
    m[0] /= math.sqrt(2.0)
    return m.astype(np.float32)


def mfcc_distance(target: np.ndarray, match: np.ndarray, sample_rate: int, n_coef: int = 20) -> float:
    t, m = _prep(target, match)
    s = MelSettings(sample_rate=sample_rate, n_fft=2048, hop_length=512, n_mels=64)
    dct = _dct_matrix(s.n_mels, n_coef)
    ct, cm = dct @ log_mel(t, s), dct @ log_mel(m, s)  # (n_coef, T)
    return float(np.mean(np.linalg.norm(ct[1:] - cm[1:], axis=0)))


def spectral_convergence(target: np.ndarray, match: np.ndarray) -> float:
    t, m = _prep(target, match)
    st, sm = stft_magnitude(t, 2048, 512), stft_magnitude(m, 2048, 512)
    return float(np.linalg.norm(st - sm) / max(np.linalg.norm(st), 1e-12))


def _rms_envelope(x: np.ndarray, frame: int) -> np.ndarray:
    n = len(x) // frame
    return np.sqrt(np.mean(np.square(x[: n * frame].reshape(n, frame), dtype=np.float64), axis=1))


def envelope_cosine(target: np.ndarray, match: np.ndarray, sample_rate: int) -> float:
    t, m = _prep(target, match)
    frame = max(1, sample_rate // 100)
    et, em = _rms_envelope(t, frame), _rms_envelope(m, frame)
    denom = np.linalg.norm(et) * np.linalg.norm(em)
    return float(et @ em / denom) if denom > 0 else 0.0


def pitch_error(target: np.ndarray, match: np.ndarray, sample_rate: int, target_pitch=None) -> float:
    """Semitones between the two sounds' pitch estimates; NaN when either is unpitched.

    Args:
        target_pitch: the target's `audio.pitch.estimate_pitch`, when already known (saves one estimate).
    """
    from synthmatch.audio.pitch import estimate_pitch

    pt = target_pitch or estimate_pitch(np.asarray(target, np.float32), sample_rate)
    pm = estimate_pitch(np.asarray(match, np.float32), sample_rate)
    if not (pt.pitched and pm.pitched):
        return float("nan")
    return float(abs(12 * math.log2(pt.f0_hz / pm.f0_hz)))


def level_error_db(target: np.ndarray, match: np.ndarray, sample_rate: int) -> float:
    """|RMS(match) - RMS(target)| in dB, over the shorter of the two."""
    t, m = match_lengths(target, match)
    return float(abs(_rms_db(m) - _rms_db(t)))


def _rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12))


def mel_l1(target: np.ndarray, match: np.ndarray, sample_rate: int) -> float:
    t, m = _prep(target, match)
    return multiscale_log_mel_l1(m, t, sample_rate)


AUDIO_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, int], float]] = {
    "mel_l1": mel_l1,
    "mfcc": mfcc_distance,
    "spectral_convergence": lambda t, m, sr: spectral_convergence(t, m),
    "envelope_cos": envelope_cosine,
    "pitch_error": pitch_error,
    "level_error_db": level_error_db,
    "silent": lambda t, m, sr: float(_rms_db(m) < -60.0),
}


def audio_metrics(
    target: np.ndarray,
    match: np.ndarray,
    sample_rate: int,
    extra: dict[str, Callable[[np.ndarray], float]] | None = None,
    target_pitch=None,
) -> dict[str, float]:
    """Every audio metric of a match against its target (mono, same sample rate).

    Args:
        extra: more metrics of the match alone, by name.
        target_pitch: the target's pitch estimate when already known (evaluation computes it once).
    """
    with torch.no_grad():
        out = {
            name: float(
                pitch_error(target, match, sample_rate, target_pitch)
                if name == "pitch_error"
                else fn(target, match, sample_rate)
            )
            for name, fn in AUDIO_METRICS.items()
        }
    for name, fn in (extra or {}).items():
        out[name] = float(fn(match))
    return out


def parameter_metrics(truth: ParamVector, predicted: ParamVector) -> dict[str, float]:
    """Continuous MAE and categorical accuracy in normalized space."""
    mae = float(np.mean(np.abs(np.asarray(truth.continuous) - np.asarray(predicted.continuous))))
    cat_t, cat_p = np.asarray(truth.categorical), np.asarray(predicted.categorical)
    acc = float(np.mean(cat_t == cat_p)) if len(cat_t) else float("nan")
    return {"param_mae": mae, "cat_accuracy": acc}
