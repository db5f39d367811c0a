"""A wavetable made from the target (`infer --wavetable target`): the table follows the sound, plays at
its pitch from a .vital, and a sound that is not pitched and harmonic keeps today's path and says so."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from synthmatch.audio.io import write_wav
from synthmatch.audio.pitch import estimate_pitch
from synthmatch.errors import ConfigError
from synthmatch.inference.pipeline import InferConfig
from synthmatch.inference.target_table import target_table, with_target_table
from synthmatch.synth.presets import Modulation, Preset, base_preset
from synthmatch.synth.wavetables import decode_wave, is_made_from_sound
from tests.inference.helpers import NOTE, SR

NOTE_S, LENGTH_S = 0.5, 0.7


def _osc_1_frames(preset: Preset) -> list[np.ndarray]:
    keys = preset.data.get("wavetables")[0]["groups"][0]["components"][0]["keyframes"]
    return [decode_wave(k["wave_data"]) for k in keys]


def _brightness(wave: np.ndarray) -> float:
    """Mean harmonic number, power-weighted, of one cycle (or of any window: in bins)."""
    power = np.square(np.abs(np.fft.rfft(wave))[1:])
    return float(power @ np.arange(1, power.size + 1) / power.sum())


@pytest.mark.parametrize(
    "source",
    [Preset.init(), base_preset().with_values(osc_1_wave_frame=256)],  # a saw, a square
    ids=["saw", "square"],
)
def test_a_table_from_a_rendered_note_round_trips_and_plays_at_its_pitch(source, renderer, tmp_path):
    audio = renderer.render(source, NOTE, NOTE_S, LENGTH_S)
    pitch = estimate_pitch(audio, SR)
    table, why_not = target_table(audio, SR, pitch, name="note.wav")
    assert why_not is None and table is not None
    preset = with_target_table(Preset.init(), table)
    loaded = Preset.load(preset.save(tmp_path / "table.vital"))
    assert is_made_from_sound(loaded.data.get("wavetables")[0])
    frames = _osc_1_frames(loaded)
    assert len(frames) == table.analysis.n_frames
    for got, made in zip(frames, _osc_1_frames(preset)):
        np.testing.assert_allclose(got, made, atol=1e-6)
    # the steady part's frame has the source's harmonics: a square none of the even ones
    steady = np.abs(np.fft.rfft(frames[len(frames) // 2]))[1:9]
    if source.values["osc_1_wave_frame"] == 256:
        assert steady[1::2].max() < 0.05 * steady[0]
    else:
        assert steady[1] / steady[0] == pytest.approx(0.5, rel=0.15)
    played = renderer.render(loaded, NOTE, NOTE_S, LENGTH_S)
    assert abs(estimate_pitch(played, SR).midi - pitch.midi) < 0.5


def test_the_frames_follow_a_note_whose_brightness_dies_away(renderer):
    pluck = Preset.init().with_values(
        filter_1_on=1, filter_1_cutoff=55, env_2_attack=0.0, env_2_decay=0.75, env_2_sustain=0.0
    )
    pluck = pluck.with_modulations([Modulation("env_2", "filter_1_cutoff", amount=0.6)])
    audio = renderer.render(pluck, NOTE, NOTE_S, LENGTH_S)
    table, _ = target_table(audio, SR, estimate_pitch(audio, SR), name="pluck.wav")
    assert table is not None
    brightness = [_brightness(f) for f in _osc_1_frames(with_target_table(Preset.init(), table))]
    assert brightness[1] > 1.5 * brightness[-1]
    # played from the preset, the frame moves at the note's pace: bright early, dark late
    played = renderer.render(with_target_table(Preset.init(), table), NOTE, NOTE_S, LENGTH_S)
    early, late = played[int(0.03 * SR) : int(0.1 * SR)], played[int(0.4 * SR) : int(0.47 * SR)]
    target_ratio = _brightness(audio[int(0.03 * SR) : int(0.1 * SR)]) / _brightness(
        audio[int(0.4 * SR) : int(0.47 * SR)]
    )
    assert _brightness(early) / _brightness(late) == pytest.approx(target_ratio, rel=0.3)


def test_noise_gets_no_table():
    noise = np.random.default_rng(1).standard_normal(SR // 2).astype(np.float32) * 0.2
    table, why_not = target_table(noise, SR, estimate_pitch(noise, SR))
    assert table is None and "no clear pitch" in str(why_not)


def test_the_choice_is_checked():
    with pytest.raises(ConfigError, match="--wavetable must be one of basic, target, auto"):
        InferConfig(inputs=(Path("note.wav"),), wavetable="bank")


def test_cli_target_table_in_the_vital_and_the_tutorial(known, cli, tmp_path, caplog):
    out = tmp_path / "m.vital"
    run = cli("infer", "-i", known.wav, "-o", out, "--start", "init", "--wavetable", "target", "--tutorial")
    assert run.code == 0, run.err
    assert "[oscillator 1: a wavetable made from the sound]" in run.out
    table = Preset.load(out).data.get("wavetables")[0]
    assert table["name"] == "Made from known_A3.wav" and is_made_from_sound(table)
    md = out.with_suffix(".md").read_text()
    assert '"Made from known_A3.wav", made from the sound itself' in md
    assert "Pitch Splice" in md and "Oscillator 1 (made from the sound)" in md
    # noise: no table, one line saying so, and the start's tables as they were
    noise = write_wav(tmp_path / "noise.wav", np.random.default_rng(2).standard_normal(SR // 2) * 0.2, SR)
    with caplog.at_level(logging.WARNING):
        run = cli(
            "infer", "-i", noise, "-o", tmp_path / "n.vital", "--start", "init", "--wavetable", "target"
        )
    assert run.code == 0, run.err
    lines = [r.getMessage() for r in caplog.records if "--wavetable target" in r.getMessage()]
    assert len(lines) == 1 and "no clear pitch" in lines[0] and "keeping the start's wavetables" in lines[0]
    assert not is_made_from_sound(Preset.load(tmp_path / "n.vital").data.get("wavetables")[0])
    # auto: the same rule, said at INFO (the user did not ask for a table)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        run = cli("infer", "-i", noise, "-o", tmp_path / "a.vital", "--start", "init", "--wavetable", "auto")
    assert run.code == 0, run.err
    said = [r for r in caplog.records if "--wavetable auto" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.INFO]
