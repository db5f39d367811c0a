"""Vital display text."""

from __future__ import annotations

import pytest

from synthmatch.synth.display import display_text, format_number


@pytest.mark.parametrize(
    "name, raw, text",
    [
        ("filter_1_cutoff", 60, "262 Hz"),
        ("filter_1_cutoff", 100, "2.64 kHz"),
        ("env_1_attack", 0.15, "0.506 ms"),
        ("env_1_decay", 1.0, "1 s"),
        ("volume", 5473.04, "-6.02 dB"),
        ("filter_1_model", 2, "Ladder"),
        ("osc_1_on", 1, "On"),
        ("reverb_dry_wet", 0.25, "25%"),
        ("osc_1_tune", 0.25, "25 cents"),
        ("osc_1_transpose", -12, "-12 semitones"),
        ("lfo_1_tempo", 7, "1/2"),
        # no more digits than Vital's knob shows (five characters)
        ("osc_1_level", 0.048, "0.002"),
        ("env_1_sustain", 0.000146, "0"),
        ("eq_band_gain", -1.9123, "-1.91 dB"),
        ("effect_chain_order", 12425, "12425"),
    ],
)
def test_display_text(name, raw, text):
    assert display_text(name, raw) == text


def test_values_are_clamped_before_display():
    assert display_text("filter_1_cutoff", 1e9) == display_text("filter_1_cutoff", 136)


def test_format_number():
    assert [format_number(x) for x in (1.2449, 0.5, 120.0, -6.0199, 0.0)] == [
        "1.24",
        "0.5",
        "120",
        "-6.02",
        "0",
    ]
    # three significant figures, cut to the knob's five characters (the sign aside)
    assert [format_number(x) for x in (0.00234, -0.00234, 0.0004, 0.906, 12345.6)] == [
        "0.002",
        "-0.002",
        "0",
        "0.906",
        "12346",
    ]
