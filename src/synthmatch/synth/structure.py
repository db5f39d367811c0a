"""The structured part of a preset checked before it can reach vita: wavetables, LFO shapes, the sample.

    problem = structure_problem(settings)   # None when vita can take it, else one line saying why

vita trusts this data: a wavetable component type outside Vital's names or a fourth wavetable segfaults
`load_json` + `render`, a keyframe shorter than 2048 samples reads out of bounds (docs/VITA.md, "What
crashes or hangs vita"); a keyframe holding NaN or infinite samples is refused too (no usable sound
can come of it). Every preset read from a file (`Preset.from_json`: render, ingest, infer --start,
generate's community presets, the demo) goes through `structure_problem`, so a hostile or broken file is
refused with one line naming what is wrong instead of crashing the process. The rules follow the layout
Vital writes (every community preset passes, tests/synth/test_structure.py); counts and sizes are capped
far above what Vital writes, so a file cannot make vita allocate without bound either.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["COMPONENT_TYPES", "MAX_WAVETABLES", "structure_problem"]

# Vital's wavetable components: sources, then modifiers.
COMPONENT_TYPES = frozenset(
    {
        "Wave Source",
        "Line Source",
        "Audio File Source",
        "Shepard Tone Source",
        "Phase Shift",
        "Wave Window",
        "Frequency Filter",
        "Slew Limiter",
        "Wave Folder",
        "Wave Warp",
    }
)
MAX_WAVETABLES = 3  # one per oscillator; a fourth segfaults vita
WAVE_BYTES = 2048 * 4  # a Wave Source keyframe: 2048 float32 samples
MAX_GROUPS = 16
MAX_COMPONENTS = 64
MAX_KEYFRAMES = 257  # one per frame position
MAX_LFOS = 8
MAX_POINTS = 1000  # of an LFO shape or a Line Source
MAX_SAMPLE_RATE = 768_000


class _Bad(Exception):
    pass


def structure_problem(settings: Mapping[str, Any]) -> str | None:
    """What in a preset's `wavetables`, `lfos` and `sample` vita cannot safely take (None: nothing)."""
    try:
        _wavetables(settings.get("wavetables"))
        _lfos(settings.get("lfos"))
        _sample(settings.get("sample"))
    except _Bad as exc:
        return str(exc)
    return None


def _list(x: Any, what: str, most: int) -> list:
    if not isinstance(x, list):
        raise _Bad(f"{what} is not a list")
    if len(x) > most:
        raise _Bad(f"{what} has {len(x)} entries, at most {most} allowed")
    return x


def _dict(x: Any, what: str) -> Mapping:
    if not isinstance(x, Mapping):
        raise _Bad(f"{what} is not an object")
    return x


def _number(x: Any, what: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise _Bad(f"{what} is not a number")
    try:
        v = float(x)
    except OverflowError:
        raise _Bad(f"{what} is too large") from None
    if not math.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
        raise _Bad(f"{what} is {x!r}, outside {lo}..{hi}")
    return v


def _count(x: Any, what: str, most: int) -> int:
    v = _number(x, what, 0, most)
    if v != int(v):
        raise _Bad(f"{what} is not a whole number")
    return int(v)


def _decoded(x: Any, what: str) -> bytes:
    if not isinstance(x, str):
        raise _Bad(f"{what} is not base64 text")
    try:
        return base64.b64decode(x, validate=True)
    except (binascii.Error, ValueError):
        raise _Bad(f"{what} is not valid base64") from None


def _decoded_size(x: Any, what: str) -> int:
    return len(_decoded(x, what))


def _shape(x: Any, what: str) -> None:
    """An LFO shape or a Line Source's line: num_points, points (x, y pairs), powers."""
    d = _dict(x, what)
    n = _count(d.get("num_points"), f"{what} num_points", MAX_POINTS)
    points = _list(d.get("points"), f"{what} points", 2 * MAX_POINTS)
    powers = _list(d.get("powers", [0.0] * n), f"{what} powers", MAX_POINTS)
    if n < 1 or len(points) < 2 * n or len(powers) < n:
        raise _Bad(f"{what} declares {n} points but holds {len(points) // 2} points and {len(powers)} powers")
    for i, v in enumerate(points[: 2 * n]):
        _number(v, f"{what} point {i // 2} {'xy'[i % 2]}")
    for i, v in enumerate(powers[:n]):
        _number(v, f"{what} power {i}")


def _wavetables(x: Any) -> None:
    if x is None:
        return
    for t, table in enumerate(_list(x, "wavetables", MAX_WAVETABLES)):
        where = f"wavetable {t + 1}"
        groups = _list(_dict(table, where).get("groups", []), f"{where} groups", MAX_GROUPS)
        for g, group in enumerate(groups):
            comps = _dict(group, f"{where} group {g + 1}").get("components", [])
            for c, comp in enumerate(_list(comps, f"{where} group {g + 1} components", MAX_COMPONENTS)):
                _component(_dict(comp, f"{where} component {c + 1}"), f"{where} component {c + 1}")


def _component(comp: Mapping, where: str) -> None:
    kind = comp.get("type")
    if not isinstance(kind, str) or kind not in COMPONENT_TYPES:
        raise _Bad(f"{where} has type {kind!r}, not one of Vital's ({', '.join(sorted(COMPONENT_TYPES))})")
    frames = _list(comp.get("keyframes", []), f"{where} keyframes", MAX_KEYFRAMES)
    if kind == "Audio File Source" and "audio_file" in comp:
        _decoded_size(comp["audio_file"], f"{where} audio_file")
    for k, frame in enumerate(frames):
        at = f"{where} keyframe {k + 1}"
        frame = _dict(frame, at)
        _number(frame.get("position", 0), f"{at} position", 0, 256)
        if kind == "Wave Source":
            data = _decoded(frame.get("wave_data"), f"{at} wave_data")
            if len(data) != WAVE_BYTES:
                raise _Bad(f"{at} wave_data holds {len(data) // 4} samples, Vital needs exactly 2048")
            if not np.all(np.isfinite(np.frombuffer(data, "<f4"))):
                raise _Bad(f"{at} wave_data holds NaN or infinite samples")
        elif kind == "Line Source":
            _shape(frame.get("line"), f"{at} line")


def _lfos(x: Any) -> None:
    if x is None:
        return
    for i, lfo in enumerate(_list(x, "lfos", MAX_LFOS)):
        _shape(lfo, f"LFO shape {i + 1}")


def _sample(x: Any) -> None:
    if x is None:
        return
    sample = _dict(x, "sample")
    length = _count(sample.get("length", 0), "sample length", 2**31)
    _count(sample.get("sample_rate", 44100), "sample sample_rate", MAX_SAMPLE_RATE)
    for key in ("samples", "samples_stereo"):
        if key in sample:
            size = _decoded_size(sample[key], f"sample {key}")
            if size < 2 * length:
                raise _Bad(f"sample {key} holds {size // 2} samples, its length says {length}")
