"""What the user gets from `synthmatch infer`: the whole note, in tune, at the target's level, never silent,
and a written WAV that is what the exported .vital plays."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import soundfile as sf

from synthmatch.audio.distances import match_distance
from synthmatch.audio.io import write_wav
from synthmatch.audio.pitch import estimate_pitch
from synthmatch.inference.calibrate import TUNE_TOLERANCE_CENTS
from synthmatch.synth.presets import Preset
from tests.helpers import rms_db, within_noise
from tests.inference.helpers import NOTE, SR, known_preset

DURATION_S, NOTE_S = 2.0, 0.7
CENTS = 30  # the target sits between two notes


@pytest.fixture(scope="module")
def target(renderer, tmp_path_factory):
    """The known preset 30 cents sharp of A3, key held 0.7 s of 2 s, peak-normalised like a user's file."""
    preset = known_preset().with_values(voice_tune=CENTS / 100, env_1_release=0.5)
    audio = renderer.render(preset, NOTE, NOTE_S, DURATION_S, fresh=True)
    audio = audio * (0.999 / np.abs(audio).max())
    return write_wav(tmp_path_factory.mktemp("t") / "sharp_A3.wav", audio, SR)


def _infer(cli, target, out, *extra):
    run = cli("infer", "-i", target, "-o", out, "--json", *extra)
    assert run.code == 0, run.err
    return run.json()[0]


def _fresh(renderer, path, r) -> np.ndarray:
    return renderer.render(
        Preset.load(path), r["midi_note"], r["note_duration_s"], r["duration_s"], fresh=True
    )


def _cents(target_audio, match_audio) -> float:
    t, m = estimate_pitch(target_audio, SR), estimate_pitch(match_audio, SR)
    return 1200 * np.log2(t.f0_hz / m.f0_hz)


def test_whole_note_and_the_model_window(target, cli, tmp_path):
    """The model sees its own 2 s window; timing, matching and the WAV use the whole target, here 2 s of a
    file cut at --max-seconds 2, and the key-held time is the target's (0.7 s), never the window's."""
    long = tmp_path / "long.wav"
    audio, sr = sf.read(target, dtype="float32")
    sf.write(long, np.concatenate([audio, np.zeros(SR, np.float32)]), sr)  # 3 s, the last one silent
    r = _infer(cli, long, tmp_path / "a.vital", "--render", "--max-seconds", "2.5")
    assert r["duration_s"] == pytest.approx(2.5, abs=0.01) and r["target"]["truncated"]
    assert r["note_duration_s"] == pytest.approx(NOTE_S, abs=0.06) and r["timing"]["source"] == "estimated"
    assert r["model_window_s"] == pytest.approx(2.0)
    written, _ = sf.read(tmp_path / "a.wav", dtype="float32")
    assert written.shape == (int(2.5 * SR), 2)


