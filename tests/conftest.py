"""Shared fixtures: real vita, real files, built small in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
COMMUNITY_DIR = REPO / "presets" / "community"
EXAMPLES_DIR = REPO / "examples"


def community_presets() -> list[Path]:
    return sorted(COMMUNITY_DIR.glob("*.vital"))


@pytest.fixture(scope="session")
def community_dir() -> Path:
    return COMMUNITY_DIR


@pytest.fixture(scope="session")
def space():
    from synthmatch.synth.params import param_space

    return param_space()


@pytest.fixture(scope="session")
def renderer():
    from synthmatch.synth.render import Renderer

    with Renderer(sample_rate=44100, n_threads=2) as r:
        yield r


def rms_db(audio: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(audio, dtype=np.float64))) + 1e-12))
