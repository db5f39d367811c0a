"""The one spectrogram and log-mel implementation of the project.

Training (precomputed features), inference (model input), evaluation metrics and the refinement
objective all call these functions, so a model always sees exactly the features it was trained on.
Implemented with `torch.stft` so the same code runs batched on CPU or GPU; NumPy in, NumPy out.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import asdict, dataclass
from typing import overload

import numpy as np
import torch

from synthmatch.defaults import DEFAULT_SAMPLE_RATE

__all__ = [
    "MelSettings",
    "log_mel",
    "stft_magnitude",
    "mel_filterbank",
    "hz_to_mel",
    "mel_to_hz",
    "embed_features",
    "LOG_EPS",
]

ArrayLike = np.ndarray | torch.Tensor
LOG_EPS = 1e-5
# Model input is loudness-normalised: a user's recording level is arbitrary, so the model and the
# refinement objective compare sounds, not gains.
FEATURE_LOUDNESS_DB = -20.0


@dataclass(frozen=True)
class MelSettings:
    """Log-mel settings; stored in datasets and checkpoints so features are always rebuilt identically."""

    sample_rate: int = DEFAULT_SAMPLE_RATE
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    f_min: float = 20.0
    f_max: float | None = None  # None: Nyquist

    def __post_init__(self) -> None:
        if self.n_fft < 16 or self.n_fft & (self.n_fft - 1):
            raise ValueError(f"n_fft must be a power of two >= 16, got {self.n_fft}")
        if not 0 < self.hop_length <= self.n_fft:
            raise ValueError(f"hop_length must be in (0, n_fft], got {self.hop_length}")
        if self.n_mels < 1:
            raise ValueError(f"n_mels must be >= 1, got {self.n_mels}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")

    def n_frames(self, n_samples: int) -> int:
        """Frames produced for a signal of n_samples (centred STFT)."""
        return n_samples // self.hop_length + 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> MelSettings:
        keys = {"sample_rate", "n_fft", "hop_length", "n_mels", "f_min", "f_max"}
        return cls(**{k: v for k, v in d.items() if k in keys})


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale (linear below 1 kHz, logarithmic above)."""
    f = np.asarray(f, np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    m = np.asarray(m, np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@functools.lru_cache(maxsize=32)
def _mel_filterbank_np(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    n_bins = n_fft // 2 + 1
    fft_freqs = np.linspace(0, sample_rate / 2, n_bins)
    mel_pts = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    # Narrow low bands can fall between FFT bins at small n_fft: give each at least its nearest bin.
    for i in np.flatnonzero(weights.sum(1) == 0):
        weights[i, int(np.argmin(np.abs(fft_freqs - mel_pts[i + 1])))] = 1.0
    weights /= weights.sum(1, keepdims=True)  # each band averages magnitude, whatever its width
    return weights.astype(np.float32)  # (n_mels, n_bins)


def mel_filterbank(settings: MelSettings) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters on the Slaney mel scale; each row sums to one."""
    f_max = settings.f_max or settings.sample_rate / 2
    return _mel_filterbank_np(
        settings.sample_rate, settings.n_fft, settings.n_mels, float(settings.f_min), float(f_max)
    )


_WINDOWS: dict[tuple[int, str], torch.Tensor] = {}
_FILTERS: dict[tuple, torch.Tensor] = {}


def _window(n_fft: int, device: torch.device) -> torch.Tensor:
    key = (n_fft, str(device))
    w = _WINDOWS.get(key)
    if w is None:
        w = torch.hann_window(n_fft, periodic=True, device=device)
        w = w / w.sum()  # magnitude of a full-scale sine ~0.5 whatever n_fft is
        _WINDOWS[key] = w
    return w


def _as_tensor(x: ArrayLike, device: str | torch.device | None) -> tuple[torch.Tensor, bool]:
    if isinstance(x, torch.Tensor):
        return (x.to(device) if device is not None else x).float(), False
    return torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=device), True


@overload
def stft_magnitude(
    x: np.ndarray, n_fft: int, hop_length: int, center: bool = ..., device: str | torch.device | None = ...
) -> np.ndarray: ...
@overload
def stft_magnitude(
    x: torch.Tensor, n_fft: int, hop_length: int, center: bool = ..., device: str | torch.device | None = ...
) -> torch.Tensor: ...
@overload
def stft_magnitude(
    x: ArrayLike, n_fft: int, hop_length: int, center: bool = ..., device: str | torch.device | None = ...
) -> ArrayLike: ...
def stft_magnitude(
    x: ArrayLike, n_fft: int, hop_length: int, center: bool = True, device: str | torch.device | None = None
) -> ArrayLike:
    """|STFT| with a normalised Hann window.

    Args:
        x: (N,) or (B, N) audio.
    Returns:
        (n_fft // 2 + 1, T) or (B, n_fft // 2 + 1, T); NumPy in, NumPy out.
    """
    t, was_np = _as_tensor(x, device)
    if t.shape[-1] < n_fft and not center:
        raise ValueError(f"signal of {t.shape[-1]} samples is shorter than n_fft={n_fft}")
    pad_mode = "reflect" if t.shape[-1] > n_fft // 2 else "constant"
    spec = torch.stft(
        t,
        n_fft=n_fft,
        hop_length=hop_length,
        window=_window(n_fft, t.device),
        center=center,
        pad_mode=pad_mode,
        return_complex=True,
    )
    # |z| as sqrt(re^2 + im^2): a third of the cost of the complex abs (hypot) on CPU, equal to float
    # rounding for audio-range values (squares of |z| < 1e-19 underflow to 0, far below LOG_EPS)
    parts = torch.view_as_real(spec)
    mag = parts[..., 0].square().add_(parts[..., 1].square()).sqrt_()
    return mag.cpu().numpy() if was_np else mag


@overload
def log_mel(
    x: np.ndarray, settings: MelSettings = ..., device: str | torch.device | None = ...
) -> np.ndarray: ...
@overload
def log_mel(
    x: torch.Tensor, settings: MelSettings = ..., device: str | torch.device | None = ...
) -> torch.Tensor: ...
@overload
def log_mel(
    x: ArrayLike, settings: MelSettings = ..., device: str | torch.device | None = ...
) -> ArrayLike: ...
def log_mel(
    x: ArrayLike, settings: MelSettings = MelSettings(), device: str | torch.device | None = None
) -> ArrayLike:
    """Natural-log mel magnitude spectrogram, log(mel + 1e-5): the project's model feature.

    Args:
        x: (N,) or (B, N) audio at `settings.sample_rate`.
        settings: FFT and mel settings.
        device: where to compute (tensors stay where they are by default).
    Returns:
        (n_mels, T) or (B, n_mels, T) float32; NumPy in, NumPy out.
    """
    t, was_np = _as_tensor(x, device)
    mag = stft_magnitude(t, settings.n_fft, settings.hop_length)  # (..., F, T)
    key = (
        settings.sample_rate,
        settings.n_fft,
        settings.n_mels,
        settings.f_min,
        settings.f_max,
        str(t.device),
    )
    # One sound on the CPU (the refinement objective, called once per render) multiplies by the
    # filterbank stored sparse: each FFT bin feeds at most two bands, so a dense product does ~30x the
    # work; batches and GPUs keep the dense product, which they do fast.
    sparse = mag.dim() == 2 and mag.device.type == "cpu" and not mag.requires_grad
    fb = _FILTERS.get(key + (sparse,))
    if fb is None:
        fb = torch.from_numpy(mel_filterbank(settings)).to(t.device)
        if sparse:
            with warnings.catch_warnings():  # "sparse CSR support is in beta" (its product is all we use)
                warnings.simplefilter("ignore", UserWarning)
                fb = fb.to_sparse_csr()
        _FILTERS[key + (sparse,)] = fb
    out = torch.matmul(fb, mag).add_(LOG_EPS).log_()  # (..., n_mels, T)
    return out.cpu().numpy() if was_np else out


@overload
def normalize_loudness(x: np.ndarray, target_db: float = ..., max_gain_db: float = ...) -> np.ndarray: ...
@overload
def normalize_loudness(x: torch.Tensor, target_db: float = ..., max_gain_db: float = ...) -> torch.Tensor: ...
@overload
def normalize_loudness(x: ArrayLike, target_db: float = ..., max_gain_db: float = ...) -> ArrayLike: ...
def normalize_loudness(
    x: ArrayLike, target_db: float = FEATURE_LOUDNESS_DB, max_gain_db: float = 60.0
) -> ArrayLike:
    """Scale (N,) or (B, N) audio so its RMS is `target_db` dBFS (gain capped at `max_gain_db`)."""
    if isinstance(x, torch.Tensor):
        rms = x.float().pow(2).mean(-1, keepdim=True).sqrt()
        gain = (10 ** (target_db / 20)) / rms.clamp_min(10 ** ((target_db - max_gain_db) / 20))
        return x * gain
    a = np.asarray(x, np.float32)
    rms = np.sqrt(np.mean(np.square(a, dtype=np.float64), axis=-1, keepdims=True))
    gain = (10 ** (target_db / 20)) / np.maximum(rms, 10 ** ((target_db - max_gain_db) / 20))
    return (a * gain).astype(np.float32)


@overload
def fit_length(x: np.ndarray, n_samples: int) -> np.ndarray: ...
@overload
def fit_length(x: torch.Tensor, n_samples: int) -> torch.Tensor: ...
@overload
def fit_length(x: ArrayLike, n_samples: int) -> ArrayLike: ...
def fit_length(x: ArrayLike, n_samples: int) -> ArrayLike:
    """Crop or zero-pad the last axis to exactly n_samples."""
    n = x.shape[-1]
    if n >= n_samples:
        return x[..., :n_samples]
    pad = n_samples - n
    if isinstance(x, torch.Tensor):
        return torch.nn.functional.pad(x, (0, pad))
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)])


@overload
def model_features(
    x: np.ndarray, settings: MelSettings = ..., device: str | torch.device | None = ...
) -> np.ndarray: ...
@overload
def model_features(
    x: torch.Tensor, settings: MelSettings = ..., device: str | torch.device | None = ...
) -> torch.Tensor: ...
@overload
def model_features(
    x: ArrayLike, settings: MelSettings = ..., device: str | torch.device | None = ...
) -> ArrayLike: ...
def model_features(
    x: ArrayLike, settings: MelSettings = MelSettings(), device: str | torch.device | None = None
) -> ArrayLike:
    """The model's input: log-mel of the loudness-normalised audio, (n_mels, T) or (B, n_mels, T).

    Training (precompute-mels), inference and evaluation all call this one function.
    """
    t, was_np = _as_tensor(x, device)
    out = log_mel(normalize_loudness(t), settings)
    return out.cpu().numpy() if was_np else out


# A sound's embedding for nearest-neighbour lookup (eval's `nn` baseline, `synthmatch index`).
EMBED_BANDS = 32
EMBED_SEGMENTS = 8


def embed_features(feats: np.ndarray) -> np.ndarray:
    """(B, n_mels, T) log-mel features -> (B, D) time-pooled embedding.

    The model's log-mel features pooled into EMBED_BANDS bands x EMBED_SEGMENTS time segments of mean
    log magnitude, plus each band's standard deviation over time: numbers that keep the spectral envelope
    and its evolution but not the exact partials."""
    f = np.asarray(feats, np.float32)
    if f.ndim == 2:
        f = f[None]
    b, m, t = f.shape
    n_bands = min(EMBED_BANDS, m)
    per = m // n_bands
    bands = f[:, : per * n_bands].reshape(b, n_bands, per, t).mean(axis=2)  # (B, bands, T)
    segments = np.array_split(np.arange(t), min(EMBED_SEGMENTS, t))
    seg_means = np.stack([bands[..., s].mean(axis=-1) for s in segments], axis=-1)  # (B, bands, S)
    return np.concatenate([seg_means.reshape(b, -1), bands.std(axis=-1)], axis=1).astype(np.float32)
