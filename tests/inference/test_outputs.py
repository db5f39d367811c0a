"""What `infer` writes: distinct names for colliding inputs, nothing replaced without --overwrite, and a
full disk or an unwritable folder as one line with nothing left behind."""

from __future__ import annotations

import re
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


def test_render_plays_a_match_at_the_note_it_was_matched_at(note, cli, tmp_path):
    """The .vital stores the matched note and key time; `render` plays them unless told otherwise."""
    from synthmatch.audio.pitch import estimate_pitch

    out = tmp_path / "m.vital"
    assert cli("infer", "-i", note, "-o", out, *FAST).code == 0
    stored = Preset.load(out).played_note
    assert stored is not None and stored.midi_note == 57 and stored.duration_s == pytest.approx(0.6)
    run = cli("render", out, "-o", tmp_path / "r.wav")
    assert run.code == 0 and "MIDI note 57 (A3, the note it was matched at, stored in the preset)" in run.out
    audio, sr = sf.read(tmp_path / "r.wav")
    pitch = estimate_pitch(audio, sr)
    assert pitch.pitched and pitch.midi_note == 57  # not C4
    assert len(audio) == pytest.approx(0.6 * sr, abs=64)
    run = cli("render", out, "-o", tmp_path / "e.wav", "--midi-note", "64")  # a flag still wins
    assert run.code == 0 and "MIDI note 64 (E4, the note given)" in run.out
    assert estimate_pitch(*sf.read(tmp_path / "e.wav")).midi_note == 64
    plain = Preset.init().save(tmp_path / "plain.vital")  # no stored note: C4 as before
    run = cli("render", plain, "-o", tmp_path / "p.wav")
    assert run.code == 0 and "MIDI note 60 (C4, the default: the preset stores no note)" in run.out


def test_outputs_name_no_path_of_this_machine(note, cli, tmp_path, monkeypatch):
    """The .vital, the tutorial and --json name the model and the start by name, never by path."""
    import synthmatch
    from synthmatch.inference.predict import default_model_path

    model = default_model_path()
    if model is None:
        pytest.skip("no bundled model")
    monkeypatch.chdir(tmp_path)
    Path("in").mkdir()
    shutil.copy(note, "in/note.wav")
    run = cli("infer", "-i", "in/note.wav", "-o", "out/m.vital", "--tutorial", "--json")
    assert run.code == 0, run.err
    (r,) = run.json()
    assert r["start"]["description"].startswith("the bundled default model (tier ")
    assert set(r["verdict"]) == {"distance", "similarity", "verdict"}
    vital, md = Path("out/m.vital").read_text(), Path("out/m.md").read_text()
    for text in (run.out, vital, md):
        for path in (str(tmp_path), str(model), str(model.parent), str(Path(synthmatch.__file__).parent)):
            assert path not in text
    assert "Started from: the bundled default model" in md
    assert re.search(r"Distance to the target: similarity \d+/100 \([a-z ]+\), distance \d\.\d{3} \(", md)


def test_a_failed_start_shows_no_sentinel_loss():
    """A start that did not render scores FAILED_LOSS: the tutorial shows the work, not 'loss 1000 -> x'."""
    from synthmatch.inference.pipeline import _refinement_fact
    from synthmatch.inference.refine import RefineResult
    from synthmatch.inference.scoring import FAILED_LOSS

    failed = RefineResult(Preset.init(), initial_loss=FAILED_LOSS, final_loss=3.727, n_evals=40, n_params=9)
    assert _refinement_fact(failed) == "CMA-ES refinement: 40 evaluations over 9 parameters"
    real = RefineResult(Preset.init(), initial_loss=0.9, final_loss=0.4, n_evals=40, n_params=9)
    assert (
        _refinement_fact(real) == "CMA-ES refinement: loss 0.900 -> 0.400 in 40 evaluations over 9 parameters"
    )
    # --json and the demo's table: null, not the sentinel
    summary = failed.info
    assert summary["initial_loss"] is None and summary["final_loss"] == 3.727
    from synthmatch.web.demo import stats_markdown

    table = stats_markdown({"refine": summary})
    assert "1000" not in table and "| search loss at the start | - |" in table.replace("  ", " ")
    # every loss of the --json record, however deep; a pitch or a time above 1000 stays
    from pathlib import Path

    from synthmatch.inference.pipeline import MatchResult

    info = {
        "pitch": {"f0_hz": 1760.0},
        "refine": {"history": [FAILED_LOSS, 0.5], "elapsed_s": 1200.0},
        "candidates": [{"search_loss": FAILED_LOSS}],
        "discrete_tried": {"filter_1_model": {"6": FAILED_LOSS, "0": 0.2}},
    }
    record = MatchResult(input=Path("x.wav"), info=info).summary()
    assert record["pitch"]["f0_hz"] == 1760.0 and record["refine"]["elapsed_s"] == 1200.0
    assert record["refine"]["history"] == [None, 0.5] and record["candidates"][0]["search_loss"] is None
    assert record["discrete_tried"]["filter_1_model"] == {"6": None, "0": 0.2}
