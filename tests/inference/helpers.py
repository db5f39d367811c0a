"""Plain helpers of the inference tests: a known preset and its settings, the CLI's result type."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthmatch.synth.presets import Preset

SR = 44100
NOTE = 57  # A3
NOTE_S, DURATION_S = 0.6, 1.0


def known_preset() -> Preset:
    """Init plus a low-passed, shaped saw: a target with a perfect match in tier 1."""
    return Preset.init().with_values(
        filter_1_on=1,
        filter_1_cutoff=70,
        filter_1_resonance=0.3,
        env_1_attack=0.3,
        env_1_decay=0.6,
        env_1_sustain=0.5,
        env_1_release=0.4,
        osc_1_level=0.8,
    )


def start_preset() -> Preset:
    """The known preset with its cutoff, resonance and envelope moved: a start to refine from."""
    return known_preset().with_values(
        filter_1_cutoff=105, filter_1_resonance=0.05, env_1_attack=0.0, env_1_sustain=1.0
    )


@dataclass
class Known:
    preset: Preset
    audio: np.ndarray  # (N,) mono target rendered from `preset` at NOTE
    wav: Path


@dataclass
class CliRun:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error:")]

    def json(self) -> list[dict]:
        return json.loads(self.out)