def test_a_key_held_past_the_end_is_said_in_one_line(target, cli, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        r = _infer(cli, target, tmp_path / "a.vital", "--start", "init", "--note-duration", "5")
    assert r["note_duration_s"] == pytest.approx(DURATION_S, abs=1e-3)
    lines = [rec.getMessage() for rec in caplog.records if "longer than the target" in rec.getMessage()]
    assert len(lines) == 1 and "held to the end" in lines[0]


def test_the_written_wav_is_what_the_vital_plays(target, cli, renderer, tmp_path):
    """The WAV infer writes equals a fresh render of the written .vital (as `synthmatch render` makes
    it), within the noise floor of six such renders."""
    out = tmp_path / "m.vital"
    r = _infer(cli, target, out, "--start", "init", "--render", "--refine", "--refine-evals", "30")
    written, _ = sf.read(out.with_suffix(".wav"), dtype="float32")
    run = cli(
        "render", out, "-o", tmp_path / "again.wav", "--midi-note", r["midi_note"], "--note-duration",
        r["note_duration_s"], "--duration", r["duration_s"],
    )  # fmt: skip
    assert run.code == 0, run.err
    again, _ = sf.read(tmp_path / "again.wav", dtype="float32")
    more = [_fresh(renderer, out, r) for _ in range(5)]
    ok, median, floor = within_noise(written.mean(axis=1), [again, *more], SR)
    assert ok, (median, floor)
    assert r["match_distance"] == pytest.approx(
        match_distance(sf.read(target)[0], written.mean(1), SR), abs=1e-3
    )


@pytest.mark.parametrize("refine", [False, True], ids=["model only", "refined"])
def test_in_tune_on_every_path(target, cli, renderer, tmp_path, refine):
    """A start 3 semitones off is brought to the target's pitch, cents included, with or without refinement."""
    off = known_preset().with_values(osc_1_transpose=3).save(tmp_path / "off.vital")
    extra = ("--refine", "--refine-evals", "40") if refine else ()
    r = _infer(cli, target, tmp_path / "m.vital", "--start", off, *extra)
    audio, _ = sf.read(target, dtype="float32")
    cents = _cents(audio, _fresh(renderer, tmp_path / "m.vital", r))
    assert abs(cents) <= TUNE_TOLERANCE_CENTS, r["pitch_alignment" if not refine else "refine"]


def test_the_model_alone_plays_in_tune(target, cli, renderer, tmp_path):
    r = _infer(cli, target, tmp_path / "m.vital")
    assert r["start"]["source"] == "model" and "refine" not in r
    audio, _ = sf.read(target, dtype="float32")
    assert abs(_cents(audio, _fresh(renderer, tmp_path / "m.vital", r))) <= TUNE_TOLERANCE_CENTS


def test_the_match_plays_at_the_targets_level_without_clipping(target, cli, renderer, tmp_path):
    """Vital's presets play 10-20 dB below a peak-normalised file; the exported one is brought to the
    target's RMS level while the objective stays gain-invariant (the distance does not move)."""
    quiet = Preset.init().with_values(volume=(80 - 26) ** 2).save(tmp_path / "quiet.vital")  # -26 dB
    r = _infer(cli, target, tmp_path / "m.vital", "--start", quiet, "--refine", "--refine-evals", "30")
    audio, _ = sf.read(target, dtype="float32")
    match = _fresh(renderer, tmp_path / "m.vital", r)
    assert r["level"]["before_db"] < r["level"]["target_db"] - 10
    assert abs(rms_db(match) - rms_db(audio)) <= 1.5, r["level"]
    assert np.abs(match).max() <= 1.0


def test_never_silent_without_refinement(target, cli, renderer, tmp_path):
    """A start with every oscillator off is no match: it falls back to Vital's init preset and says so."""
    silent = Preset.init().with_values(osc_1_on=0).save(tmp_path / "off.vital")
    r = _infer(cli, target, tmp_path / "m.vital", "--start", silent)
    assert r["fallback"]["to"] == "init" and not r["silent"]
    assert rms_db(_fresh(renderer, tmp_path / "m.vital", r)) > -40
    assert json.loads((tmp_path / "m.vital").read_text())["settings"]["osc_1_on"] == 1


def test_a_target_held_to_its_end_keeps_sounding_after_an_earlier_release(renderer, tmp_path):
    """No release shows in a target that holds its level to its end, so the match is given the longest
    release: played with a shorter key press it keeps sounding as the target does, instead of being cut."""
    from synthmatch.inference.match import MatchTarget, match_preset
    from synthmatch.synth.params import param_space

    audio = renderer.render(Preset.init(), NOTE, DURATION_S, DURATION_S, fresh=True)  # sustain 1 to the end
    target = MatchTarget.of(audio, SR, NOTE)
    assert target.note_duration_s == pytest.approx(DURATION_S)  # estimated: held to the end
    m = match_preset(Preset.init().with_values(env_1_release=0.3), 2, target, renderer)
    assert m.steps.release == {"from": 0.3, "to": round(param_space()["env_1_release"].max, 4)}
    early = renderer.render(m.preset, NOTE, 0.5, DURATION_S, fresh=True)  # the key let go after 0.5 s
    assert rms_db(early[int(1.5 * SR) :]) > rms_db(audio[int(1.5 * SR) :]) - 6


def test_a_match_its_peaks_hold_below_the_target_gets_a_soft_clip_limiter(renderer):
    """A plain saw has a higher crest factor than a hard-driven one: at the driven target's RMS it would
    pass full scale. Level matching adds Vital's Distortion as a soft clip (a limiter) and reaches the
    target's level with the peak below full scale; a start with its own distortion is left as it is."""
    from synthmatch.inference.match import MatchTarget, match_preset

    driven = Preset.init().with_values(
        distortion_on=1.0, distortion_type=0.0, distortion_drive=24.0, distortion_mix=1.0
    )
    audio = renderer.render(driven, NOTE, NOTE_S, DURATION_S, fresh=True)
    audio = audio * (0.999 / np.abs(audio).max())
    target = MatchTarget.of(audio, SR, NOTE, note_duration_s=NOTE_S)
    m = match_preset(Preset.init(), 2, target, renderer)
    level = m.steps.level
    assert level is not None and level.limiter_drive_db is not None, level
    assert m.preset.values["distortion_on"] == 1.0
    fresh = renderer.render(m.preset, NOTE, NOTE_S, DURATION_S, stereo=True, fresh=True)
    assert abs(rms_db(fresh.mean(axis=0)) - rms_db(audio)) <= 1.5, level
    assert np.abs(fresh).max() <= 1.0
    own = match_preset(driven.with_values(distortion_drive=0.0), 2, target, renderer)
    assert own.steps.level is not None and own.steps.level.limiter_drive_db is None
    assert own.preset.values["distortion_drive"] == 0.0


def test_voice_amplitude_gain_is_heard_as_asked(renderer):
    """Volume at its top, the rest of a gain comes from Voice Amplitude, which plays squared: +6 dB asked
    is +6 dB heard (measured on renders), not +12."""
    from synthmatch.inference.calibrate import _gain_staged

    quiet = Preset.init().with_values(voice_amplitude=0.25)
    top = _gain_staged(quiet, 100.0, ())[0]  # Volume alone, as far as it goes
    louder, left = _gain_staged(top, 6.0, ("voice",))
    assert left == pytest.approx(0.0, abs=0.05)
    before = rms_db(renderer.render(top, NOTE, 0.5, 1.0, fresh=True))
    after = rms_db(renderer.render(louder, NOTE, 0.5, 1.0, fresh=True))
    assert after - before == pytest.approx(6.0, abs=0.5)
