"""The tutorial (inference.tutorial) reads like Vital's panels: sections in their order, effects in the
chain's order by name, values as the knobs show them, nothing a person cannot set."""

from __future__ import annotations

import re

from synthmatch.inference.tutorial import SECTIONS, tutorial_markdown
from synthmatch.synth.panel import effect_order_code
from synthmatch.synth.presets import Modulation, Preset

CHAIN = ("reverb", "compressor", "chorus", "delay", "distortion", "eq", "filter_fx", "flanger", "phaser")


def _busy_preset() -> Preset:
    """Something in every panel: two oscillators, a filter, envelopes and an LFO that modulate, effects
    in a chain order of their own, a voice setting, curve bends and values a knob cannot show."""
    return (
        Preset.init()
        .with_values(
            osc_2_on=1,
            osc_2_transpose=-12,
            osc_1_level=0.048,  # shows 0.002 on the knob, not 0.00234
            osc_1_pan=0.004,  # 0.2% of the knob's travel: counted, not listed
            filter_1_on=1,
            filter_1_cutoff=70,
            env_1_attack=0.3,
            env_1_attack_power=6.0,  # a curve: no number in Vital
            env_2_decay=0.5,
            lfo_1_sync=0,
            lfo_1_frequency=2.0,
            reverb_on=1,
            reverb_size=0.8,
            compressor_on=1,
            compressor_attack=0.7,
            compressor_low_upper_threshold=-20,
            compressor_low_lower_threshold=-50,
            compressor_low_upper_ratio=0.5,
            compressor_band_upper_threshold=-18,
            compressor_band_lower_ratio=0.3,
            compressor_high_upper_threshold=-22,
            compressor_high_gain=5,
            compressor_band_gain=3,
            compressor_low_gain=4,
            effect_chain_order=effect_order_code(CHAIN),
            voice_tune=0.2,
            voice_amplitude=0.5,  # no knob: a modulation destination only
        )
        .with_modulations(
            [
                Modulation("env_2", "filter_1_cutoff", 0.4),
                Modulation("lfo_1", "osc_2_level", 0.3, power=4.0),
            ]
        )
    )


def _markdown(preset: Preset) -> str:
    return tutorial_markdown(preset, title="t.wav", midi_note=57, note_duration_s=0.6, duration_s=1.0)


def test_sections_follow_vitals_panels_and_effects_the_chain():
    md = _markdown(_busy_preset())
    headings = [line[3:] for line in md.splitlines() if line.startswith("## ")]
    assert headings == list(SECTIONS)
    order = [md.index(f"## {h}") for h in SECTIONS]
    assert order == sorted(order)
    # effects that are on, in the order they process the sound, by name
    assert "Effect chain, first to last (drag the effect tabs into this order): Reverb -> Compressor" in md
    assert md.index("### Reverb") < md.index("### Compressor") < md.index("## Voice and output")
    # within a module the main controls first: the switch, then the cutoff
    assert md.index("- Filter 1 Switch: On") < md.index("- Filter 1 Cutoff: 466 Hz")
    assert md.index("- LFO 1 -> Oscillator 2 Level, amount +30%") > md.index("## Modulation")


def test_nothing_a_person_cannot_set_or_read():
    preset = _busy_preset()
    md = _markdown(preset)
    code = str(int(preset.values["effect_chain_order"]))
    assert code not in md and "Effect Chain Order" not in md  # the order is names, not its code
    assert "Power" not in md  # curve powers are words
    assert "attack curved: rises fast, then levels off" in md
    assert "strongly curved" not in md and "(drag its curve in the modulation matrix)" in md
    assert not re.search(r"\b[a-z0-9]+_[a-z0-9_]+\b", md), "an internal control name in the tutorial"
    assert not re.search(r"\d\.\d{4,}", md), "more digits than a knob shows"
    assert "- Oscillator 1 Level: 0.002" in md.splitlines()
    # a move the hand cannot make is counted under the exported file, not listed as a setting
    assert "Oscillator 1 Pan:" not in md and "less than 1% of a knob's travel" in md
    assert "Voice Amplitude 0.5 (no knob in Vital" in md  # the compressor is on: Volume cannot stand in


def test_compressor_and_eq_bands_are_one_line_each():
    lines = _markdown(_busy_preset()).splitlines()
    start = lines.index("### Compressor")
    block = lines[start + 2 : lines.index("", start + 2)]
    assert len(block) <= 7, block  # switch, attack, three bands, the note on dragging; not 12 lines
    assert any(b.startswith("- Compressor Low band: gain 4 dB, upper threshold -20 dB") for b in block)
    assert block[-1].startswith("- Thresholds and ratios: drag")
    eq = Preset.init().with_values(eq_on=1, eq_low_gain=-6, eq_low_cutoff=50, eq_high_gain=3)
    eq_lines = [ln for ln in _markdown(eq).splitlines() if ln.startswith("- EQ")]
    assert eq_lines == [
        "- EQ Switch: On",
        "- EQ Low band: cutoff 147 Hz, gain -6 dB",
        "- EQ High band: gain 3 dB",
    ]


def test_voice_amplitude_folds_into_volume_without_level_dependent_effects():
    md = _markdown(Preset.init().with_values(voice_amplitude=0.5))
    assert "- Volume: -18.1 dB (Voice Amplitude, which has no knob in Vital, folded in)" in md.splitlines()
    assert "Voice Amplitude 0.5" not in md


def test_a_modulated_voice_amplitude_is_not_folded():
    """A tremolo moves Voice Amplitude around its base: folding the base into Volume would clip its top."""
    tremolo = (
        Preset.init()
        .with_values(voice_amplitude=0.5, lfo_3_frequency=2.0)
        .with_modulations([Modulation("lfo_3", "voice_amplitude", 0.3, bipolar=True)])
    )
    md = _markdown(tremolo)
    assert "folded in" not in md and "Voice Amplitude" in md


def test_the_default_chain_order_and_an_init_patch_say_nothing_extra():
    md = _markdown(Preset.init().with_values(reverb_on=1, chorus_on=1))
    assert "Effect chain" not in md and md.index("### Chorus") < md.index("### Reverb")
    init = _markdown(Preset.init())
    assert "No effects" in init and "## From the exported .vital" not in init


def test_the_tutorial_infer_writes_follows_the_panels(renderer, cli, tmp_path):
    """Through the CLI: `infer --start BUSY.vital --tutorial` writes a guide in Vital's panel order, effects
    by name in their chain order, no chain-order code, no internal names, no more digits than a knob."""
    import soundfile as sf

    busy = _busy_preset()
    start = busy.save(tmp_path / "busy.vital")
    target = tmp_path / "t.wav"
    sf.write(target, renderer.render(busy, 57, 0.6, 1.0, fresh=True), renderer.sample_rate)
    out = tmp_path / "m.vital"
    assert cli("infer", "-i", target, "-o", out, "--start", start, "--tutorial").code == 0
    md = out.with_suffix(".md").read_text()
    headings = [line[3:] for line in md.splitlines() if line.startswith("## ")]
    assert [h for h in SECTIONS if h in headings] == headings and headings[0] == "Oscillators"
    assert "Reverb -> Compressor" in md and md.index("### Reverb") < md.index("### Compressor")
    assert str(int(busy.values["effect_chain_order"])) not in md and "Effect Chain Order" not in md
    assert not re.search(r"\b[a-z0-9]+_[a-z0-9_]+\b", md.replace(out.stem, "").replace("t.wav", ""))
    assert not re.search(r"\d\.\d{4,}", md)
