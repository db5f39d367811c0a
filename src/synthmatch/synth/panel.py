"""Vital's panels as a person sees them: the effect chain's order, and the controls without a knob.

    effect_order(preset.values["effect_chain_order"])   # ("chorus", "compressor", ...): processing order
    EFFECT_TITLES["filter_fx"]                           # "Filter": the effect's tab in Vital
    no_knob_reason("env_1_attack_power")                 # how a person sets it instead, or None
    curve_text("env_1_decay_power", -6.0)                # "curved: falls fast, then tails off"

Vital stores the effect chain as one integer (`effect_chain_order`, 0..9!-1): a permutation code of its
nine effects, decoded as Vital's `utils::decodeFloatToOrder` does. The order a person sees is the one the
effect tabs are dragged into; the number itself is nowhere to be typed. A few stored values have no knob:
the envelope segments' curves are bent by dragging them in the envelope graph, the modulation curve by
dragging it in the modulation matrix, `voice_amplitude` is a modulation destination only. Checked by
rendering (tests/synth/test_panel.py): code 3528 (the filter before the distortion) sounds brighter than
code 0 (distortion first); a positive attack power rises fast and levels off, a positive decay power
holds and falls late.
"""

from __future__ import annotations

import math
import re

from synthmatch.synth.params import param_space

__all__ = [
    "EFFECT_CHAIN",
    "EFFECT_TITLES",
    "BAND_TITLES",
    "module_title",
    "source_title",
    "effect_order",
    "effect_order_code",
    "no_knob_reason",
    "curve_text",
    "volume_with_voice_amplitude",
    "voice_amplitude_db",
    "voice_amplitude_of_db",
]

# Vital's effects in its own enum order (`constants::Effect`): the order of code 0, alphabetical.
EFFECT_CHAIN = (
    "chorus",
    "compressor",
    "delay",
    "distortion",
    "eq",
    "filter_fx",
    "flanger",
    "phaser",
    "reverb",
)
# Each effect's name on its tab in Vital's Effects page.
EFFECT_TITLES = {
    "chorus": "Chorus",
    "compressor": "Compressor",
    "delay": "Delay",
    "distortion": "Distortion",
    "eq": "EQ",
    "filter_fx": "Filter",
    "flanger": "Flanger",
    "phaser": "Phaser",
    "reverb": "Reverb",
}
# The compressor's and EQ's bands as the panel names them: (control infix, title).
BAND_TITLES = (("low", "Low band"), ("band", "Band (the middle one)"), ("high", "High band"))


def source_title(source: str) -> str:
    """A modulation source as Vital's panels name it: env_2 -> "Envelope 2", random_1 -> "Random LFO 1"."""
    for prefix, title in (
        ("env_", "Envelope "),
        ("lfo_", "LFO "),
        ("random_", "Random LFO "),
        ("macro_control_", "Macro "),
    ):
        if source.startswith(prefix):
            return title + source[len(prefix) :]
    return source.replace("_", " ").title()


def module_title(module: str) -> str:
    """A module as its panel is titled: osc_1 -> "Oscillator 1", filter_2 -> "Filter 2", env_1 ->
    "Envelope 1", filter_fx -> "Filter FX" (the effect; its tab reads "Filter"), eq -> "EQ"."""
    if module.startswith("osc_"):
        return f"Oscillator {module[-1]}"
    if module.startswith("filter_") and module != "filter_fx":
        return f"Filter {module[-1]}"
    if module.startswith(("env_", "lfo_", "random_", "macro_control_")):
        return source_title(module)
    if module == "filter_fx":
        return "Filter FX"
    return EFFECT_TITLES.get(module, {"global": "Global"}.get(module, module.replace("_", " ").title()))


_CURVE_RE = re.compile(r"^env_\d_(attack|decay|release)_power$")
_NO_KNOB = {
    "effect_chain_order": "the order of the effect tabs (drag them in the Effects page)",
    "voice_amplitude": "no knob in Vital: a modulation destination only",
}


def effect_order(code: float) -> tuple[str, ...]:
    """The effects in the order they process the sound, from Vital's `effect_chain_order` code."""
    n = len(EFFECT_CHAIN)
    order = list(range(n))
    rest = max(0, int(code))
    for i in range(n):
        remaining = n - i
        last = remaining - 1
        inversions = rest % remaining
        rest //= remaining
        moved = order[last - inversions]
        order[last - inversions : last] = order[last - inversions + 1 : last + 1]
        order[last] = moved
    return tuple(EFFECT_CHAIN[i] for i in order)


def effect_order_code(order: tuple[str, ...] | list[str]) -> int:
    """Vital's `effect_chain_order` code of an order of all nine effects (inverse of `effect_order`)."""
    if sorted(order) != sorted(EFFECT_CHAIN):
        raise ValueError(f"an effect order names each of {', '.join(EFFECT_CHAIN)} once, got {order!r}")
    index = [EFFECT_CHAIN.index(e) for e in order]
    code = 0
    for i in range(1, len(index)):
        code = code * (i + 1) + sum(index[i] < index[j] for j in range(i))
    return code


def no_knob_reason(name: str) -> str | None:
    """How a person sets a control that Vital shows no knob or number for, or None when it has one."""
    if _CURVE_RE.match(name):
        return "bent by dragging the middle of its segment in the envelope graph"
    return _NO_KNOB.get(name)


def curve_text(name: str, power: float) -> str:
    """A curve power in words ("curved: rises fast, then levels off"), for a control without a number.

    `name` is an envelope segment's power control (`env_1_decay_power`) or "modulation" (a connection's
    curve in the modulation matrix, whose direction depends on the source).
    """
    size = abs(float(power))
    if size < 0.5:
        return "straight"
    strength = "slightly curved" if size < 2.5 else "curved" if size < 8 else "sharply curved"
    if name == "modulation":
        return strength
    rising = name.endswith("_attack_power")
    if rising:
        shape = "rises fast, then levels off" if power > 0 else "starts slowly, then rises fast"
    else:
        shape = "holds, then falls late" if power > 0 else "falls fast, then tails off"
    return f"{strength}: {shape}"


def voice_amplitude_db(voice_amplitude: float) -> float:
    """The gain Voice Amplitude plays at, in dB: it is heard squared (0.5 plays 12 dB quieter, measured in
    tests/synth/test_panel.py)."""
    return 40.0 * math.log10(max(1e-4, float(voice_amplitude)))


def voice_amplitude_of_db(db: float) -> float:
    """The Voice Amplitude that plays `db` (<= 0) of gain: the inverse of `voice_amplitude_db`."""
    return min(1.0, 10 ** (float(db) / 40.0))


def volume_with_voice_amplitude(volume: float, voice_amplitude: float) -> float:
    """The raw Volume that plays as loud as `volume` does with the voice at `voice_amplitude` (a gain
    without a knob). Exact while no distortion or compressor sits between the two (their sound depends
    on the level reaching them)."""
    spec = param_space()["volume"]
    return spec.raw_of_shown(spec.shown(volume) + voice_amplitude_db(voice_amplitude))
