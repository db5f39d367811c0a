"""Vital's panels (synth.panel): the effect chain order decoded as Vital does, curve words that say what
Vital plays, a gain without a knob folded into Volume. Checked on real renders."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from synthmatch.synth.panel import (
    EFFECT_CHAIN,
    curve_text,
    effect_order,
    effect_order_code,
    no_knob_reason,
    volume_with_voice_amplitude,
)
from synthmatch.synth.presets import Preset

SR = 44100


def test_code_zero_is_vitals_default_order_and_codes_round_trip():
    assert effect_order(0) == EFFECT_CHAIN
    rng = random.Random(0)
    for _ in range(200):
        order = list(EFFECT_CHAIN)
        rng.shuffle(order)
        assert effect_order(effect_order_code(order)) == tuple(order)
    assert effect_order(362879) == tuple(reversed(EFFECT_CHAIN))  # the largest code: the whole chain reversed
    with pytest.raises(ValueError, match="each of"):
        effect_order_code(["reverb", "reverb"])


def _centroid_hz(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio))
    return float((spectrum * np.fft.rfftfreq(len(audio), 1 / SR)).sum() / spectrum.sum())


def test_the_decoded_order_is_the_order_vita_plays(renderer):
    """A low-pass effect filter before a hard clip leaves the clip's new harmonics: brighter than after."""
    base = Preset.init().with_values(
        distortion_on=1, distortion_type=1, distortion_drive=25, filter_fx_on=1, filter_fx_cutoff=50
    )
    rest = [e for e in EFFECT_CHAIN if e not in ("filter_fx", "distortion")]
    filter_first = effect_order_code(["filter_fx", "distortion", *rest])
    distortion_first = effect_order_code(["distortion", "filter_fx", *rest])
    bright, dark = (
        _centroid_hz(renderer.render(base.with_values(effect_chain_order=code), 48, 0.4, 0.5))
        for code in (filter_first, distortion_first)
    )
    assert bright > 2 * dark, (bright, dark)


def test_curve_words_follow_what_vita_plays(renderer):
    """A positive attack power rises fast: louder early in a 1 s attack than a negative one."""
    early = {}
    for power in (-6.0, 6.0):
        preset = Preset.init().with_values(env_1_attack=1.0, env_1_attack_power=power, osc_1_random_phase=0)
        audio = renderer.render(preset, 60, 1.0, 1.0)
        early[power] = float(np.sqrt(np.mean(audio[int(0.2 * SR) : int(0.3 * SR)] ** 2)))
    assert early[6.0] > 5 * early[-6.0]
    assert curve_text("env_1_attack_power", 6.0) == "curved: rises fast, then levels off"
    assert curve_text("env_1_attack_power", -6.0) == "curved: starts slowly, then rises fast"
    assert curve_text("env_2_decay_power", -12.0) == "sharply curved: falls fast, then tails off"
    assert curve_text("env_1_release_power", 0.2) == "straight"
    assert curve_text("modulation", 1.0) == "slightly curved"


def test_controls_without_a_knob():
    assert "envelope graph" in no_knob_reason("env_3_decay_power")
    assert no_knob_reason("voice_amplitude") and no_knob_reason("effect_chain_order")
    assert no_knob_reason("env_1_decay") is None and no_knob_reason("filter_1_cutoff") is None


@pytest.mark.parametrize("amp", [1.0, 0.5, 0.1])
def test_voice_amplitude_folds_into_volume(renderer, amp):
    """Volume at the folded value plays as loud as the preset with its voice amplitude (no effects on)."""
    volume = (80 - 6) ** 2  # -6 dB
    with_amp = Preset.init().with_values(voice_amplitude=amp, volume=volume, osc_1_random_phase=0)
    folded = Preset.init().with_values(volume=volume_with_voice_amplitude(volume, amp), osc_1_random_phase=0)
    a, b = (renderer.render(p, 57, 0.3, 0.4) for p in (with_amp, folded))
    rms = [math.sqrt(float(np.mean(x**2))) for x in (a, b)]
    assert 20 * abs(math.log10(rms[0] / rms[1])) < 0.1, rms
    assert math.isclose(volume_with_voice_amplitude(volume, 1.0), volume)


def test_orders_cover_every_permutation_once():
    """Spot check: the 720 orders of the first six effects, last three fixed, have distinct codes."""
    codes = {
        effect_order_code([*perm, *EFFECT_CHAIN[6:]]) for perm in itertools.permutations(EFFECT_CHAIN[:6])
    }
    assert len(codes) == 720 and max(codes) < 362880
