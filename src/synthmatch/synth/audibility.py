"""Vital's rules for what can be heard: can this control change the sound of this preset?

    aud = Audibility(preset)
    aud.reason("filter_1_cutoff")   # None when it can be heard, else why not ("filter_1 is off")
    aud.connections                 # the preset's modulation connections that Vital plays

A control is inaudible when its module is switched off or fed by nothing, when it belongs to an envelope,
LFO, random LFO or macro that modulates nothing, or when a setting elsewhere makes it unused: unison
controls of a one-voice oscillator, the phase of an oscillator at random phase, distortion and spectral
morph amounts whose type is None, the frame of a one-frame wavetable, formant controls of a non-formant
filter, the comb blend offset of a filter model that has none, a rate in seconds whose module is
tempo-synced, the distortion filter at order None, a compressor band its Enabled Bands leaves out.
Refinement searches only audible controls, the tutorial and the web page show only audible differences,
and a template connection is added only where its destination can be heard. Rules about the search
itself (what refinement holds fixed although it is audible) live with the search, in `inference.refine`.
"""

from __future__ import annotations

import re

from synthmatch.synth.params import ParamSpace, param_space
from synthmatch.synth.presets import Modulation, Preset

__all__ = ["Audibility", "inaudible_reason", "SOUND_SOURCES", "EFFECTS", "fed_filters", "is_on"]

SOUND_SOURCES = ("osc_1", "osc_2", "osc_3", "sample")
EFFECTS = ("chorus", "compressor", "delay", "distortion", "eq", "flanger", "phaser", "reverb", "filter_fx")
_UNISON_RE = re.compile(
    r"^osc_\d_(unison_detune|unison_blend|detune_power|detune_range|stereo_spread|frame_spread)$"
)
_DISTORTION_RE = re.compile(r"_distortion_(amount|phase|spread)$")
_MORPH_RE = re.compile(r"_spectral_morph_(amount|spread)$")
# rate control -> its sync control: the rate is unused unless sync is "Seconds" (0)
_SYNCED_RATE = {
    "chorus_frequency": "chorus_sync",
    "flanger_frequency": "flanger_sync",
    "phaser_frequency": "phaser_sync",
    "delay_frequency": "delay_sync",
    "delay_aux_frequency": "delay_aux_sync",
    **{f"lfo_{i}_frequency": f"lfo_{i}_sync" for i in range(1, 9)},
    **{f"random_{i}_frequency": f"random_{i}_sync" for i in range(1, 5)},
}
_SOURCE_MODULES = ("env_", "lfo_", "random_", "macro_control_")
# filter model -> its lowest style that uses the comb blend offset (measured by rendering; the Comb model
# uses it in every style, the others never in the styles Vital's menu offers)
_COMB_OFFSET_STYLES = {
    "Analog": 99,
    "Dirty": 99,
    "Digital": 99,
    "Phaser": 99,
    "Ladder": 5,
    "Formant": 5,
    "Diode": 4,
}
# compressor "Enabled Bands" -> the outer bands it uses (the middle band always plays; measured by rendering:
# a band's gain changes nothing when its band is unused)
_COMPRESSOR_BAND_RE = re.compile(r"^compressor_(low|high)_")
_COMPRESSOR_BANDS = {
    "Multiband": ("low", "high"),
    "Low Band": ("low",),
    "High Band": ("high",),
    "Single Band": (),
}


def is_on(preset: Preset, name: str) -> bool:
    """A switch control (`filter_1_on`, ...) is on."""
    return preset.values.get(name, 0.0) >= 0.5


def fed_filters(preset: Preset) -> set[str]:
    """Filters that receive a signal: an enabled oscillator/sample routed to them, or serial routing."""
    fed: set[str] = set()
    for src in SOUND_SOURCES:
        if not is_on(preset, f"{src}_on"):
            continue
        dest = int(round(preset.values.get(f"{src}_destination", 0)))
        if dest in (0, 2):
            fed.add("filter_1")
        if dest in (1, 2):
            fed.add("filter_2")
    if fed and (is_on(preset, "filter_1_filter_input") or is_on(preset, "filter_2_filter_input")):
        fed |= {"filter_1", "filter_2"}
    return fed


