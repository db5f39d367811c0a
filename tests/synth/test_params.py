"""The parameter space: classification, normalisation, clamping, tiers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthmatch.synth.params import TIERS


def test_all_772_controls_classified(space):
    assert len(space) == 772
    kinds = {c.kind for c in space.controls.values()}
    assert kinds == {"continuous", "categorical", "switch"}
    switches = sorted(c.name for c in space.plain_controls if c.kind == "switch")
    assert len(switches) == 15 and "osc_1_on" in switches and "reverb_on" in switches
    assert len(space.slot_controls) == 64 * 5


def test_metadata(space):
    cutoff = space["filter_1_cutoff"]
    assert (cutoff.module, cutoff.min, cutoff.max, cutoff.default) == ("filter_1", 8.0, 136.0, 60.0)
    assert cutoff.display_name == "Filter 1 Cutoff" and cutoff.units == "semitones"
    model = space["filter_1_model"]
    assert model.kind == "categorical" and model.options[:3] == ("Analog", "Dirty", "Ladder")
    assert space["lfo_3_frequency"].module == "lfo_3" and space["lfo_3_frequency"].scale == "Exponential"
    assert space["chorus_dry_wet"].module == "chorus"
    assert space["volume"].module == "global"
    # every categorical control has a label per value
    for c in space.plain_controls:
        if c.kind in ("categorical", "switch"):
            assert len(c.options) == c.n_options, c.name


def test_unit_round_trip_every_control(space):
    for c in space.controls.values():
        for u in np.linspace(0, 1, 11):
            raw = c.from_unit(u)
            assert c.min <= raw <= c.max, c.name
            if c.integer:
                assert raw == round(raw)
                assert c.from_unit(c.to_unit(raw)) == raw
            else:
                assert math.isclose(c.to_unit(raw), u, abs_tol=1e-12), c.name
                assert math.isclose(c.from_unit(c.to_unit(raw)), raw, rel_tol=1e-12, abs_tol=1e-12)
        # the default is representable exactly
        assert math.isclose(c.from_unit(c.to_unit(c.default)), c.clamp(c.default), abs_tol=1e-9), c.name


def test_exponential_controls_are_linear_in_raw_units(space):
    # vita's set_normalized maps reverb_decay_time 0.5 -> 10.97, outside [-6, 6]; ours stays linear.
    c = space["reverb_decay_time"]
    assert c.from_unit(0.5) == pytest.approx(0.0)
    assert c.from_unit(0.0) == -6.0 and c.from_unit(1.0) == 6.0


def test_clamping(space):
    assert space.clamp("chorus_voices", 5) == 4  # 5 segfaults vita
    assert space.clamp("effect_chain_order", -1) == 0  # -1 segfaults vita
    assert space.clamp("filter_1_cutoff", 1e6) == 136.0  # 1e5 segfaults vita
    assert space.clamp("filter_1_cutoff", float("nan")) == 60.0
    assert space.clamp("filter_1_cutoff", float("inf")) == 136.0
    assert space.clamp("osc_1_transpose", 3.4) == 3.0
    assert space.clamp("osc_1_unison_voices", 0) == 1


def test_tiers_are_nested(space):
    prev = set()
    for t in TIERS:
        ts = space.tier(t)
        names = set(ts.names)
        assert prev < names, f"tier {t} is not a strict superset of tier {t - 1}"
        prev = names
    t1 = space.tier(1)
    modules = {space[n].module for n in t1.names}
    assert modules == {"osc_1", "osc_2", "filter_1", "env_1", "global"}
    assert "volume" in t1.continuous and "osc_1_on" in t1.categorical
    t2, t3 = space.tier(2), space.tier(3)
    assert not t2.has_modulation and t3.has_modulation
    for n in (
        "osc_3_level",
        "sample_level",
        "filter_fx_cutoff",
        "env_6_attack",
        "lfo_8_frequency",
        "random_4_frequency",
        "reverb_size",
        "chorus_dry_wet",
    ):
        assert n in t2.names, n
    assert "macro_control_1" in t3.names and "macro_control_1" not in t2.names


def test_exclusions_have_reasons(space):
    excluded = {c.name: c.excluded_reason for c in space.excluded()}
    for n in (
        "bypass",
        "view_spectrogram",
        "osc_1_view_2d",
        "mpe_enabled",
        "pitch_wheel",
        "polyphony",
        "portamento_time",
        "legato",
        "oversampling",
    ):
        assert n in excluded and excluded[n], n
    assert all(r for r in excluded.values())
    assert not any(n.startswith("modulation_") for n in space.tier(3).names)


def test_tier3_modulation_lists(space):
    t3 = space.tier(3)
    assert "lfo_1" in t3.mod_sources and "env_2" in t3.mod_sources
    assert "pitch_wheel" not in t3.mod_sources  # constant in a rendered note
    assert "filter_1_cutoff" in t3.mod_destinations
    assert not any(d.startswith("modulation_") for d in t3.mod_destinations)
    assert set(t3.mod_destinations) <= set(space.all_mod_destinations)


def test_vectorised_normalisation_matches_scalar(space):
    ts = space.tier(2)
    rng = np.random.default_rng(0)
    u = rng.random(len(ts.continuous))
    raw = ts.cont_from_unit(u)
    for n, r, x in zip(ts.continuous, raw, u):
        assert r == pytest.approx(space.from_unit(n, x))


def test_raw_of_shown_inverts_the_display():
    """An envelope time asked in seconds is what Vital then shows (its Quartic scale inverted)."""
    from synthmatch.synth.display import display_text
    from synthmatch.synth.params import param_space

    ps = param_space()
    assert display_text("env_2_decay", ps["env_2_decay"].raw_of_shown(0.5)) == "500 ms"
    assert display_text("env_3_release", ps["env_3_release"].raw_of_shown(1.95)) == "1.95 s"
    assert ps["env_2_hold"].raw_of_shown(1e6) == ps["env_2_hold"].max  # clamped
    exponential = next(s for s in ps.plain_controls if s.scale == "Exponential")
    with pytest.raises(ValueError, match="no inverse"):
        exponential.raw_of_shown(1.0)
