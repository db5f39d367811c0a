"""A Markdown guide to rebuilding a matched preset by hand in Vital.

Sections: oscillators, filters, envelopes, LFOs and modulation, effects, then voice/output. Each lists only
the settings that differ from Vital's init preset *and can be heard* (a switched-off module's settings,
unison detune with one voice and the like are left out), in Vital's own display text and units
("Filter 1 Cutoff: 1.24 kHz"), most important first: switches and the main controls of each module
(pitch, level, cutoff, envelope times...) before the fine ones, then by how far the value is from init.
The text depends only on the preset and the facts passed in: deterministic and offline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from synthmatch.synth.audibility import Audibility
from synthmatch.synth.display import display_name, display_text
from synthmatch.synth.params import param_space
from synthmatch.synth.presets import Modulation, Preset
from synthmatch.synth.wavetables import BASIC_SHAPES_POSITIONS

__all__ = ["tutorial_markdown", "note_name"]

_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

# Order of importance inside a module, by the control's name without its module prefix.
_ORDER: dict[str, tuple[str, ...]] = {
    "osc": (
        "on",
        "transpose",
        "tune",
        "level",
        "unison_voices",
        "unison_detune",
        "wave_frame",
        "destination",
        "distortion_type",
        "distortion_amount",
        "spectral_morph_type",
        "spectral_morph_amount",
        "unison_blend",
        "stack_style",
        "frame_spread",
        "detune_range",
        "detune_power",
        "pan",
        "distortion_phase",
        "distortion_spread",
        "spectral_morph_spread",
        "stereo_spread",
        "phase",
        "random_phase",
        "midi_track",
        "smooth_interpolation",
        "spectral_unison",
    ),
    "sample": (
        "on",
        "level",
        "transpose",
        "tune",
        "destination",
        "pan",
        "loop",
        "bounce",
        "keytrack",
        "random_phase",
    ),
    "filter": (
        "on",
        "model",
        "style",
        "cutoff",
        "resonance",
        "drive",
        "mix",
        "keytrack",
        "blend",
        "blend_transpose",
        "filter_input",
        "formant_x",
        "formant_y",
        "formant_transpose",
        "formant_resonance",
        "formant_spread",
    ),
    "env": (
        "attack",
        "decay",
        "sustain",
        "release",
        "delay",
        "hold",
        "attack_power",
        "decay_power",
        "release_power",
    ),
    "lfo": (
        "sync",
        "tempo",
        "frequency",
        "sync_type",
        "phase",
        "smooth_mode",
        "smooth_time",
        "delay_time",
        "fade_time",
        "stereo",
        "keytrack_transpose",
        "keytrack_tune",
    ),
    "random": (
        "style",
        "sync",
        "tempo",
        "frequency",
        "sync_type",
        "stereo",
        "keytrack_transpose",
        "keytrack_tune",
    ),
    "effect": (
        "on",
        "dry_wet",
        "mix",
        "type",
        "drive",
        "decay_time",
        "size",
        "feedback",
        "cutoff",
        "frequency",
        "tempo",
        "sync",
    ),
    "global": (
        "voice_transpose",
        "voice_tune",
        "volume",
        "voice_amplitude",
        "stereo_mode",
        "stereo_routing",
        "effect_chain_order",
    ),
}
# effects in the order the tutorial shows them
_EFFECTS = ("distortion", "compressor", "chorus", "flanger", "phaser", "delay", "reverb", "eq", "filter_fx")
_EFFECT_TITLES = {"filter_fx": "Filter (effect)", "eq": "EQ"}


def note_name(midi: int) -> str:
    """MIDI note name with MIDI 60 = C4 ("A3" for 57)."""
    return f"{_NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def _kind(module: str) -> str:
    for prefix in ("osc", "filter", "env", "lfo", "random"):
        if module.startswith(prefix) and module != "filter_fx":
            return prefix
    if module == "sample":
        return "sample"
    if module in _EFFECTS:
        return "effect"
    return "global"


def _source_title(source: str) -> str:
    for prefix, title in (
        ("env_", "Envelope "),
        ("lfo_", "LFO "),
        ("random_", "Random LFO "),
        ("macro_control_", "Macro "),
    ):
        if source.startswith(prefix):
            return title + source[len(prefix) :]
    return source.replace("_", " ").title()


def _module_title(module: str) -> str:
    if module.startswith("osc_"):
        return f"Oscillator {module[-1]}"
    if module == "sample":
        return "Sample"
    if module.startswith("filter_") and module != "filter_fx":
        return f"Filter {module[-1]}"
    if module.startswith(("env_", "lfo_", "random_", "macro_control_")):
        return _source_title(module)
    return _EFFECT_TITLES.get(module, module.replace("_", " ").title())


class _Differences:
    """Audible controls of a preset that differ from Vital's init preset, with their display text."""

    def __init__(self, preset: Preset, tier: int):
        ps = param_space()
        init = Preset.init()
        aud = Audibility(preset, ps)
        # connections into a switched-off module (or another inaudible control) change nothing
        self.modulations = [
            m for m in aud.connections if m.destination not in ps or aud.audible(m.destination)
        ]
        self.by_module: dict[str, list[tuple[tuple, str]]] = {}
        for spec in ps.plain_controls:
            if spec.tier is None or spec.tier > tier:
                continue
            name = spec.name
            raw = spec.clamp(preset.values.get(name, spec.default))
            raw0 = spec.clamp(init.values.get(name, spec.default))
            if raw == raw0:
                continue
            text = display_text(name, raw)
            if text == display_text(name, raw0):
                continue  # differs below what Vital shows
            is_switch = name.endswith("_on")
            if not is_switch and not aud.audible(name):
                continue
            kind = _kind(spec.module)
            suffix = name[len(spec.module) + 1 :] if spec.module != "global" else name
            order = _ORDER[kind]
            rank = order.index(suffix) if suffix in order else len(order)
            delta = abs(spec.to_unit(raw) - spec.to_unit(raw0))
            line = f"- {display_name(name)}: {text}"
            self.by_module.setdefault(spec.module, []).append(((rank, -round(delta, 6), name), line))

    def lines(self, module: str) -> list[str]:
        return [line for _, line in sorted(self.by_module.get(module, []))]


