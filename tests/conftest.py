"""Shared fixtures: real vita, real files, built small in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import COMMUNITY_DIR


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
