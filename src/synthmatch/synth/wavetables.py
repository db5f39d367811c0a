"""Wavetables in Vital's JSON form, built in code.

Vital's init wavetable is one saw frame, so `osc_N_wave_frame` does nothing with it (docs/VITA.md, "Wavetables").
Generated and predicted presets use "Basic Shapes" instead: keyframes sine, triangle, saw and square
spread over the 257 frame positions, which Vital crossfades. `wave_frame` then becomes one continuous
timbre control (sine at 0, triangle at 85, saw at 170, square at 256) the model and CMA-ES can move.

Keyframes always hold exactly 2048 float32 samples: shorter ones load but read out of bounds (docs/VITA.md, "What crashes or hangs vita").
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json

import numpy as np

__all__ = [
    "WAVE_SIZE",
    "encode_wave",
    "decode_wave",
    "wavetable_json",
    "basic_shapes_wavetable",
    "BASIC_SHAPES_POSITIONS",
    "wavetable_hash",
]

WAVE_SIZE = 2048
# Frame positions of the keyframes of Basic Shapes: sine, triangle, saw, square.
BASIC_SHAPES_POSITIONS = (0, 85, 170, 256)


def encode_wave(samples: np.ndarray) -> str:
    """A 2048-sample waveform as Vital's base64 float32 `wave_data`."""
    a = np.asarray(samples, np.float32).reshape(-1)
    if a.size != WAVE_SIZE:
        raise ValueError(f"a wavetable keyframe needs exactly {WAVE_SIZE} samples, got {a.size}")
    if not np.all(np.isfinite(a)):
        raise ValueError("a wavetable keyframe must be finite")
    return base64.b64encode(a.astype("<f4").tobytes()).decode("ascii")


def decode_wave(wave_data: str) -> np.ndarray:
    a = np.frombuffer(base64.b64decode(wave_data), dtype="<f4")
    if a.size != WAVE_SIZE:
        raise ValueError(f"keyframe holds {a.size} samples, expected {WAVE_SIZE}")
    return a.astype(np.float32)


def wavetable_json(name: str, keyframes: list[tuple[int, np.ndarray]]) -> dict:
    """A one-component "Wave Source" wavetable in the layout vita writes."""
    if not keyframes:
        raise ValueError("a wavetable needs at least one keyframe (none renders silence)")
    frames = []
    for position, wave in sorted(keyframes, key=lambda kv: kv[0]):
        if not 0 <= int(position) <= 256:
            raise ValueError(f"keyframe position must be in 0..256, got {position}")
        frames.append({"position": int(position), "wave_data": encode_wave(wave)})
    return {
        "author": "synthmatch",
        "full_normalize": True,
        "groups": [
            {
                "components": [
                    {"interpolation": 1, "interpolation_style": 1, "keyframes": frames, "type": "Wave Source"}
                ]
            }
        ],
        "name": name,
        "remove_all_dc": True,
        "version": "1.0.7",
    }


def _basic_waves() -> list[np.ndarray]:
    phase = np.arange(WAVE_SIZE) / WAVE_SIZE
    sine = np.sin(2 * np.pi * phase)
    triangle = 1 - 4 * np.abs(((phase + 0.25) % 1.0) - 0.5)
    saw = 2 * ((phase + 0.5) % 1.0) - 1
    square = np.where(phase < 0.5, 1.0, -1.0)
    return [w.astype(np.float32) for w in (sine, triangle, saw, square)]


@functools.lru_cache(maxsize=1)
def _basic_shapes_text() -> str:
    return json.dumps(wavetable_json("Basic Shapes", list(zip(BASIC_SHAPES_POSITIONS, _basic_waves()))))


def basic_shapes_wavetable() -> dict:
    """The Basic Shapes wavetable (sine -> triangle -> saw -> square), a fresh dict."""
    return json.loads(_basic_shapes_text())


def wavetable_hash(wavetable: dict) -> str:
    return hashlib.sha1(json.dumps(wavetable, sort_keys=True).encode()).hexdigest()[:16]
