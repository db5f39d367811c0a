"""The demo's matching engine without a browser: input bounds, messages, files, progress, cleanup."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synthmatch.errors import ConfigError, SynthmatchError
from synthmatch.synth.presets import Preset
from synthmatch.web.demo import Demo, DemoConfig, DemoInputError, parameter_rows
from tests.helpers import EXAMPLES_DIR, REPO

PLUCK = EXAMPLES_DIR / "vital_pluck_C4.wav"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    cfg = DemoConfig(workers=2, max_seconds=3.0, max_upload_mb=0.5, temp_dir=tmp_path_factory.mktemp("demo"))
    with Demo(cfg) as d:
        yield d
    assert not d.root.exists()  # close() removed every temporary file


def _tone(seconds: float, sample_rate: int = 44100, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _bad_input(kind: str, folder: Path) -> Path:
    path = folder / f"my_{kind}.wav"
    if kind == "wrong_format":
        path.write_text("not audio at all")
    elif kind == "silent":
        sf.write(path, np.zeros(44100, np.float32), 44100)
    elif kind == "too_short":
        sf.write(path, _tone(0.01), 44100)  # 441 samples, below one 2048-sample window
    elif kind == "too_long":
        sf.write(path, _tone(4.0, 8000), 8000)  # 64 kB: small, but 4 s > max_seconds 3
    elif kind == "too_large":
        sf.write(path, np.stack([_tone(2.0)] * 2, axis=1), 44100, subtype="FLOAT")  # 0.7 MB > 0.5 MB
    return path


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("wrong_format", "not a readable audio file"),
        ("silent", "silent"),
        ("too_short", "too short to match"),
        ("too_long", "too long (4.0 s); the demo accepts up to 3 s"),
        ("too_large", "too large (0.7 MB); the demo accepts files up to 0.5 MB"),
    ],
)
def test_bad_input_gives_a_readable_message(demo, tmp_path, kind, expected):
    path = _bad_input(kind, tmp_path)
    with pytest.raises(SynthmatchError) as info:
        demo.match(path)
    message = str(info.value)
    assert expected in message
    assert message.startswith(path.name) and str(tmp_path) not in message  # the name, not the temp path


def test_missing_upload_and_bad_settings(demo):
    with pytest.raises(DemoInputError, match="upload a sound file or record one"):
        demo.match(None)
    with pytest.raises(ConfigError, match="MIDI note"):
        demo.match(PLUCK, midi_note=200)
    with pytest.raises(ConfigError, match="evaluation budget"):
        demo.match(PLUCK, refine=True, refine_evals=5000)
    with pytest.raises(ConfigError, match="--port"):
        DemoConfig(port=0)
    with pytest.raises(ConfigError, match="--refine-evals"):
        DemoConfig(refine_evals=50, max_refine_evals=20)


def test_refined_match_files_progress_and_session_cleanup(demo):
    calls: list[tuple[float, str]] = []
    r = demo.match(
        PLUCK, refine=True, refine_evals=24, session="s1", progress=lambda f, text: calls.append((f, text))
    )
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] >= 0.95
    assert any(text.startswith("CMA-ES refinement: ") and "/24 evaluations" in text for _, text in calls)
    ref = r.info["refine"]
    assert (
        1 < ref["n_evals"] <= 24 and ref["final_loss"] <= ref["aligned_loss"]
    )  # (alignment may trade loss for tune)
    for key in ("initial loss", "final loss", "evaluations", "time", "improved"):
        assert key in r.stats_md
    assert Preset.load(r.preset_path).name == "synthmatch vital_pluck_C4"
    audio, sr = sf.read(r.audio_path)
    assert sr == 44100 and audio.shape[0] > 0.5 * sr and np.abs(audio).max() > 1e-3
    assert r.figure_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "# Rebuilding vital_pluck_C4.wav in Vital" in r.tutorial_md
    assert "Matched" in r.status_md and "MIDI note" in r.status_md
    # a new match of the session replaces its earlier files; closing the tab removes the session's folder
    r2 = demo.match(PLUCK, midi_note=60, session="s1")
    assert not r.preset_path.exists() and r2.preset_path.exists()
    assert "your override" in r2.status_md and "Refinement:** off" in r2.stats_md
    demo.end_session("s1")
    assert not demo.session_dir("s1").exists()


def test_parameter_rows_show_values_and_confidences(space):
    categorical = space.tier(2).categorical[0]
    preset = Preset.init().with_values(filter_1_on=1.0, filter_1_cutoff=80.0)
    rows = parameter_rows(preset, 2, {"confidence": {categorical: 0.834}})
    by_name = {row[0]: row for row in rows}
    assert by_name["Filter 1 Cutoff"][1] != by_name["Filter 1 Cutoff"][2]  # value vs Vital's init
    assert by_name[space[categorical].display_name][3] == "83%"
    assert all(row[3] == "" for row in rows if row[0] != space[categorical].display_name)


def test_core_never_imports_web_and_missing_gradio_gives_install_command():
    src = REPO / "src" / "synthmatch"
    offenders = [
        str(p.relative_to(src))
        for p in src.rglob("*.py")
        if p.parent.name not in ("web", "cli") and "synthmatch.web" in p.read_text()
    ]
    assert offenders == []
    code = (
        "import sys; import synthmatch.cli; assert 'gradio' not in sys.modules\n"
        "sys.modules['gradio'] = None  # as if the web extra were not installed\n"
        "raise SystemExit(synthmatch.cli.main(['demo']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'synthmatch[web]'" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_cli_serves_on_localhost_and_cleans_up_on_ctrl_c(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the demo's temporary folders and Gradio's cache
    cmd = [sys.executable, "-m", "synthmatch", "demo", "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "synthmatch demo on" not in line and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
        assert f"synthmatch demo on http://127.0.0.1:{port}/" in line
        assert list(tmp_path.glob("synthmatch-demo-*"))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as page:
            assert page.status == 200 and b"<html" in page.read()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    assert not list(tmp_path.glob("synthmatch-demo-*"))  # removed on the way out


def test_idle_and_surplus_sessions_are_pruned(demo):
    """API clients start a session per call: their files go after an hour idle or beyond the newest 64."""
    import os
    import time

    from synthmatch.web.demo import MAX_SESSIONS, SESSION_TTL_S

    now = time.time()
    made = []
    for i in range(MAX_SESSIONS + 5):
        d = demo.session_dir(f"api{i:03d}")
        (d / "00001").mkdir(parents=True)
        age = SESSION_TTL_S + 60 if i < 3 else i  # three idle for over an hour, the rest recent
        os.utime(d, (now - age, now - age))
        made.append(d)
    demo.prune_sessions(keep="api010")
    left = {d.name for d in demo.root.iterdir()}
    assert "api010" in left and not {"api000", "api001", "api002"} & left
    assert len(left) <= MAX_SESSIONS
    for d in made:
        demo.end_session(d.name)
