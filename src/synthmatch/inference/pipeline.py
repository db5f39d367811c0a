"""Matching a target sound: read it, choose a starting preset, render, export.

`run_infer(InferConfig)` is what `synthmatch infer` calls. One failing input never stops a folder run;
each result carries its error instead.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from synthmatch.audio.io import AudioError, list_audio_files, load_audio, trim_leading_silence, write_wav
from synthmatch.errors import ConfigError, SynthmatchError
from synthmatch.synth.presets import Preset
from synthmatch.synth.render import Renderer

log = logging.getLogger(__name__)

__all__ = ["InferConfig", "MatchResult", "run_infer", "resolve_inputs"]

MAX_TARGET_S = 4.0


@dataclass(frozen=True)
class InferConfig:
    """Settings of `synthmatch infer`."""

    inputs: tuple[Path, ...]
    output: Path = Path("out")
    start: str = "init"
    midi_note: int | None = None
    note_duration_s: float | None = None
    render: bool = False
    sample_rate: int = 44100

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError("no input given: pass -i FILE or -i FOLDER")
        if self.midi_note is not None and not 0 <= self.midi_note <= 127:
            raise ConfigError(f"--midi-note must be in 0..127, got {self.midi_note}")
        if self.note_duration_s is not None and not 0 < self.note_duration_s <= 30:
            raise ConfigError(f"--note-duration must be in (0, 30] seconds, got {self.note_duration_s}")
        if not 8000 <= self.sample_rate <= 192000:
            raise ConfigError(f"--sample-rate must be in 8000..192000 Hz, got {self.sample_rate}")


@dataclass
class MatchResult:
    """What one input produced."""

    input: Path
    preset_path: Path | None = None
    audio_path: Path | None = None
    midi_note: int | None = None
    duration_s: float | None = None
    seconds: float = 0.0
    error: str | None = None
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {
            "input": str(self.input),
            "preset": str(self.preset_path) if self.preset_path else None,
            "audio": str(self.audio_path) if self.audio_path else None,
            "midi_note": self.midi_note,
            "duration_s": self.duration_s,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            **self.extra,
        }


def resolve_inputs(inputs: tuple[Path, ...]) -> list[Path]:
    """Expand folders into their audio files; keep files (even unreadable ones, to report them)."""
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found = list_audio_files(p)
            if not found:
                raise AudioError(f"{p}: folder holds no audio files")
            files.extend(found)
        else:
            files.append(p)
    return files


def _start_preset(start: str) -> Preset:
    if start == "init":
        return Preset.init()
    path = Path(start)
    if path.suffix.lower() != ".vital" and not path.exists():
        raise ConfigError(f"--start must be 'init' or a .vital file, got {start!r}")
    return Preset.load(path)


def _outputs_for(cfg: InferConfig, target: Path, n_inputs: int) -> tuple[Path, Path]:
    if n_inputs == 1 and cfg.output.suffix.lower() == ".vital":
        return cfg.output, cfg.output.with_suffix(".wav")
    return cfg.output / f"{target.stem}.vital", cfg.output / f"{target.stem}.wav"


def run_infer(cfg: InferConfig) -> list[MatchResult]:
    """Match every input; returns one result per input file (errors included, never raised per file)."""
    files = resolve_inputs(cfg.inputs)
    start = _start_preset(cfg.start)
    results: list[MatchResult] = []
    with Renderer(sample_rate=cfg.sample_rate) as renderer:
        bar = tqdm(files, desc="matching", unit="file", disable=len(files) < 2)
        for path in bar:
            t0 = time.perf_counter()
            result = MatchResult(input=path)
            try:
                _match_one(cfg, path, start, renderer, result, len(files))
            except SynthmatchError as exc:
                result.error = str(exc)
                if len(files) == 1:
                    raise
                log.error("%s", exc)
            result.seconds = time.perf_counter() - t0
            results.append(result)
    return results


def _match_one(
    cfg: InferConfig, path: Path, start: Preset, renderer: Renderer, result: MatchResult, n_inputs: int
) -> None:
    audio, sr = load_audio(path, cfg.sample_rate)
    audio = trim_leading_silence(audio, sr)
    if float(np.max(np.abs(audio))) < 1e-4:
        raise AudioError(f"{path}: the audio is silent (peak below -80 dBFS)")
    duration_s = min(len(audio) / sr, MAX_TARGET_S)
    midi_note = cfg.midi_note if cfg.midi_note is not None else 60
    note_s = cfg.note_duration_s if cfg.note_duration_s is not None else 0.75 * duration_s
    preset = start.with_meta(preset_name=f"synthmatch {path.stem}")
    preset_path, audio_path = _outputs_for(cfg, path, n_inputs)
    preset.save(preset_path)
    result.preset_path, result.midi_note, result.duration_s = preset_path, midi_note, duration_s
    if cfg.render:
        match_audio = renderer.render(preset, midi_note, note_s, duration_s)
        write_wav(audio_path, match_audio, cfg.sample_rate)
        result.audio_path = audio_path
