"""Vital's audibility rules (synth.audibility), on real presets, and that they stay in synth/."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from synthmatch.audio.distances import match_distance
from synthmatch.synth.audibility import Audibility, inaudible_reason
from synthmatch.synth.presets import Preset

SRC = Path(__file__).resolve().parents[2] / "src" / "synthmatch"


def test_what_init_can_and_cannot_play():
    init = Preset.init()
    aud = Audibility(init)
    assert aud.audible("osc_1_level") and aud.audible("env_1_attack")
    assert aud.reason("filter_1_cutoff") == "filter_1 is off"
    assert aud.reason("env_2_attack") == "env_2 modulates nothing in this preset"
    assert aud.reason("osc_1_unison_detune") == "osc_1 has one unison voice"
    assert aud.reason("reverb_dry_wet") == "reverb is off"


def test_switches_and_routing_make_controls_audible():
    p = Preset.init().with_values(filter_1_on=1, osc_1_unison_voices=4, reverb_on=1)
    aud = Audibility(p)
    assert (
        aud.audible("filter_1_cutoff")
        and aud.audible("osc_1_unison_detune")
        and aud.audible("reverb_dry_wet")
    )
    # oscillator 1 routed to filter 2 only: filter 1 is on but hears nothing
    to_f2 = p.with_values(osc_1_destination=1)
    assert inaudible_reason("filter_1_cutoff", to_f2) == "nothing is routed into filter_1"
    silent = p.with_values(osc_1_on=0)
    assert inaudible_reason("filter_1_cutoff", silent).startswith("no oscillator or sample is on")


def _same_sound(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal within a render's own noise (a control that plays moves these renders by a distance near 1)."""
    return match_distance(a, b, 44100) < 0.02  # the `renderer` fixture's rate


def test_compressor_bands_left_out_by_enabled_bands_are_inaudible(renderer):
    """With Enabled Bands at Single Band a low or high band's gain renders identically."""
    p = Preset.init().with_values(compressor_on=1)
    single_band = p.with_values(compressor_enabled_bands=3, osc_1_random_phase=0)
    quiet, loud = (
        renderer.render(
            single_band.with_values(compressor_low_gain=g, compressor_high_gain=g), 36, 0.3, 0.4, fresh=True
        )
        for g in (0, 25)
    )
    assert _same_sound(quiet, loud)  # (25 dB on a band that plays is a distance near 1)
    multiband = Audibility(p)
    assert multiband.audible("compressor_low_gain") and multiband.audible("compressor_high_upper_ratio")
    single = Audibility(p.with_values(compressor_enabled_bands=3))
    assert "low band is unused" in single.reason("compressor_low_upper_threshold")
    assert "high band is unused" in single.reason("compressor_high_gain")
    assert single.audible("compressor_band_gain") and single.audible("compressor_attack")
    low = Audibility(p.with_values(compressor_enabled_bands=1))  # "Low Band": low and middle
    assert low.audible("compressor_low_gain") and not low.audible("compressor_high_gain")


def test_the_comb_blend_offset_is_heard_only_where_the_model_has_one(renderer):
    base = Preset.init().with_values(filter_1_on=1, filter_1_cutoff=70, osc_1_random_phase=0)
    for model, heard in ((0, False), (6, True)):  # Analog, Comb
        p = base.with_values(filter_1_model=model)
        a, b = (
            renderer.render(p.with_values(filter_1_blend_transpose=t), 48, 0.3, 0.4, fresh=True)
            for t in (10, 70)
        )
        assert (not _same_sound(a, b)) == heard == Audibility(p).audible("filter_1_blend_transpose")
    assert "comb blend offset is unused" in inaudible_reason("filter_1_blend_transpose", base)


def test_a_connection_makes_its_source_audible(community_dir):
    """In real presets an envelope or LFO that modulates something is heard: its controls are searched."""
    checked = 0
    for path in sorted(community_dir.glob("*.vital"))[:10]:
        aud = Audibility(Preset.load(path))
        for source in {m.source for m in aud.connections if re.fullmatch(r"(env_[2-6]|lfo_\d)", m.source)}:
            control = f"{source}_attack" if source.startswith("env") else f"{source}_phase"
            if control in aud.space:
                assert "modulates nothing" not in (aud.reason(control) or ""), (path.name, control)
                checked += 1
    assert checked >= 3


def test_only_synth_imports_the_vita_wrapper():
    """Everything that touches vita lives in synth/: no module outside it imports synth._vita."""
    pattern = re.compile(r"synth(\.|\s+import\s+)_vita\b")
    outside = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if p.parent.name != "synth" and pattern.search(p.read_text())
    ]
    assert outside == []
