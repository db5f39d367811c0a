"""Wavetables in Vital's JSON form, built in code.

Vital's init wavetable is one saw frame, so `osc_N_wave_frame` does nothing with it (docs/VITA.md, "Wavetables").
Generated and predicted presets use "Basic Shapes" instead: keyframes sine, triangle, saw and square
spread over the 257 frame positions, which Vital crossfades. `wave_frame` then becomes one continuous
timbre control (sine at 0, triangle at 85, saw at 170, square at 256) the model and CMA-ES can move.

Keyframes always hold exactly 2048 float32 samples: shorter ones load but read out of bounds (docs/VITA.md, "What crashes or hangs vita").

A table made from a sound (`infer --wavetable target`) is built here from harmonic amplitudes measured
elsewhere (`audio.harmonics`): `harmonic_frame` turns one moment's amplitudes into one single-cycle
frame by additive synthesis, and `frames_wavetable` spreads such frames over the 257 positions. Every
frame uses the same phases (sine phase unless given), so Vital's crossfade between two keyframes is a
crossfade of their harmonic amplitudes and never cancels a harmonic half way.
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
    "harmonic_frame",
    "frames_wavetable",
    "frame_positions",
    "MAX_FRAME_HARMONIC",
    "LAST_POSITION",
    "MADE_FROM",
    "is_made_from_sound",
]

WAVE_SIZE = 2048
# Frame positions of the keyframes of Basic Shapes: sine, triangle, saw, square.
BASIC_SHAPES_POSITIONS = (0, 85, 170, 256)
LAST_POSITION = 256
# The name of a table made from a sound starts with this (`inference.target_table`).
MADE_FROM = "Made from "
# The highest harmonic a 2048-sample cycle holds below its own Nyquist.
MAX_FRAME_HARMONIC = WAVE_SIZE // 2 - 1


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


def harmonic_frame(amplitudes: np.ndarray, phases: np.ndarray | None = None) -> np.ndarray:
    """One single-cycle frame: the sum of harmonics 1..len(amplitudes) at these amplitudes.

    Args:
        amplitudes: (K,) linear amplitude of harmonics 1..K (K <= MAX_FRAME_HARMONIC); negative or
            non-finite values count as 0.
        phases: (K,) phase of each harmonic in radians, on sine (None: all 0, so a 1/k series is a saw).
    Returns:
        (WAVE_SIZE,) float32, peak 1 (all zeros when every amplitude is 0), band-limited to K harmonics.
    """
    amp = np.nan_to_num(np.asarray(amplitudes, np.float64).reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    amp = np.maximum(amp, 0.0)
    if amp.size > MAX_FRAME_HARMONIC:
        raise ValueError(
            f"a {WAVE_SIZE}-sample frame holds at most {MAX_FRAME_HARMONIC} harmonics, got {amp.size}"
        )
    ph = np.zeros(amp.size) if phases is None else np.asarray(phases, np.float64).reshape(-1)
    if ph.size != amp.size:
        raise ValueError(f"{amp.size} amplitudes but {ph.size} phases")
    ph = np.nan_to_num(ph)
    # an inverse FFT of the cycle's spectrum: bin k holds harmonic k, sin(x + p) = Im(e^{i(x + p)})
    spectrum = np.zeros(WAVE_SIZE // 2 + 1, np.complex128)
    spectrum[1 : amp.size + 1] = amp * np.exp(1j * (ph - np.pi / 2)) * (WAVE_SIZE / 2)
    wave = np.fft.irfft(spectrum, WAVE_SIZE)
    peak = float(np.max(np.abs(wave)))
    if peak > 0:
        wave = wave / peak
    return wave.astype(np.float32)


def frame_positions(n_frames: int) -> list[int]:
    """`n_frames` keyframe positions spread evenly over 0..256, first at 0, last at 256."""
    if not 1 <= n_frames <= LAST_POSITION + 1:
        raise ValueError(f"a wavetable holds 1..{LAST_POSITION + 1} keyframes, got {n_frames}")
    if n_frames == 1:
        return [0]
    return [int(round(i * LAST_POSITION / (n_frames - 1))) for i in range(n_frames)]


def frames_wavetable(name: str, frames: list[np.ndarray], positions: list[int] | None = None) -> dict:
    """A Vital wavetable of `frames` (each WAVE_SIZE finite samples) at `positions` (default: spread
    evenly over 0..256, `frame_positions`); positions must be distinct, in 0..256."""
    if not frames:
        raise ValueError("a wavetable needs at least one frame")
    at = frame_positions(len(frames)) if positions is None else [int(p) for p in positions]
    if len(at) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(at)} positions")
    if len(set(at)) != len(at):
        raise ValueError(f"keyframe positions must be distinct, got {at}")
    return wavetable_json(name, list(zip(at, frames)))


def is_made_from_sound(wavetable: object) -> bool:
    """Whether a wavetable is one synthmatch made from a sound (its name and author say so)."""
    return (
        isinstance(wavetable, dict)
        and wavetable.get("author") == "synthmatch"
        and str(wavetable.get("name", "")).startswith(MADE_FROM)
    )
