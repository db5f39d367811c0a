"""Writing a match's files: the .vital preset, its render (WAV), the comparison PNG and the tutorial.

Everything is produced in memory first and written only when all of it succeeded, each file atomically
(`synthmatch.atomic`), so a failure leaves no half-written or partial set of outputs behind.

The .vital goes through vita's own JSON (`Preset.to_vital_json`), with real control values for continuous
and categorical controls and the modulation routing. Model outputs reach it already denormalised: the
Predictor maps its [0, 1] outputs to Vital's ranges with the ranges stored in the checkpoint, and warns
once when a checkpoint lacks them (the seed report's bug 4: such a checkpoint used to export [0, 1] values as
Vital's, silently).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthmatch.atomic import atomic_write_bytes, atomic_write_text
from synthmatch.audio.io import write_wav
from synthmatch.defaults import DEFAULT_SAMPLE_RATE
from synthmatch.errors import ConfigError
from synthmatch.synth.presets import Preset

__all__ = ["OutputPaths", "output_paths", "MatchFiles", "write_match"]


@dataclass(frozen=True)
class OutputPaths:
    """Where one match's files go."""

    preset: Path
    audio: Path
    figure: Path
    tutorial: Path


def output_paths(output: str | os.PathLike, target: Path, single: bool) -> OutputPaths:
    """`-o x.vital` (one input): x.vital, x.wav, x.png, x.md; `-o DIR`: DIR/<target stem>.vital, ...

    Raises:
        ConfigError: a .vital output with several inputs, or an output that is an existing file.
    """
    out = Path(output)
    if out.suffix.lower() == ".vital":
        if not single:
            raise ConfigError(f"-o {out}: several inputs need an output folder, not a .vital file")
        stem = out.with_suffix("")
    else:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"-o {out}: exists and is not a folder; give a folder or a .vital file")
        stem = out / target.stem
    return OutputPaths(
        preset=stem.with_suffix(".vital"),
        audio=stem.with_suffix(".wav"),
        figure=stem.with_suffix(".png"),
        tutorial=stem.with_suffix(".md"),
    )


@dataclass
class MatchFiles:
    """A match's outputs, ready in memory."""

    preset: Preset
    audio: np.ndarray | None = None  # (N,) or (2, N) render of the match
    sample_rate: int = DEFAULT_SAMPLE_RATE
    figure_png: bytes | None = None
    tutorial_md: str | None = None


def write_match(files: MatchFiles, paths: OutputPaths) -> dict[str, Path]:
    """Write what `files` holds (the preset always, the others when present); returns kind -> path."""
    vital_text = files.preset.to_vital_json()  # can fail (vita refuses the preset): before any write
    written: dict[str, Path] = {}
    atomic_write_text(paths.preset, vital_text)
    written["preset"] = paths.preset
    if files.audio is not None:
        written["audio"] = write_wav(paths.audio, files.audio, files.sample_rate)
    if files.figure_png is not None:
        written["figure"] = atomic_write_bytes(paths.figure, files.figure_png)
    if files.tutorial_md is not None:
        written["tutorial"] = atomic_write_text(paths.tutorial, files.tutorial_md)
    return written