def _wavetable_lines(preset: Preset, osc: int) -> list[str]:
    tables = preset.data.get("wavetables") or []
    init_tables = Preset.init().data.get("wavetables") or []
    if osc >= len(tables) or not isinstance(tables[osc], Mapping):
        return []
    table = tables[osc]
    if osc < len(init_tables) and table.get("groups") == init_tables[osc].get("groups"):
        return []  # Vital's init saw (metadata aside)
    name = str(table.get("name") or "unnamed")
    if name == "Basic Shapes":
        sine, tri, saw, square = BASIC_SHAPES_POSITIONS
        return [
            f'- Wavetable: "Basic Shapes", a morph sine (frame {sine}) -> triangle ({tri}) -> saw ({saw}) '
            f"-> square ({square}) that Wave Frame moves along; Vital's init table is a single saw. Build it "
            "in the wavetable editor from those four shapes, or load the exported .vital, which contains it."
        ]
    try:
        frames = sum(len(c.get("keyframes", [])) for g in table["groups"] for c in g["components"])
    except (KeyError, TypeError):
        frames = 0
    detail = f"{frames} keyframe{'s' if frames != 1 else ''}, " if frames else ""
    return [f'- Wavetable: "{name}" ({detail}contained in the exported .vital)']


def _modulation_line(m: Modulation) -> str:
    ps = param_space()
    dest = display_name(m.destination) if m.destination in ps else m.destination
    parts = [f"amount {m.amount * 100:+.0f}%"]
    if m.bipolar:
        parts.append("bipolar")
    if abs(m.power) > 1e-3:
        parts.append(f"curve {m.power:+.2g}")
    if m.stereo:
        parts.append("stereo")
    return f"- {_source_title(m.source)} -> {dest}, {', '.join(parts)}"


def _lfo_shape_lines(preset: Preset, lfo: int) -> list[str]:
    shapes = preset.data.get("lfos") or []
    init_shapes = Preset.init().data.get("lfos") or []
    if lfo >= len(shapes) or (lfo < len(init_shapes) and shapes[lfo] == init_shapes[lfo]):
        return []
    shape = shapes[lfo]
    name = str(shape.get("name") or "custom") if isinstance(shape, Mapping) else "custom"
    points = shape.get("num_points") if isinstance(shape, Mapping) else None
    detail = f", {points} points" if points else ""
    return [f'- Shape: "{name}"{detail} (contained in the exported .vital)']


