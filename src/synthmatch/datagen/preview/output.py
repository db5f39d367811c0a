"""Where an example's sound goes: the speakers through sounddevice (`AudioOutput`), or a WAV file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from synthmatch.audio.io import write_wav
from synthmatch.datagen.store import Dataset

from .errors import TUI_INSTALL, PreviewError


def export_example(ds: Dataset, index: int, folder: str | os.PathLike) -> Path:
    """Write example `index` to a WAV in `folder` at the dataset's sample rate; returns the path."""
    info = ds.row_info(index)
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", info["name"]).strip("-")[:40] or "example"
    path = Path(folder) / f"{ds.path.stem}_{index:06d}_{slug}_n{info['midi_note']}.wav"
    write_wav(path, ds.audio(index), ds.schema.sample_rate)
    return path


class AudioOutput:
    """Playback through sounddevice, or the reason there is none (`error`)."""

    def __init__(self) -> None:
        self.error: str | None = None
        self._sd = None
        try:
            import sounddevice as sd
        except ImportError:
            self.error = f"sounddevice is not installed ({TUI_INSTALL})"
            return
        except OSError as exc:  # the PortAudio library is missing
            self.error = f"no audio output ({exc})"
            return
        try:
            sd.query_devices(kind="output")
        except Exception as exc:  # sounddevice.PortAudioError, ValueError: no default output device
            self.error = f"no audio output device ({str(exc).strip() or type(exc).__name__})"
            return
        self._sd = sd

    @property
    def available(self) -> bool:
        return self._sd is not None

    def play(self, audio: np.ndarray, sample_rate: int) -> None:
        """Start playing (returns at once); `sample_rate` is the dataset's own."""
        if self._sd is None:
            raise PreviewError(self.error or "no audio output")
        a = np.asarray(audio, np.float32)
        self._sd.play(a.T if a.ndim == 2 else a, samplerate=int(sample_rate))

    def stop(self) -> None:
        if self._sd is not None:
            self._sd.stop()
