"""Writing a match's files: the .vital preset, its render (WAV), the comparison PNG and the tutorial.

Everything is produced in memory first and written only when all of it succeeded, all or nothing: every
file goes to a temporary beside its place, and only when all are written are they renamed into place
(`synthmatch.atomic`). A full disk or a read-only folder is one line (`ExportError`) and leaves nothing
behind. An existing output is replaced only with `overwrite`; inputs whose names would collide in one
output folder get distinct names (`output_names`), said aloud.

The .vital goes through vita's own JSON (`Preset.to_vital_json`), with real control values for continuous
and categorical controls and the modulation routing. Model outputs reach it already denormalised: the
Predictor maps its [0, 1] outputs to Vital's ranges with the ranges stored in the checkpoint, and warns
once when a checkpoint lacks them (the seed report's bug 4: such a checkpoint used to export [0, 1] values as
Vital's, silently).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synthmatch.atomic import atomic_path
from synthmatch.audio.io import wav_bytes
from synthmatch.defaults import DEFAULT_SAMPLE_RATE
from synthmatch.errors import ConfigError, SynthmatchError
from synthmatch.synth.presets import Preset

log = logging.getLogger(__name__)

__all__ = [
    "OutputPaths",
    "output_paths",
    "output_names",
    "MatchFiles",
    "write_match",
    "candidate_paths",
    "refuse_existing",
    "ExportError",
]


class ExportError(SynthmatchError, OSError):
    """A match's files could not be written (an existing output, a full disk, a read-only folder)."""


@dataclass(frozen=True)
class OutputPaths:
    """Where one match's files go."""

    preset: Path
    audio: Path
    figure: Path
    tutorial: Path


def output_paths(
    output: str | os.PathLike, target: Path, single: bool, name: str | None = None
) -> OutputPaths:
    """`-o x.vital` (one input): x.vital, x.wav, x.png, x.md; `-o DIR`: DIR/<name>.vital, ...

    Args:
        name: the file name without extension in an output folder (default: the target's; see
            `output_names` for a folder of inputs).
    Raises:
        ConfigError: a .vital output with several inputs, or an output that is an existing file.
    """
    out = Path(output)
    if out.suffix.lower() == ".vital":
        if not single:
            raise ConfigError(f"-o {out}: several inputs need an output folder, not a .vital file")
        stem = out.parent / out.stem
    else:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"-o {out}: exists and is not a folder; give a folder or a .vital file")
        stem = out / (name or target.stem)
    # appended, not `with_suffix`: "pluck.v1" keeps its ".v1"
    return OutputPaths(*(stem.parent / f"{stem.name}{ext}" for ext in (".vital", ".wav", ".png", ".md")))


def output_names(inputs: Sequence[Path]) -> dict[Path, str]:
    """A distinct output name for every input of a folder run (file names compared case-insensitively).

    An input keeps its own name where no other input has it; otherwise the name gains its format
    ("a.wav", "a.flac" -> "a_wav", "a_flac"), then its folder ("x/kick.wav", "y/kick.wav" -> "x_kick",
    "y_kick"), then a number. Every renamed input is logged.
    """
    by_stem: dict[str, list[Path]] = {}
    for p in inputs:
        by_stem.setdefault(p.stem.lower(), []).append(p)
    names: dict[Path, str] = {}
    taken: set[str] = set()
    for group in by_stem.values():
        if len(group) == 1:
            names[group[0]] = group[0].stem
            taken.add(group[0].stem.lower())
    for group in by_stem.values():
        if len(group) == 1:
            continue
        suffixes = {p.suffix.lower() for p in group}
        for p in group:
            name = f"{p.stem}_{p.suffix[1:]}" if len(suffixes) == len(group) else f"{p.parent.name}_{p.stem}"
            base, k = name, 2
            while name.lower() in taken:
                name, k = f"{base}_{k}", k + 1
            taken.add(name.lower())
            names[p] = name
            log.warning("%s: written as %s (another input has the name %s)", p, name, p.stem)
    return names


@dataclass
class MatchFiles:
    """A match's outputs, ready in memory."""

    preset: Preset
    audio: np.ndarray | None = None  # (N,) or (2, N) render of the match
    sample_rate: int = DEFAULT_SAMPLE_RATE
    figure_png: bytes | None = None
    tutorial_md: str | None = None
    alternates: list[MatchFiles] = field(default_factory=list)  # candidates 2.. (NAME.2.vital...)


def candidate_paths(paths: OutputPaths, rank: int) -> OutputPaths:
    """Where candidate `rank` (2, 3...) goes: beside the best, NAME.2.vital, NAME.2.wav..."""
    if rank < 2:
        return paths
    return OutputPaths(
        *(
            p.with_name(f"{p.name[: -len(p.suffix)]}.{rank}{p.suffix}")
            for p in (paths.preset, paths.audio, paths.figure, paths.tutorial)
        )
    )


def refuse_existing(paths: OutputPaths | Iterable[Path]) -> None:
    """ExportError for the first of `paths` that exists (a match's .vital alone: an OutputPaths is checked
    by its preset, before any work; `write_match` checks every file it is about to write)."""
    for p in [paths.preset] if isinstance(paths, OutputPaths) else paths:
        if p.exists() or p.is_symlink():
            raise ExportError(f"{p}: exists; pass --overwrite to replace it")


def write_match(files: MatchFiles, paths: OutputPaths, overwrite: bool = False) -> dict[str, Path]:
    """Write what `files` holds (the preset always, the others when present), all or nothing; its
    alternates (candidates 2, 3...) beside it as NAME.2.vital... (`candidate_paths`).

    Returns:
        kind -> path of every file written.
    Raises:
        ExportError: an output exists (without `overwrite`), or the files cannot be written (nothing
            of them is left behind).
    """
    planned: dict[str, tuple[Path, bytes]] = {}
    for rank, one in enumerate([files, *files.alternates], start=1):
        at = candidate_paths(paths, rank)
        key = "" if rank == 1 else f".{rank}"  # "preset", "audio"...; "preset.2", "audio.2"... for the others
        vital_text = one.preset.to_vital_json()  # can fail (vita refuses the preset): before any write
        planned["preset" + key] = (at.preset, vital_text.encode("utf-8"))
        if one.audio is not None:
            planned["audio" + key] = (at.audio, wav_bytes(one.audio, one.sample_rate))
        if one.figure_png is not None:
            planned["figure" + key] = (at.figure, one.figure_png)
        if one.tutorial_md is not None:
            planned["tutorial" + key] = (at.tutorial, one.tutorial_md.encode("utf-8"))
    if not overwrite:
        refuse_existing(p for p, _ in planned.values())
    try:
        with contextlib.ExitStack() as stack:  # every temporary written before any is renamed
            for path, data in planned.values():
                stack.enter_context(atomic_path(path)).write_bytes(data)
    except OSError as exc:
        where = exc.filename or next(iter(planned.values()))[0].parent
        raise ExportError(f"cannot write the match to {where}: {exc.strerror or exc}") from None
    return {kind: path for kind, (path, _) in planned.items()}