def _section(title: str, blocks: Iterable[tuple[str, list[str]]], empty: str) -> list[str]:
    out = [f"## {title}", ""]
    any_block = False
    for heading, lines in blocks:
        if not lines:
            continue
        any_block = True
        out += [f"### {heading}", "", *lines, ""]
    if not any_block:
        out += [empty, ""]
    return out


def tutorial_markdown(
    preset: Preset,
    *,
    title: str,
    midi_note: int,
    note_duration_s: float,
    duration_s: float,
    tier: int = 3,
    facts: Iterable[str] = (),
) -> str:
    """The Markdown guide for `preset`.

    Args:
        preset: the matched preset.
        title: what was matched (the target file's name).
        midi_note: the note the match plays (the target's pitch).
        note_duration_s: seconds the key is held; duration_s: seconds rendered.
        tier: the parameter tier whose controls are listed (3 lists everything a one-shot note can use).
        facts: extra lines for the header (start point, losses...), in order.
    """
    diff = _Differences(preset, tier)
    out = [
        f"# Rebuilding {title} in Vital",
        "",
        "Start from Vital's init preset (preset menu > Initialize Preset) and change only what is listed "
        "below; everything else keeps its init value. Settings that cannot be heard in this patch are "
        "left out.",
        "",
        f"- Play: MIDI note {midi_note} ({note_name(midi_note)}, with MIDI 60 = C4), key held "
        f"{note_duration_s:.2f} s of {duration_s:.2f} s",
        *[f"- {f}" for f in facts],
        "",
    ]
    osc_blocks = []
    for i in (1, 2, 3):
        module = f"osc_{i}"
        switch = f"- {display_name(module + '_on')}:"
        lines = diff.lines(module)
        head = [ln for ln in lines if ln.startswith(switch)]
        rest = [ln for ln in lines if not ln.startswith(switch)]
        if preset.values.get(f"{module}_on", 0) >= 0.5:
            lines = head + _wavetable_lines(preset, i - 1) + rest
        else:
            lines = head  # switched off: its other settings cannot be heard
        osc_blocks.append((_module_title(module), lines))
    sample_lines = diff.lines("sample")
    if preset.values.get("sample_on", 0) >= 0.5:
        sample = preset.data.get("sample") or {}
        init_sample = Preset.init().data.get("sample") or {}
        if isinstance(sample, Mapping) and sample.get("name") != init_sample.get("name"):
            sample_lines.append(
                f'- Sample: "{sample.get("name", "custom")}" (contained in the exported .vital)'
            )
    osc_blocks.append(("Sample", sample_lines))
    out += _section("Oscillators", osc_blocks, "Leave the oscillators as in the init preset.")
    out += _section(
        "Filters",
        [(_module_title(m), diff.lines(m)) for m in ("filter_1", "filter_2")],
        "No filter: leave both off, as in the init preset.",
    )
    out += _section(
        "Envelopes",
        [
            (_module_title(f"env_{i}") + (" (amplitude)" if i == 1 else ""), diff.lines(f"env_{i}"))
            for i in range(1, 7)
        ],
        "Leave the envelopes as in the init preset.",
    )
    mod_blocks = [("Connections (modulation matrix)", [_modulation_line(m) for m in diff.modulations])]
    for i in range(1, 9):
        mod_blocks.append(
            (
                _source_title(f"lfo_{i}"),
                diff.lines(f"lfo_{i}")
                + (
                    _lfo_shape_lines(preset, i - 1)
                    if any(m.source == f"lfo_{i}" for m in diff.modulations)
                    else []
                ),
            )
        )
    mod_blocks += [(_source_title(f"random_{i}"), diff.lines(f"random_{i}")) for i in range(1, 5)]
    mod_blocks += [
        (_source_title(f"macro_control_{i}"), diff.lines(f"macro_control_{i}")) for i in range(1, 5)
    ]
    out += _section("LFOs and modulation", mod_blocks, "No modulation beyond the init preset's.")
    out += _section(
        "Effects",
        [(_module_title(m), diff.lines(m)) for m in _EFFECTS],
        "No effects: leave them all off, as in the init preset.",
    )
    out += _section("Voice and output", [("Global", diff.lines("global"))], "Leave as in the init preset.")
    return "\n".join(out).rstrip() + "\n"
