"""Reading and writing audio: any format soundfile reads, resampled with soxr, mixed to mono.

Errors are `AudioError` (a ValueError) with a message that names the file, says what is wrong and what
is accepted; the CLI prints them without a traceback.
"""

from __future__ import annotations

import logging
import math
import os
import stat
from pathlib import Path

import numpy as np

from synthmatch.atomic import atomic_write_bytes
from synthmatch.errors import SynthmatchError

log = logging.getLogger(__name__)

__all__ = [
    "AudioError",
    "load_audio",
    "write_wav",
    "resample",
    "to_mono",
    "trim_leading_silence",
    "AUDIO_EXTENSIONS",
    "list_audio_files",
]

AUDIO_EXTENSIONS = (
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".aiff",
    ".aif",
    ".aifc",
    ".mp3",
    ".opus",
    ".caf",
    ".w64",
    ".rf64",
    ".au",
    ".snd",
)


class AudioError(SynthmatchError, ValueError):
    """An audio file that cannot be used, with a message naming it and the reason."""


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(N,) or (N, C) frames-by-channels -> (N,) by averaging the channels."""
    a = np.asarray(audio)
    if a.ndim == 1:
        return a.astype(np.float32, copy=False)
    if a.ndim == 2:
        return a.mean(axis=1).astype(np.float32)
    raise AudioError(f"expected audio shaped (N,) or (N, channels), got {a.shape}")


def resample(audio: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """High-quality resampling (soxr VHQ); identity when the rates match."""
    if int(sr_from) == int(sr_to):
        return np.asarray(audio, np.float32)
    import soxr

    return soxr.resample(np.asarray(audio, np.float32), int(sr_from), int(sr_to), quality="VHQ").astype(
        np.float32
    )


def trim_leading_silence(
    audio: np.ndarray, sample_rate: int, threshold_db: float = -60.0, keep_ms: float = 2.0
) -> np.ndarray:
    """Drop samples before the first one louder than `threshold_db` relative to the peak.

    Keeps `keep_ms` before the onset so the attack is not clipped.
    """
    a = np.asarray(audio, np.float32)
    peak = float(np.max(np.abs(a))) if a.size else 0.0
    if peak == 0.0:
        return a
    above = np.flatnonzero(np.abs(a) >= peak * 10 ** (threshold_db / 20))
    start = max(0, int(above[0]) - int(sample_rate * keep_ms / 1000))
    return a[start:]


# What a file's header may claim before anything is decoded (a 10 KB file that says 1 Hz would otherwise
# be resampled into gigabytes).
MIN_FILE_RATE, MAX_FILE_RATE = 1000, 768_000
MAX_CHANNELS = 64


def load_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    mono: bool = True,
    max_seconds: float | None = None,
) -> tuple[np.ndarray, int]:
    """Read an audio file.

    Args:
        path: any format libsndfile reads (WAV, FLAC, OGG, AIFF, MP3...).
        sample_rate: resample to this rate (None keeps the file's).
        mono: mix all channels to one.
        max_seconds: decode at most this much of the file (at its own rate), the rest is never read.
    Returns:
        (audio, sample_rate): float32 (N,) if mono else (N, C).
    Raises:
        AudioError: missing path, a directory or other non-regular file, an unreadable/non-audio file,
            a header claiming a rate or channel count no audio has, empty or non-finite audio.
    """
    import soundfile as sf

    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise AudioError(f"{p}: no such file") from None
    except OSError as exc:
        raise AudioError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    if p.is_dir():
        raise AudioError(f"{p}: is a directory, expected an audio file")
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(f"{p}: not a regular file (a pipe, socket or device), expected an audio file")
    if st.st_size == 0:
        raise AudioError(f"{p}: the file is empty (0 bytes), expected an audio file")
    try:
        info = sf.info(str(p))
        if not MIN_FILE_RATE <= info.samplerate <= MAX_FILE_RATE:
            raise AudioError(
                f"{p}: the file says its sample rate is {info.samplerate} Hz; audio is "
                f"{MIN_FILE_RATE} to {MAX_FILE_RATE} Hz"
            )
        if not 1 <= info.channels <= MAX_CHANNELS:
            raise AudioError(f"{p}: the file says it has {info.channels} channels (at most {MAX_CHANNELS})")
        frames = -1 if max_seconds is None else int(math.ceil(max_seconds * info.samplerate))
        data, sr = sf.read(str(p), frames=frames, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        raise AudioError(
            f"{p}: not a readable audio file ({str(exc).strip() or type(exc).__name__}); "
            f"accepted: {', '.join(e.lstrip('.').upper() for e in AUDIO_EXTENSIONS[:6])} and other formats "
            "libsndfile reads"
        ) from None
    if data.shape[0] == 0:
        raise AudioError(f"{p}: the file holds no audio samples")
    if not np.all(np.isfinite(data)):
        raise AudioError(f"{p}: the audio contains NaN or infinite samples")
    audio = to_mono(data) if mono else data
    if sample_rate is not None and int(sample_rate) != int(sr):
        log.debug("%s: resampling %d Hz -> %d Hz", p, sr, sample_rate)
        audio = resample(audio, sr, sample_rate)
        sr = int(sample_rate)
    return audio, int(sr)


def wav_bytes(audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> bytes:
    """A WAV file in memory. `audio` is (N,) mono or (2, N) / (N, 2) stereo in [-1, 1]."""
    import io

    import soundfile as sf

    a = np.asarray(audio, np.float32)
    if a.ndim == 2 and a.shape[0] in (1, 2) and a.shape[1] > a.shape[0]:
        a = a.T  # (C, N) -> (N, C)
    a = np.clip(np.nan_to_num(a), -1.0, 1.0)
    buf = io.BytesIO()
    sf.write(buf, a, int(sample_rate), subtype=subtype, format="WAV")
    return buf.getvalue()


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write a WAV file atomically. `audio` is (N,) mono or (2, N) / (N, 2) stereo in [-1, 1]."""
    return atomic_write_bytes(path, wav_bytes(audio, sample_rate, subtype))


def list_audio_files(folder: str | os.PathLike) -> list[Path]:
    """Audio files in a folder (recursively), sorted."""
    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