def _n_keyframes(preset: Preset, osc_index: int) -> int:
    tables = preset.data.get("wavetables") or []
    if osc_index >= len(tables):
        return 1
    try:
        return sum(len(c.get("keyframes", [])) for g in tables[osc_index]["groups"] for c in g["components"])
    except (KeyError, TypeError):
        return 2  # unknown layout: assume the frame matters


class Audibility:
    """What can be heard in one preset. Built once per preset (it reads the routing), asked per control.

    connections: the preset's modulation connections Vital plays (tier 3's routing rules: a connection
    the preset has is heard whatever tier is searched); sources: the modules they come from; fed: the
    filters that receive a signal.
    """

    def __init__(self, preset: Preset, space: ParamSpace | None = None):
        self.preset = preset
        self.space = space or param_space()
        kept, _ = preset.routing_for_tier(self.space.tier(3), self.space)
        self.connections: list[Modulation] = list(kept)
        self.sources = {m.source for m in kept}
        self.fed = fed_filters(preset)
        self.silent = not any(is_on(preset, f"{src}_on") for src in SOUND_SOURCES)

    def audible(self, name: str) -> bool:
        return self.reason(name) is None

    def reason(self, name: str) -> str | None:
        """Why control `name` cannot be heard in the preset, or None when it can."""
        preset, ps = self.preset, self.space
        if self.silent:
            return "no oscillator or sample is on: the preset is silent"
        module = ps[name].module
        if module.startswith(_SOURCE_MODULES) and module != "env_1" and module not in self.sources:
            return f"{module} modulates nothing in this preset"
        if module in (*SOUND_SOURCES, "filter_1", "filter_2", *EFFECTS) and not is_on(preset, f"{module}_on"):
            return f"{module} is off"
        if module in ("filter_1", "filter_2") and module not in self.fed:
            return f"nothing is routed into {module}"
        if module.startswith("osc_"):
            reason = self._oscillator_reason(name, module)
            if reason:
                return reason
        if "_formant_" in name and module.startswith("filter"):
            model = ps[f"{module}_model"].option_label(preset.values.get(f"{module}_model", 0))
            if model != "Formant":
                return f"{module} model is {model}, not Formant"
        if name.endswith("_blend_transpose") and module.startswith("filter"):
            model = ps[f"{module}_model"].option_label(preset.values.get(f"{module}_model", 0))
            style = int(round(preset.values.get(f"{module}_style", 0)))
            if style < _COMB_OFFSET_STYLES.get(model, 0):
                return f"{module} model is {model}: the comb blend offset is unused"
        sync = _SYNCED_RATE.get(name)
        if sync and sync in ps and preset.values.get(sync, ps[sync].default) >= 0.5:
            return f"{sync} is tempo-synced: the rate in seconds is unused"
        if name.startswith("distortion_filter_") and preset.values.get("distortion_filter_order", 0) < 0.5:
            return "distortion filter order is None"
        band = _COMPRESSOR_BAND_RE.match(name)
        if band:
            mode = ps["compressor_enabled_bands"].option_label(
                preset.values.get("compressor_enabled_bands", 0)
            )
            if band.group(1) not in _COMPRESSOR_BANDS.get(mode, ("low", "high")):
                return f"compressor enabled bands is {mode}: its {band.group(1)} band is unused"
        return None

    def _oscillator_reason(self, name: str, module: str) -> str | None:
        values = self.preset.values
        if _UNISON_RE.match(name) and values.get(f"{module}_unison_voices", 1) <= 1:
            return f"{module} has one unison voice"
        if name == f"{module}_phase" and values.get(f"{module}_random_phase", 0.0) > 0:
            return f"{module} starts at a random phase"
        if _DISTORTION_RE.search(name) and values.get(f"{module}_distortion_type", 0) < 0.5:
            return f"{module} distortion type is None"
        if _MORPH_RE.search(name) and values.get(f"{module}_spectral_morph_type", 0) < 0.5:
            return f"{module} spectral morph type is None"
        if name.endswith("_wave_frame") and _n_keyframes(self.preset, int(module[-1]) - 1) <= 1:
            return f"{module} wavetable has a single frame"
        return None


def inaudible_reason(name: str, preset: Preset, space: ParamSpace | None = None) -> str | None:
    """Why control `name` cannot be heard in `preset`, or None when it can (one-off form of Audibility)."""
    return Audibility(preset, space).reason(name)
