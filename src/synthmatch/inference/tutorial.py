"""A Markdown guide to rebuilding a matched preset by hand in Vital.

Sections in the order of Vital's panels: oscillators, sample, filters, envelopes, LFOs, modulation,
effects (in the order of the effect chain, by name), voice and output; then what needs the exported file.
Each lists only the settings that differ from Vital's init preset *and can be heard* (a switched-off
module's settings, unison detune with one voice and the like are left out), as Vital's knobs show them
("Filter 1 Cutoff: 1.24 kHz", no more digits than the knob has), main controls first (switches, pitch,
level, cutoff, envelope times...) and then by how far the value is from init. Nothing is listed that a
person cannot type or turn: curve bends are described in words, the effect chain order as effect names,
a gain without a knob folded into Volume; differences under 1% of a knob's travel are counted, not
listed; wavetables, LFO shapes and samples point to the exported .vital. The text depends only on the
preset and the facts passed in: deterministic and offline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from synthmatch.audio.pitch import note_name
from synthmatch.synth.audibility import Audibility
from synthmatch.synth.display import display_name, display_text
from synthmatch.synth.panel import (
    BAND_TITLES,
    EFFECT_CHAIN,
    EFFECT_TITLES,
    curve_text,
    effect_order,
    module_title,
    no_knob_reason,
    source_title,
    volume_with_voice_amplitude,
)
from synthmatch.synth.params import param_space
from synthmatch.synth.presets import Modulation, Preset
from synthmatch.synth.wavetables import BASIC_SHAPES_POSITIONS, is_made_from_sound

__all__ = ["tutorial_markdown", "SECTIONS"]

# the sections, in the order of Vital's panels
SECTIONS = (
    "Oscillators",
    "Sample",
    "Filters",
    "Envelopes",
    "LFOs",
    "Modulation",
    "Effects",
    "Voice and output",
    "From the exported .vital",
)
# A continuous setting moved by less than this share of its knob's travel is too little to hear or to
# set by hand: counted, not listed (the exported .vital has it exactly).
TINY = 0.01
_NEVER_TINY = frozenset({"volume"})  # the level matching's result, named in the facts

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
    "env": ("attack", "decay", "sustain", "release", "delay", "hold"),
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
        "type",
        "dry_wet",
        "mix",
        "drive",
        "decay_time",
        "size",
        "feedback",
        "cutoff",
        "frequency",
        "tempo",
        "sync",
        "enabled_bands",
        "attack",
        "release",
    ),
    "global": ("voice_transpose", "voice_tune", "volume", "stereo_mode", "stereo_routing"),
}
# Settings shown together, one line per band: (module, line title, ((control, label), ...)).
_GROUPS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    *(
        (
            "eq",
            f"EQ {title}",
            tuple((f"eq_{b}_{c}", c) for c in ("mode", "cutoff", "gain", "resonance")),
        )
        for b, title in BAND_TITLES
    ),
    *(
        (
            "compressor",
            f"Compressor {title}",
            (
                (f"compressor_{b}_gain", "gain"),
                (f"compressor_{b}_upper_threshold", "upper threshold"),
                (f"compressor_{b}_upper_ratio", "upper ratio"),
                (f"compressor_{b}_lower_threshold", "lower threshold"),
                (f"compressor_{b}_lower_ratio", "lower ratio"),
            ),
        )
        for b, title in BAND_TITLES
    ),
)
_GROUP_OF = {control: i for i, (_, _, members) in enumerate(_GROUPS) for control, _ in members}
_NONLINEAR_EFFECTS = ("distortion", "compressor")  # their sound depends on the level reaching them


def _kind(module: str) -> str:
    for prefix in ("osc", "filter", "env", "lfo", "random"):
        if module.startswith(prefix) and module != "filter_fx":
            return prefix
    if module == "sample":
        return "sample"
    if module in EFFECT_CHAIN:
        return "effect"
    return "global"


def _is_on(preset: Preset, switch: str) -> bool:
    return preset.values.get(switch, 0.0) >= 0.5


class _Differences:
    """Audible controls of a preset that differ from Vital's init preset, as lines per module.

    by_module: module -> [(sort key, line)]; tiny: names moved by less than TINY of their travel;
    curves: envelope -> [segment text]; hidden: lines for "From the exported .vital".
    """

    def __init__(self, preset: Preset, tier: int):
        ps = param_space()
        init = Preset.init()
        aud = Audibility(preset, ps)
        self.preset = preset
        # connections into a switched-off module (or another inaudible control) change nothing
        self.modulations = [
            m for m in aud.connections if m.destination not in ps or aud.audible(m.destination)
        ]
        self.by_module: dict[str, list[tuple[tuple, str]]] = {}
        self.tiny: list[str] = []
        self.curves: dict[str, list[str]] = {}
        self.hidden: list[str] = []
        grouped: dict[int, list[tuple[str, str]]] = {}
        values = dict(preset.values)
        amp_spec = ps["voice_amplitude"]
        amp = amp_spec.clamp(values.get("voice_amplitude", amp_spec.default))
        amp0 = amp_spec.clamp(init.values.get("voice_amplitude", amp_spec.default))
        # Volume plays the same gain unless a level-dependent effect follows, or a connection (a tremolo)
        # moves Voice Amplitude around its base: then the base has to stay where it is.
        fold = not any(_is_on(preset, f"{e}_on") for e in _NONLINEAR_EFFECTS) and not any(
            m.destination == "voice_amplitude" for m in self.modulations
        )
        folded = fold and display_text("voice_amplitude", amp) != display_text("voice_amplitude", amp0)
        if fold:  # Voice Amplitude has no knob: Volume plays the same gain
            values["volume"] = volume_with_voice_amplitude(
                values.get("volume", ps["volume"].default), values.get("voice_amplitude", 1.0)
            )
            values["voice_amplitude"] = init.values.get("voice_amplitude", 1.0)
        for spec in ps.plain_controls:
            if spec.tier is None or spec.tier > tier:
                continue
            name = spec.name
            raw = spec.clamp(values.get(name, spec.default))
            raw0 = spec.clamp(init.values.get(name, spec.default))
            if raw == raw0:
                continue
            is_switch = name.endswith("_on")
            if not is_switch and not aud.audible(name):
                continue
            if no_knob_reason(name) is not None:
                self._without_knob(name, raw, raw0)
                continue
            text = display_text(name, raw)
            if text == display_text(name, raw0):
                continue  # differs below what Vital shows
            delta = abs(spec.to_unit(raw) - spec.to_unit(raw0))
            if spec.kind == "continuous" and not spec.integer and delta < TINY and name not in _NEVER_TINY:
                self.tiny.append(name)
                continue
            if name in _GROUP_OF:
                grouped.setdefault(_GROUP_OF[name], []).append((name, text))
                continue
            kind = _kind(spec.module)
            suffix = name[len(spec.module) + 1 :] if spec.module != "global" else name
            order = _ORDER[kind]
            rank = order.index(suffix) if suffix in order else len(order)
            line = f"- {display_name(name)}: {text}"
            if name == "volume" and folded:
                line += " (Voice Amplitude, which has no knob in Vital, folded in)"
            self.by_module.setdefault(spec.module, []).append(((rank, -round(delta, 6), name), line))
        for i, changed in sorted(grouped.items()):
            module, title, members = _GROUPS[i]
            labels = dict(members)
            texts = dict(changed)
            parts = [f"{labels[c]} {texts[c]}" for c, _ in members if c in texts]
            key = (len(_ORDER["effect"]) + 1, -1.0, f"{i:02d}")  # after the module's main controls
            self.by_module.setdefault(module, []).append((key, f"- {title}: {', '.join(parts)}"))
        dragged = [c for i, changed in grouped.items() for c, _ in changed if _GROUPS[i][0] == "compressor"]
        if any(c.endswith(("_threshold", "_ratio")) for c in dragged):
            note = "- Thresholds and ratios: drag the band's bars in the compressor's display"
            self.by_module["compressor"].append(((len(_ORDER["effect"]) + 2, 0.0, ""), note))

    def _without_knob(self, name: str, raw: float, raw0: float) -> None:
        """A setting Vital shows no knob for: in words where it can be set, else for the exported file."""
        if name.endswith("_power"):  # an envelope segment's curve
            text, text0 = curve_text(name, raw), curve_text(name, raw0)
            if text != text0:
                segment = name.split("_")[2]
                self.curves.setdefault(name[:5], []).append(f"{segment} {text}")
        elif name == "voice_amplitude":
            self.hidden.append(
                f"- Voice Amplitude {display_text(name, raw)} (no knob in Vital: a modulation destination "
                "only; with Distortion or Compressor on, Volume cannot stand in for it)"
            )
        # effect_chain_order: the Effects section names the order

    def lines(self, module: str) -> list[str]:
        out = [line for _, line in sorted(self.by_module.get(module, []))]
        if module in self.curves:
            out.append(
                "- Curves (drag the middle of a segment in the envelope graph): "
                + "; ".join(self.curves[module])
            )
        return out


def _wavetable_lines(preset: Preset, osc: int) -> list[str]:
    """The wavetable of oscillator `osc` (0-based) when it is not Vital's init saw: described in full, or
    as the same as an earlier oscillator's."""
    tables = preset.data.get("wavetables") or []
    for earlier in range(osc):
        if (
            _is_on(preset, f"osc_{earlier + 1}_on")
            and earlier < len(tables)
            and tables[earlier] == tables[osc]
            and _table_lines(preset, earlier)
        ):
            return [f"- Wavetable: the same as {module_title(f'osc_{earlier + 1}')}'s"]
    return _table_lines(preset, osc)


