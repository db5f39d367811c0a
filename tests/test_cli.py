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


def test_the_readme_pipeline_end_to_end(tmp_path):
    """generate -> precompute-mels -> train -> infer -> eval --quick, each as a user runs it, each stage
    reading what the one before wrote."""
    data, run_dir = tmp_path / "t1.h5", tmp_path / "run"
    run("generate", "--tier", "1", "-n", "16", "-o", str(data), "--workers", "1", "--duration", "1.0",
        "--note-duration", "0.6", "--part-size", "8", "--no-progress")  # fmt: skip
    run("precompute-mels", "-d", str(data))
    run("train", "-d", str(data), "--output-dir", str(run_dir), "--epochs", "1", "--batch-size", "8",
        "--model-size", "tiny", "--max-steps", "2")  # fmt: skip
    checkpoint = run_dir / "best_model.pt"  # the seed report's name: its .safetensors is found
    out = tmp_path / "match.vital"
    r = run(
        "infer",
        "-c",
        str(checkpoint),
        "-i",
        str(EXAMPLES_DIR / "vital_pluck_C4.wav"),
        "-o",
        str(out),
        "--json",
    )
    assert out.is_file() and json.loads(r.stdout)[0]["preset"]
    ev = run(
        "eval", "--quick", "-c", str(checkpoint), "--methods", "init,model", "-o", str(tmp_path / "eval")
    )
    doc = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert "model" in doc["summary"]["in_domain"], ev.stdout
