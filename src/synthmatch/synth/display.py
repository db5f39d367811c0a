"""Vital's display text for control values ("Filter 1 Cutoff: 1.24 kHz", "Envelope 1 Attack: 12 ms").

Real units live only in `synth/`. The text comes from vita's own `get_control_text` (the string Vital
shows), tidied: numbers to three significant figures and no more decimals than Vital's knob shows (five
characters: 0.00234 shows as 0.002), seconds below one shown in ms, and the cutoff-like
controls that Vital stores as MIDI-note semitones shown as frequencies, the way the Vital UI shows them.
"""

from __future__ import annotations

import functools
import math
import re
import threading

from synthmatch.synth import _vita
from synthmatch.synth.params import param_space

__all__ = ["display_text", "display_name", "format_number", "note_to_hz", "format_hz"]

# Vital's knob shows a value in at most this many characters, its sign aside (`SynthSlider::formatValue`:
# five decimals cut to five characters): 0.00234 shows as 0.002.
KNOB_CHARS = 5
_LOCK = threading.Lock()
_NUMBER_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)\s*(.*)$")
# Controls whose raw value is a MIDI note number standing for a frequency.
_NOTE_FREQUENCY_RE = re.compile(r"(cutoff|_center)$")


@functools.lru_cache(maxsize=1)
def _scratch():
    synth = _vita.new_synth()
    return synth, synth.get_controls()


def note_to_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def format_number(x: float, digits: int = 3) -> str:
    """Three significant figures without trailing zeros, no wider than Vital's knob shows a number:
    1.24, 0.5, 120, -6.02, 0.002 (for 0.00234), 0 (for 0.000146)."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    magnitude = int(math.floor(math.log10(abs(x))))
    decimals = max(0, digits - 1 - magnitude)
    # no decimal the knob cannot show: its text is KNOB_CHARS characters wide, the sign aside
    decimals = min(decimals, max(0, KNOB_CHARS - max(1, magnitude + 1) - 1))
    text = f"{x:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_hz(hz: float) -> str:
    return f"{format_number(hz / 1000)} kHz" if hz >= 1000 else f"{format_number(hz)} Hz"


def display_name(name: str) -> str:
    """Vital's name for a control ("Filter 1 Cutoff")."""
    return param_space()[name].display_name


def display_text(name: str, raw: float) -> str:
    """The value of a control as Vital shows it, tidied ("1.24 kHz", "12 ms", "Ladder", "-6.02 dB")."""
    spec = param_space()[name]
    value = spec.clamp(raw)
    if spec.kind in ("categorical", "switch"):
        return spec.option_label(value)
    if _NOTE_FREQUENCY_RE.search(name) and spec.units in ("semitones", "") and spec.max > 100:
        return format_hz(note_to_hz(value))
    with _LOCK:
        synth, controls = _scratch()
        controls[name].set(value)
        text = synth.get_control_text(name)
    text = _tidy(text)
    # Vital shows these with units its control metadata leaves out.
    if not spec.units and name.endswith("_tune"):
        return f"{text} cents"
    if not spec.units and name.endswith("_transpose"):
        return f"{text} semitones"
    return text


def _tidy(text: str) -> str:
    m = _NUMBER_RE.match(text)
    if not m:
        return text.strip()
    x, unit = float(m.group(1)), m.group(2).strip()
    if unit == "secs":
        return f"{format_number(x * 1000)} ms" if abs(x) < 1 else f"{format_number(x)} s"
    if unit == "ms" and abs(x) >= 1000:
        return f"{format_number(x / 1000)} s"
    if unit == "%":
        return f"{format_number(x)}%"
    return f"{format_number(x)} {unit}".strip()