def _table_lines(preset: Preset, osc: int) -> list[str]:
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
    if is_made_from_sound(table):
        return [
            f'- Wavetable: "{name}", made from the sound itself: {frames} frames, each one cycle of its '
            "harmonics at one moment of the note, from the attack (frame 0) to the release (frame 256), "
            "with Wave Frame moved through them by an envelope (see Modulation). To get similar by hand, "
            "drag the audio file onto this oscillator's wavetable and import it with Vital's Pitch Splice "
            "or Vocode (its own audio import), then let an envelope sweep Wave Frame; the exported .vital "
            "contains this exact table."
        ]
    detail = f"{frames} keyframe{'s' if frames != 1 else ''}, " if frames else ""
    return [f'- Wavetable: "{name}" ({detail}contained in the exported .vital)']


def _modulation_line(m: Modulation) -> str:
    ps = param_space()
    dest = display_name(m.destination) if m.destination in ps else m.destination
    parts = [f"amount {m.amount * 100:+.0f}%"]
    if m.bipolar:
        parts.append("bipolar")
    curve = curve_text("modulation", m.power)
    if curve != "straight":
        parts.append(f"{curve} (drag its curve in the modulation matrix)")
    if m.stereo:
        parts.append("stereo")
    return f"- {source_title(m.source)} -> {dest}, {', '.join(parts)}"


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
        out += [f"### {heading}", "", *lines, ""] if heading else [*lines, ""]
    if not any_block:
        out += [empty, ""]
    return out


