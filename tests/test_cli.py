"""The command line, end to end, in subprocesses (as users run it)."""

from __future__ import annotations

import json
import subprocess
import sys

import soundfile as sf

from synthmatch.synth.presets import Preset
from tests.helpers import EXAMPLES_DIR


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "synthmatch", *args], capture_output=True, text=True, timeout=300
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def test_help_lists_commands():
    out = run("--help").stdout
    for cmd in ("params", "render", "infer"):
        assert cmd in out


def test_params_tier1_json():
    doc = json.loads(run("params", "--tier", "1", "--json").stdout)
    names = {c["name"] for c in doc["controls"]}
    assert "filter_1_cutoff" in names and "osc_3_level" not in names
    assert doc["counts"]["continuous"] + doc["counts"]["categorical"] == len(doc["controls"])
    row = next(c for c in doc["controls"] if c["name"] == "filter_1_model")
    assert row["kind"] == "categorical" and row["options"][0] == "Analog" and row["tier"] == 1


def test_render_command(tmp_path):
    out = tmp_path / "reese.wav"
    run(
        "render",
        "presets/community/TechnoReese.vital",
        "-o",
        str(out),
        "--midi-note",
        "36",
        "--duration",
        "1",
    )
    audio, sr = sf.read(out)
    assert sr == 44100 and len(audio) == 44100


def test_infer_folder_writes_vital_and_wav(tmp_path):
    proc = run("infer", "-i", str(EXAMPLES_DIR), "-o", str(tmp_path), "--render", "--json")
    results = json.loads(proc.stdout)
    assert len(results) == len(list(EXAMPLES_DIR.glob("*.wav"))) >= 6
    for r in results:
        assert r["error"] is None
        Preset.load(r["preset"])
        audio, sr = sf.read(r["audio"])
        assert sr == 44100 and len(audio) > 0


def test_bad_input_is_one_line_error(tmp_path):
    missing = run("infer", "-i", str(tmp_path / "nope.wav"), "-o", str(tmp_path), check=False)
    assert missing.returncode != 0 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
    bad = tmp_path / "bad.wav"
    bad.write_text("this is not audio")
    proc = run("infer", "-i", str(bad), "-o", str(tmp_path), check=False)
    assert proc.returncode != 0 and "bad.wav" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("*.vital"))
