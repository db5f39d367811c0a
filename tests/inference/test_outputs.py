"""What `infer` writes: distinct names for colliding inputs, nothing replaced without --overwrite, and a
full disk or an unwritable folder as one line with nothing left behind."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from synthmatch.synth.presets import Preset
from tests.inference.helpers import SR

FAST = ("--start", "init", "--tier", "1")  # no model, no refinement: a few renders a file


@pytest.fixture(scope="module")
def note(renderer, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("note") / "note.wav"
    sf.write(path, renderer.render(Preset.init(), 57, 0.3, 0.6), SR)
    return path


def test_colliding_input_names_get_distinct_outputs_said_aloud(note, cli, tmp_path, caplog):
    folder = tmp_path / "in"
    for rel in ("pluck.v1.wav", "pluck.v2.wav", "a.wav", "a.flac", "x/kick.wav", "y/kick.wav"):
        dest = folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        audio, sr = sf.read(note)
        sf.write(dest, audio, sr)
    out = tmp_path / "out"
    run = cli("infer", "-i", folder, "-o", out, *FAST)
    assert run.code == 0, run.err
    names = sorted(p.name for p in out.glob("*.vital"))
    assert names == sorted(
        ["pluck.v1.vital", "pluck.v2.vital", "a_wav.vital", "a_flac.vital", "x_kick.vital", "y_kick.vital"]
    )
    assert "matched 6 of 6" in run.out
    renamed = [r.getMessage() for r in caplog.records if "another input has the name" in r.getMessage()]
    assert len(renamed) == 4


def test_nothing_is_replaced_without_overwrite(note, cli, tmp_path):
    notes = tmp_path / "notes.vital"
    notes.write_text("my own notes, not a preset")
    run = cli("infer", "-i", note, "-o", notes, *FAST)
    assert run.code == 2 and "exists; pass --overwrite" in run.err
    assert notes.read_text() == "my own notes, not a preset"
    assert cli("infer", "-i", note, "-o", notes, *FAST, "--overwrite").code == 0
    Preset.load(notes)


def test_an_unwritable_place_is_one_line_and_leaves_nothing(note, cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    run = cli("infer", "-i", note, "-o", blocker / "m.vital", *FAST, "--render", "--tutorial")
    assert run.code == 2 and run.err.count("\n") == 1 and "cannot write the match" in run.err


@pytest.fixture
def full_disk(tmp_path):
    """A 160 KiB tmpfs: room for a preset, not for its WAV (root only; skipped elsewhere)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)]).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)])


def test_a_full_disk_is_one_line_and_leaves_no_partial_set(note, full_disk):
    run = subprocess.run(
        [sys.executable, "-m", "synthmatch", "infer", "-i", str(note), "-o", str(full_disk / "m.vital")]
        + [*FAST, "--render", "--tutorial"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2 and "No space left on device" in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert list(full_disk.iterdir()) == []  # not the .vital without its WAV, no temporaries