def _oscillator_blocks(preset: Preset, diff: _Differences) -> list[tuple[str, list[str]]]:
    blocks = []
    for i in (1, 2, 3):
        module = f"osc_{i}"
        switch = f"- {display_name(module + '_on')}:"
        lines = diff.lines(module)
        head = [ln for ln in lines if ln.startswith(switch)]
        rest = [ln for ln in lines if not ln.startswith(switch)]
        if _is_on(preset, f"{module}_on"):
            lines = head + _wavetable_lines(preset, i - 1) + rest
        else:
            lines = head  # switched off: its other settings cannot be heard
        blocks.append((module_title(module), lines))
    return blocks


def _sample_lines(preset: Preset, diff: _Differences) -> list[str]:
    lines = diff.lines("sample")
    if _is_on(preset, "sample_on"):
        sample = preset.data.get("sample") or {}
        init_sample = Preset.init().data.get("sample") or {}
        if isinstance(sample, Mapping) and sample.get("name") != init_sample.get("name"):
            lines.append(f'- Sample: "{sample.get("name", "custom")}" (contained in the exported .vital)')
    return lines


def _effect_blocks(preset: Preset, diff: _Differences) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(the chain order line, if it matters, and each effect's block in the order of the chain)."""
    chain = effect_order(preset.values.get("effect_chain_order", 0))
    on = [e for e in chain if _is_on(preset, f"{e}_on")]
    order_lines = []
    if len(on) > 1 and on != [e for e in EFFECT_CHAIN if e in on]:  # init's order is alphabetical
        names = " -> ".join(EFFECT_TITLES[e] for e in on)
        order_lines = [f"- Effect chain, first to last (drag the effect tabs into this order): {names}"]
    return order_lines, [(module_title(m), diff.lines(m)) for m in chain]


def _exported_file_lines(preset: Preset, diff: _Differences) -> list[str]:
    """What only the exported .vital carries exactly."""
    lines = []
    all_tables = preset.data.get("wavetables") or []
    tables = [
        module_title(f"osc_{i}") + (" (made from the sound)" if is_made_from_sound(all_tables[i - 1]) else "")
        for i in (1, 2, 3)
        if _is_on(preset, f"osc_{i}_on") and _wavetable_lines(preset, i - 1)
    ]
    if tables:
        lines.append(f"- The wavetable of {', '.join(tables)} (see above)")
    shapes = [
        source_title(f"lfo_{i}")
        for i in range(1, 9)
        if any(m.source == f"lfo_{i}" for m in diff.modulations) and _lfo_shape_lines(preset, i - 1)
    ]
    if shapes:
        lines.append(f"- The shape of {', '.join(shapes)}")
    lines += diff.hidden
    if diff.tiny:
        n = len(diff.tiny)
        lines.append(
            f"- {n} setting{'s' if n != 1 else ''} moved by less than {TINY:.0%} of a knob's travel from init, "
            f"too little to hear or to set by hand: {', '.join(display_name(t) for t in diff.tiny)}"
        )
    return lines


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
        facts: extra lines for the header (start point, score...), in order.
    """
    diff = _Differences(preset, tier)
    out = [
        f"# Rebuilding {title} in Vital",
        "",
        "Start from Vital's init preset (preset menu > Initialize Preset) and change only what is listed "
        "below, panel by panel; everything else keeps its init value. Settings that cannot be heard in "
        "this patch are left out.",
        "",
        f"- Play: MIDI note {midi_note} ({note_name(midi_note)}; MIDI 60 = C4), key held "
        f"{note_duration_s:.2f} s of {duration_s:.2f} s",
        *[f"- {f}" for f in facts],
        "",
    ]
    out += _section(
        SECTIONS[0], _oscillator_blocks(preset, diff), "Leave the oscillators as in the init preset."
    )
    out += _section(
        SECTIONS[1], [("", _sample_lines(preset, diff))], "Leave the sample off, as in the init preset."
    )
    out += _section(
        SECTIONS[2],
        [(module_title(m), diff.lines(m)) for m in ("filter_1", "filter_2")],
        "No filter: leave both off, as in the init preset.",
    )
    out += _section(
        SECTIONS[3],
        [
            (module_title(f"env_{i}") + (" (amplitude)" if i == 1 else ""), diff.lines(f"env_{i}"))
            for i in range(1, 7)
        ],
        "Leave the envelopes as in the init preset.",
    )
    lfo_blocks = [
        (
            source_title(f"lfo_{i}"),
            diff.lines(f"lfo_{i}")
            + (
                _lfo_shape_lines(preset, i - 1)
                if any(m.source == f"lfo_{i}" for m in diff.modulations)
                else []
            ),
        )
        for i in range(1, 9)
    ]
    lfo_blocks += [(source_title(f"random_{i}"), diff.lines(f"random_{i}")) for i in range(1, 5)]
    out += _section(SECTIONS[4], lfo_blocks, "Leave the LFOs as in the init preset.")
    mod_blocks = [("Connections (modulation matrix)", [_modulation_line(m) for m in diff.modulations])]
    mod_blocks += [
        (source_title(f"macro_control_{i}"), diff.lines(f"macro_control_{i}")) for i in range(1, 5)
    ]
    out += _section(SECTIONS[5], mod_blocks, "No modulation beyond the init preset's.")
    order_lines, effect_blocks = _effect_blocks(preset, diff)
    out += _section(
        SECTIONS[6],
        [("", order_lines), *effect_blocks],
        "No effects: leave them all off, as in the init preset.",
    )
    out += _section(SECTIONS[7], [("", diff.lines("global"))], "Leave as in the init preset.")
    exported = _exported_file_lines(preset, diff)
    if exported:
        out += ["## " + SECTIONS[8], "", "Load the exported .vital in Vital for these:", "", *exported, ""]
    return "\n".join(out).rstrip() + "\n"
