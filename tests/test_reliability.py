"""Bad input through the command line, table-driven: each case exits 2 (1 for a batch with skips) with one
line naming the file or flag, writes nothing, and never hangs. Hostile presets: tests/synth/test_structure.py;
outputs: tests/inference/test_outputs.py; a training run in the way: tests/training/test_train.py."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.helpers import community_presets

PRESET = str(community_presets()[0])


def _one_hz_wav(tmp: Path) -> Path:
    """A 100 KB WAV whose header says 1 Hz (decoded naively: gigabytes after resampling)."""
    path = tmp / "one_hz.wav"
    sf.write(path, np.zeros(50_000, np.float32), 44100, subtype="PCM_16")
    b = bytearray(path.read_bytes())
    b[24:32] = struct.pack("<II", 1, 2)
    path.write_bytes(bytes(b))
    return path


def _fifo(tmp: Path, name: str) -> Path:
    path = tmp / name
    os.mkfifo(path)
    return path


CASES = {
    # name: (argv builder given tmp_path, exit code, text in the one error line)
    "render --duration 0": (
        lambda t: ["render", PRESET, "-o", t / "o.wav", "--duration", "0"],
        2,
        "--duration",
    ),
    "render --note-duration -1": (
        lambda t: ["render", PRESET, "-o", t / "o.wav", "--note-duration", "-1"],
        2,
        "--note-duration",
    ),
    "render --midi-note 200": (
        lambda t: ["render", PRESET, "-o", t / "o.wav", "--midi-note", "200"],
        2,
        "0 to 127",
    ),
    "render --sample-rate 50 (vita would spin forever)": (
        lambda t: ["render", PRESET, "-o", t / "o.wav", "--sample-rate", "50"],
        2,
        "--sample-rate",
    ),
    "render a named pipe": (
        lambda t: ["render", _fifo(t, "p.vital"), "-o", t / "o.wav"],
        2,
        "not a regular file",
    ),
    "infer a WAV that claims 1 Hz": (
        lambda t: ["infer", "-i", _one_hz_wav(t), "-o", t / "o.vital", "--start", "init"],
        2,
        "sample rate is 1 Hz",
    ),
    "infer a named pipe": (
        lambda t: ["infer", "-i", _fifo(t, "p.wav"), "-o", t / "o.vital", "--start", "init"],
        2,
        "not a regular file",
    ),
    "infer --start a named pipe": (
        lambda t: ["infer", "-i", _one_hz_wav(t), "-o", t / "o.vital", "--start", _fifo(t, "p.vital")],
        2,
        "not a regular file",
    ),
    "ingest a named pipe": (
        lambda t: ["ingest", _fifo(t, "p.vital"), "-o", t / "o.wav"],
        2,
        "no rows were written",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_writes_nothing(name, tmp_path):
    build, code, says = CASES[name]
    argv = [str(a) for a in build(tmp_path)]
    before = set(tmp_path.iterdir())
    run = subprocess.run(
        [sys.executable, "-m", "synthmatch", *argv], capture_output=True, text=True, timeout=120
    )
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert run.returncode == code and len(errors) == 1 and says in errors[0], run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert set(tmp_path.iterdir()) == before  # no output, no temporary left
