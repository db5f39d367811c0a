"""Metric sanity: identical audio scores perfect, a louder copy is the same sound, a different one is worse."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthmatch.evaluation.metrics import HIGHER_IS_BETTER, audio_metrics, parameter_metrics
from synthmatch.synth.presets import Preset

SR = 44100
GAIN_INVARIANT = ("mel_l1", "mfcc", "spectral_convergence", "envelope_cos", "pitch_error")


@pytest.fixture(scope="module")
def notes(renderer) -> dict[str, np.ndarray]:
    """Real vita renders: the init saw at C4, the same preset a fifth up, and a filtered pluck."""
    init = Preset.init()
    pluck = init.with_values(filter_1_on=1.0, filter_1_cutoff=60.0, env_1_sustain=0.0, env_1_decay=0.4)
    c4, g4, bass = renderer.render_batch([init, init, pluck], [60, 67, 48], 0.75, 1.0)
    return {"c4": c4.audio, "g4": g4.audio, "pluck": bass.audio}


def test_identical_audio_scores_perfect(notes):
    m = audio_metrics(notes["c4"], notes["c4"], SR)
    for name in ("mel_l1", "mfcc", "spectral_convergence", "pitch_error"):
        assert m[name] == pytest.approx(0.0, abs=1e-6), name
    assert m["envelope_cos"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("gain", [0.1, 3.0])
def test_louder_or_quieter_copy_is_the_same_sound(notes, gain):
    m = audio_metrics(notes["c4"], gain * notes["c4"], SR)
    for name in GAIN_INVARIANT:  # every audio metric compares at equal loudness
        perfect = 1.0 if name in HIGHER_IS_BETTER else 0.0
        assert m[name] == pytest.approx(perfect, abs=1e-3), name


def test_different_sounds_score_worse(notes):
    same = audio_metrics(notes["c4"], 0.5 * notes["c4"], SR)
    for other in ("g4", "pluck"):
        m = audio_metrics(notes["c4"], notes[other], SR)
        assert m["mel_l1"] > same["mel_l1"] + 0.3
        assert m["mfcc"] > same["mfcc"] + 1.0
        assert m["spectral_convergence"] > same["spectral_convergence"] + 0.2
    fifth = audio_metrics(notes["c4"], notes["g4"], SR)["pitch_error"]
    assert fifth == pytest.approx(7.0, abs=0.3)  # a fifth is 7 semitones
    assert audio_metrics(notes["c4"], notes["pluck"], SR)["envelope_cos"] < 0.95


def test_unpitched_sound_has_no_pitch_error(notes):
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    assert math.isnan(audio_metrics(notes["c4"], noise, SR)["pitch_error"])


def test_parameter_metrics():
    truth = Preset.init().to_vector(2)
    assert parameter_metrics(truth, truth) == {"param_mae": 0.0, "cat_accuracy": 1.0}
    other = Preset.init().with_values(filter_1_on=1.0, filter_1_cutoff=20.0).to_vector(2)
    m = parameter_metrics(truth, other)
    assert 0 < m["param_mae"] < 1 and m["cat_accuracy"] < 1.0
