"""The command line, end to end, in subprocesses (as users run it)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from synthmatch.audio.io import write_wav
from synthmatch.cli import build_parser, verbosity
from synthmatch.synth.presets import Preset
from tests.helpers import EXAMPLES_DIR
from tests.inference.helpers import DURATION_S, NOTE, NOTE_S, SR, known_preset


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "synthmatch", *args], capture_output=True, text=True, timeout=300
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def popen(*args: str | Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "synthmatch", *map(str, args)], text=True, **kw)


@pytest.fixture(scope="module")
def short_target(renderer, tmp_path_factory) -> Path:
    """A 1 s shaped saw at A3: matched from init in a second or two."""
    audio = renderer.render(known_preset(), NOTE, NOTE_S, DURATION_S)
    return write_wav(tmp_path_factory.mktemp("target") / "saw_A3.wav", audio, SR)


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


@pytest.mark.parametrize(
    "argv, want",
    [
        (["-v", "infer", "-i", "x"], (1, False)),
        (["infer", "-i", "x", "-v"], (1, False)),
        (["-v", "infer", "-vv", "-i", "x"], (3, False)),
        (["infer", "-q", "-i", "x"], (0, True)),
        (["-q", "params"], (0, True)),
        (["params"], (0, False)),
    ],
)
def test_logging_flags_go_before_or_after_the_command(argv, want):
    assert verbosity(build_parser().parse_args(argv)) == want


def test_folder_results_stream_and_each_error_is_one_line(short_target, tmp_path):
    """Each file's line is printed as soon as it is matched (a pipe sees it then too), a failing file is
    one line, and `-q` after the command silences the INFO lines (each target cut to 0.5 s says one)."""
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    shutil.copy(short_target, folder / "a.wav")
    (folder / "b_broken.wav").write_bytes(b"RIFF" + b"\x00" * 100)
    shutil.copy(short_target, folder / "c.wav")
    args = ("infer", "-i", folder, "-o", out, "--start", "init", "--tier", "1", "--max-seconds", "0.5", "-q")
    proc = popen(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    c_done = (out / "c.vital").exists()
    rest, err = proc.stdout.read(), proc.stderr.read()  # (communicate() would lose readline's buffer)
    assert proc.wait(timeout=300) == 1, (first, rest, err)
    assert first.startswith(f"{folder / 'a.wav'}: MIDI {NOTE}") and not c_done, (first, c_done)
    lines = [first.rstrip("\n"), *rest.splitlines()]
    assert [line.split(": ")[0] for line in lines[:3]] == [
        str(folder / n) for n in ("a.wav", "b_broken.wav", "c.wav")
    ]
    assert lines[1].startswith(f"{folder / 'b_broken.wav'}: error: not a readable audio file"), lines[1]
    assert sum("not a readable audio file" in line for line in [*lines, *err.splitlines()]) == 1, (rest, err)
    assert lines[3] == f"matched 2 of 3 files into {out}" and "INFO" not in err, (lines, err)


def test_ctrl_c_keeps_the_best_match_so_far(short_target, tmp_path):
    """SIGINT during the refinement: the search stops, its best so far is finished and written, the run
    says so and exits 130. (`-vv` after the command logs each generation, which the test waits for.)"""
    out, stdout, stderr = tmp_path / "m.vital", tmp_path / "stdout", tmp_path / "stderr"
    args = ("infer", "-i", short_target, "-o", out, "--start", "init", "--tier", "1", "--refine",
            "--refine-evals", "100000", "--refine-timeout", "600", "--json", "-vv")  # fmt: skip
    with stdout.open("w") as o, stderr.open("w") as e:
        proc = popen(*args, stdout=o, stderr=e)
        try:
            deadline = time.monotonic() + 120
            while "refinement generation 2:" not in stderr.read_text():  # inside the search loop
                assert proc.poll() is None and time.monotonic() < deadline, stderr.read_text()
                time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=120)
        finally:
            proc.kill()
    err = stderr.read_text()
    assert code == 130, err[-3000:]
    (r,) = json.loads(stdout.read_text())
    assert r["interrupted"] is True and r["preset"] == str(out)
    ref = r["refine"]
    assert ref["stop_reason"] == "interrupted" and ref["n_evals"] < 100_000
    assert ref["final_loss"] <= ref["aligned_loss"]
    Preset.load(out)
    said = [line for line in err.splitlines() if line.startswith("interrupted:")]
    assert said == [f"interrupted: kept the best match so far ({r['renders']} of 100000 renders) -> {out}"]
    assert "Traceback" not in err
