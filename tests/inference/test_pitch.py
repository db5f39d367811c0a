"""Pitch and timing of rendered Vital notes (audio.pitch), as matching uses them."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import soundfile as sf

from synthmatch.audio.pitch import PITCHED_CONFIDENCE, estimate_pitch, estimate_timing
from synthmatch.synth.presets import Preset, base_preset
from tests.helpers import EXAMPLES_DIR

sys.path.insert(0, str(EXAMPLES_DIR))
from make_examples import vital_examples  # noqa: E402

SR = 44100
NOTES = list(range(26, 106, 4))  # E1 .. A7


def _presets() -> dict[str, tuple[Preset, int]]:
    """name -> (preset, semitones between the played note and the sounding pitch)."""
    ex = vital_examples()
    shapes = base_preset("basic_shapes")
    return {
        "init saw": (Preset.init(), 0),
        "sine": (shapes.with_values(osc_1_wave_frame=0), 0),
        "square": (shapes.with_values(osc_1_wave_frame=256), 0),
        "filtered pluck": (ex["vital_pluck_C4"][0], 0),
        "supersaw pad (7 voices, chorus, reverb)": (ex["vital_pad_A3"][0], 0),
        "two-oscillator bass (osc 1 an octave down)": (ex["vital_bass_E2"][0], -12),
    }


@pytest.fixture(scope="module")
def estimates(renderer) -> list[tuple[str, int, float, float]]:
    """(preset, expected MIDI pitch, estimated MIDI pitch or NaN when unpitched, confidence)."""
    rows = []
    for name, (preset, offset) in _presets().items():
        notes = [n for n in NOTES if 24 <= n + offset <= 108]  # the estimator's range, C1 .. C8
        for note, r in zip(notes, renderer.render_batch([preset] * len(notes), notes, 0.6, 1.0)):
            est = estimate_pitch(r.audio, SR)
            rows.append((name, note + offset, est.midi if est.pitched else np.nan, est.confidence))
    return rows


def test_rendered_notes_within_half_a_semitone(estimates):
    pitched = [(name, expected, midi) for name, expected, midi, _ in estimates if np.isfinite(midi)]
    assert len(pitched) >= 0.95 * len(estimates)  # clearly pitched notes are recognised as pitched
    errors = np.array([abs(midi - expected) for _, expected, midi in pitched])
    misses = [(n, e, round(m, 2)) for (n, e, m), err in zip(pitched, errors) if err > 0.5]
    assert np.mean(errors <= 0.5) >= 0.95, misses
    assert np.median(errors) < 0.1  # cents-level on the typical note, not just the right semitone


def test_low_sine_is_exact(renderer):
    """A sub-bass sine: the case the log grid alone got 0.6-0.7 semitones wrong."""
    sine = base_preset("basic_shapes").with_values(osc_1_wave_frame=0)
    for note, r in zip((28, 30, 33), renderer.render_batch([sine] * 3, [28, 30, 33], 0.6, 1.0)):
        est = estimate_pitch(r.audio, SR)
        assert est.pitched and abs(est.midi - note) < 0.15, (note, est)


def test_noise_is_unpitched_and_falls_back():
    snare, sr = sf.read(EXAMPLES_DIR / "noise_snare.wav", dtype="float32")
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.3
    for audio, rate in ((snare, sr), (noise, SR)):
        est = estimate_pitch(audio, rate)
        assert not est.pitched and est.confidence < PITCHED_CONFIDENCE
        assert est.midi_note == 60 and est.to_dict()["f0_hz"] is None


def test_timing_finds_the_release(renderer):
    held = Preset.init().with_values(env_1_release=0.5)  # sustain 1: a clear knee at the key release
    pluck = Preset.init().with_values(env_1_sustain=0.0, env_1_decay=0.9)  # decays on its own
    audio_held, audio_pluck = (r.audio for r in renderer.render_batch([held, pluck], 60, 0.7, 1.5))
    t = estimate_timing(audio_held, SR)
    assert not t.held_to_end and t.note_duration_s == pytest.approx(0.7, abs=0.05)
    assert t.duration_s == pytest.approx(1.5)
    t = estimate_timing(audio_pluck, SR)
    assert t.held_to_end and t.note_duration_s == pytest.approx(1.5)


@pytest.mark.parametrize(
    "release, tremolo, tolerance_s",
    [(1.2, False, 0.05), (0.5, True, 0.05), (1.2, True, 0.2)],
    ids=["slow release", "tremolo, fast release", "tremolo, slow release"],
)
def test_timing_finds_slow_releases_and_releases_under_tremolo(renderer, release, tremolo, tolerance_s):
    """A release of about 20 dB/s, and releases of a note whose level wobbles (tremolo: the wobbles come
    back up, the release does not)."""
    from dataclasses import replace

    from synthmatch.synth.template import add_template, template_connections

    preset = Preset.init().with_values(env_1_release=release)
    if tremolo:
        (conn,) = template_connections(("tremolo",))
        preset, slots = add_template(preset, (conn,))
        mods = list(preset.modulations)
        mods[slots[0].index] = replace(mods[slots[0].index], amount=0.8 * conn.max_amount)
        preset = preset.with_modulations(mods)
    audio = renderer.render(preset, 60, 1.0, 3.0, fresh=True)
    t = estimate_timing(audio, SR)
    assert not t.held_to_end and t.note_duration_s == pytest.approx(1.0, abs=tolerance_s)
