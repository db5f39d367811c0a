"""Reading a target sound for matching: one clear error for every way a file can be unusable.

`load_target` reads any format soundfile reads, at any sample rate (resampled with soxr) and channel
count (mixed to mono), trims leading silence, keeps the whole note up to `max_seconds` (`infer
--max-seconds`, default 4 s; longer audio is cut with an INFO line), and rejects silent audio and audio
shorter than one FFT window with a message that names the file and gives the durations and sample
counts. A model sees its own window of the target (`Predictor.features`); everything else (timing,
refinement, the written WAV, scoring) uses all of it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthmatch.audio.io import AudioError, load_audio, trim_leading_silence

log = logging.getLogger(__name__)

__all__ = ["Target", "TargetTooShortError", "load_target", "SILENCE_PEAK", "MIN_SAMPLES"]

SILENCE_PEAK = 1e-4  # -80 dBFS
MIN_SAMPLES = 2048  # n_fft of the model's features


class TargetTooShortError(AudioError):
    """Audio shorter than one analysis window (a ValueError with the durations: the seed report's bug 2, an opaque crash before)."""


@dataclass
class Target:
    """A target ready to match: mono, at the matching sample rate, trimmed and truncated.

    Attributes:
        path: the file it came from.
        audio: (N,) float32 mono at `sample_rate`.
        sample_rate: the matching rate (the model's, or the render rate without a model).
        source_sample_rate: the file's own rate.
        source_channels: the file's channel count.
        source_duration_s: the file's length.
        trimmed_s: leading silence removed.
        truncated: True when the audio was cut to the clip length.
    """

    path: Path
    audio: np.ndarray
    sample_rate: int
    source_sample_rate: int
    source_channels: int
    source_duration_s: float
    trimmed_s: float
    truncated: bool

    @property
    def duration_s(self) -> float:
        return len(self.audio) / float(self.sample_rate)

    def summary(self) -> dict:
        return {
            "duration_s": round(self.duration_s, 4),
            "sample_rate": self.sample_rate,
            "source_sample_rate": self.source_sample_rate,
            "source_channels": self.source_channels,
            "source_duration_s": round(self.source_duration_s, 4),
            "trimmed_s": round(self.trimmed_s, 4),
            "truncated": self.truncated,
        }


# Leading silence is trimmed before the clip is cut: up to this much of it is read past --max-seconds.
MAX_LEADING_SILENCE_S = 10.0


def load_target(
    path: str | os.PathLike, sample_rate: int, max_seconds: float, min_samples: int = MIN_SAMPLES
) -> Target:
    """Read and prepare a target sound.

    Args:
        path: the audio file.
        sample_rate: matching sample rate; the audio is resampled to it.
        max_seconds: longer audio (after trimming leading silence) is cut to this, with an INFO log.
        min_samples: shortest accepted audio at `sample_rate` (the model's n_fft).
    Raises:
        AudioError: missing path, directory, unreadable or non-audio file, empty, NaN/inf or silent audio.
        TargetTooShortError: fewer than `min_samples` samples after trimming.
    """
    import soundfile as sf

    p = Path(path)
    # raises AudioError with the file's name and the reason; reads no more than the clip and leading
    # silence can use
    audio, sr = load_audio(p, sample_rate, max_seconds=max_seconds + MAX_LEADING_SILENCE_S)
    try:
        info = sf.info(str(p))
        source_sr, channels, source_frames = int(info.samplerate), int(info.channels), int(info.frames)
    except Exception:  # load_audio read it, so this is only metadata
        source_sr, channels, source_frames = sr, 1, len(audio)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < SILENCE_PEAK:
        level = "every sample is zero" if peak == 0 else f"peak {20 * np.log10(peak):.0f} dBFS"
        raise AudioError(f"{p}: the audio is silent ({level}; a target must peak above -80 dBFS)")
    trimmed = trim_leading_silence(audio, sr)
    trimmed_s = (len(audio) - len(trimmed)) / sr
    clip = int(round(max_seconds * sr))
    truncated = len(trimmed) > clip
    if truncated:
        log.info(
            "%s: %.2f s of audio after trimming leading silence; matching the first %.2f s (--max-seconds)",
            p,
            len(trimmed) / sr,
            max_seconds,
        )
        trimmed = trimmed[:clip]
    if len(trimmed) < min_samples:
        source_n = int(round(len(trimmed) * source_sr / sr))
        raise TargetTooShortError(
            f"{p}: too short to match: {1000 * len(trimmed) / sr:.1f} ms of audio after trimming leading "
            f"silence ({len(trimmed)} samples at {sr} Hz, {source_n} at the file's {source_sr} Hz); at least "
            f"{1000 * min_samples / sr:.1f} ms ({min_samples} samples at {sr} Hz) is needed"
        )
    return Target(
        path=p,
        audio=np.ascontiguousarray(trimmed, np.float32),
        sample_rate=int(sr),
        source_sample_rate=source_sr,
        source_channels=channels,
        source_duration_s=source_frames / float(source_sr) if source_sr else 0.0,
        trimmed_s=float(trimmed_s),
        truncated=truncated,
    )
