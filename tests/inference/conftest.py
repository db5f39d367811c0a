"""Fixtures of the inference tests: a known preset, its rendered target, and a way to run the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthmatch.audio.io import write_wav
from tests.inference.helpers import DURATION_S, NOTE, NOTE_S, SR, CliRun, Known, known_preset


@pytest.fixture(scope="module")
def known(renderer, tmp_path_factory) -> Known:
    preset = known_preset()
    audio = renderer.render(preset, NOTE, NOTE_S, DURATION_S)
    wav = write_wav(tmp_path_factory.mktemp("known") / "known_A3.wav", audio, SR)
    return Known(preset, audio, wav)


@pytest.fixture
def cli(capsys):
    """Run `synthmatch ARGS...` in this process; returns (exit code, stdout, stderr)."""
    from synthmatch.cli import main

    def run(*args: str | Path) -> CliRun:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)

    return run
