"""Reading a target: every unusable input gives one clear CLI error, a non-zero exit and no output."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synthmatch.inference.target import TargetTooShortError, load_target
from tests.helpers import EXAMPLES_DIR

SR = 44100


def _tone(n: int, sr: int = SR, f0: float = 220.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * f0 * np.arange(n) / sr)).astype(np.float32)


def _missing(d: Path) -> Path:
    return d / "nope.wav"


def _no_audio_dir(d: Path) -> Path:
    (d / "folder").mkdir()
    (d / "folder" / "notes.txt").write_text("no audio here")
    return d / "folder"


def _empty(d: Path) -> Path:
    (d / "empty.wav").write_bytes(b"")
    return d / "empty.wav"


def _not_audio(d: Path) -> Path:
    (d / "text.wav").write_text("this is not audio, just text with a .wav name\n")
    return d / "text.wav"


def _corrupt(d: Path) -> Path:
    head = (EXAMPLES_DIR / "vital_pluck_C4.wav").read_bytes()[:30]
    (d / "corrupt.wav").write_bytes(head + b"\x00" * 500)  # RIFF header, then garbage
    return d / "corrupt.wav"


def _header_only(d: Path) -> Path:
    sf.write(d / "nosamples.wav", np.zeros(0, np.float32), SR)
    return d / "nosamples.wav"


def _silent(d: Path) -> Path:
    sf.write(d / "silent.wav", np.zeros(SR, np.float32), SR)
    return d / "silent.wav"


def _nan(d: Path) -> Path:
    x = _tone(SR)
    x[1000] = np.nan
    sf.write(d / "nan.wav", x, SR, subtype="FLOAT")
    return d / "nan.wav"


def _too_short(d: Path) -> Path:
    sf.write(d / "short.wav", _tone(1000), SR)
    return d / "short.wav"


BAD_INPUTS: list[tuple[str, Callable[[Path], Path], str]] = [
    ("missing path", _missing, "no such file"),
    ("folder without audio", _no_audio_dir, "folder holds no audio files"),
    ("empty file", _empty, "the file is empty (0 bytes)"),
    ("non-audio file", _not_audio, "not a readable audio file"),
    ("corrupt WAV", _corrupt, "not a readable audio file"),
    ("WAV without samples", _header_only, "holds no audio samples"),
    ("silent", _silent, "silent (every sample is zero"),
    ("NaN samples", _nan, "NaN or infinite samples"),
    ("shorter than n_fft", _too_short, "too short to match: 22.7 ms"),
]


@pytest.mark.parametrize("make, message", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
@pytest.mark.parametrize("output", ["out", "match.vital"])
def test_bad_input_is_one_line_error_and_writes_nothing(tmp_path, cli, make, message, output):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    path = make(inputs)
    out = tmp_path / output
    run = cli("infer", "-i", path, "-o", out, "--start", "init", "--render", "--tutorial")
    assert run.code != 0
    assert "Traceback" not in run.err
    assert len(run.error_lines) == 1, run.err
    line = run.error_lines[0]
    assert path.name in line and message in line, line
    assert not out.exists() and not out.with_suffix("").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs"]  # nothing written beside it either


def test_too_short_is_a_value_error_with_durations_and_sample_counts(tmp_path):
    path = tmp_path / "short22k.wav"
    sf.write(path, _tone(800, sr=22050), 22050)  # 36.3 ms at the file's own rate
    with pytest.raises(ValueError) as info:
        load_target(path, SR, max_seconds=4.0, min_samples=2048)
    assert isinstance(info.value, TargetTooShortError)
    msg = str(info.value)
    # the actual duration, the minimum, and the sample counts at both rates
    for part in (
        "36.3 ms",
        "1600 samples at 44100 Hz",
        "800 at the file's 22050 Hz",
        "46.4 ms",
        "2048 samples",
    ):
        assert part in msg, msg


def test_long_target_is_truncated_with_an_info_log(tmp_path, caplog):
    path = tmp_path / "long.wav"
    sf.write(path, _tone(6 * SR), SR)
    with caplog.at_level(logging.INFO, logger="synthmatch.inference.target"):
        target = load_target(path, SR, max_seconds=4.0)
    assert target.truncated and target.duration_s == pytest.approx(4.0)
    assert target.source_duration_s == pytest.approx(6.0)
    assert any(
        r.levelno == logging.INFO and "6.00 s" in r.getMessage() and "first 4.00 s" in r.getMessage()
        for r in caplog.records
    )


def test_any_rate_and_channel_count_is_resampled_to_mono_and_trimmed(tmp_path):
    sr = 22050
    tone = _tone(sr, sr=sr, f0=330.0)
    stereo = np.stack([tone, 0.5 * tone], axis=1)
    path = tmp_path / "stereo22k.flac"
    sf.write(path, np.concatenate([np.zeros((sr // 2, 2), np.float32), stereo]), sr)  # 0.5 s of silence
    target = load_target(path, SR, max_seconds=4.0)
    assert target.audio.ndim == 1 and target.sample_rate == SR
    assert (target.source_sample_rate, target.source_channels) == (sr, 2)
    assert target.trimmed_s == pytest.approx(0.5, abs=0.01)
    assert target.duration_s == pytest.approx(1.0, abs=0.01)
    spectrum = np.abs(np.fft.rfft(target.audio[: SR // 2] * np.hanning(SR // 2)))
    assert np.argmax(spectrum) * SR / (SR // 2) == pytest.approx(330.0, abs=3)
