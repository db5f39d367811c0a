"""A wavetable made from the target, on oscillator 1, driven over the note by an envelope.

    table, why_not = target_table(audio, sample_rate, pitch, name="piano_C4.wav")
    start = with_target_table(start, table)        # when table is not None

`infer --wavetable target` (`InferConfig.wavetable`): the target's harmonics are measured at
`audio.harmonics.DEFAULT_FRAMES` moments from its attack to its release (`audio.harmonics`), each
moment becomes one single-cycle frame (`synth.wavetables.harmonic_frame`), and the frames go into one
table in time order: frame 0 is the attack's spectrum, frame 256 the release's. Oscillator 1 plays it,
its Wave Frame at 256, and a free envelope (Envelope 2 unless the start uses it) moves the frame by
-100%: the envelope jumps to full at once (frame 0), holds until the first moment measured, then
decays linearly to 0 (frame 256) as long as the measured moments span, so each moment's frame plays at
its own time; after the key is let go the release keeps moving towards the release's spectrum.
Refinement then searches that envelope's times with everything else (they are tier-2 controls), so the
pace can be corrected on the target.

Only confidently pitched, harmonic targets get a table (`estimate_pitch(...).pitched` and
`HarmonicAnalysis.harmonicity >= MIN_HARMONICITY`); others keep the Basic Shapes path, and the reason is
returned to say so. MIN_HARMONICITY is provisional: it separates the examples/ notes (harmonicity
0.70-0.97) from white noise (about 0.2) and two snares (0.34, and 0.43 for the dev set's, which
`estimate_pitch` calls pitched), not yet measured on the whole dev set (docs/BENCHMARKS.md, "Wavetable
made from the target").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthmatch.audio.harmonics import DEFAULT_FRAMES, HarmonicAnalysis, analyse_harmonics
from synthmatch.audio.pitch import PitchEstimate
from synthmatch.synth.params import param_space
from synthmatch.synth.presets import Modulation, Preset
from synthmatch.synth.wavetables import (
    LAST_POSITION,
    MADE_FROM,
    frames_wavetable,
    harmonic_frame,
)

__all__ = [
    "WAVETABLE_CHOICES",
    "MIN_HARMONICITY",
    "TargetTable",
    "target_table",
    "with_target_table",
]

# "auto": the same rule as "target" (a table for pitched, harmonic targets), said at INFO when it keeps the
# start's tables; provisional until measured on the whole dev set (docs/BENCHMARKS.md).
WAVETABLE_CHOICES = ("basic", "target", "auto")
MIN_HARMONICITY = 0.6  # provisional (see the module docstring)
_ENVELOPES = tuple(f"env_{i}" for i in range(2, 7))
_N_SLOTS = 64
_FRAME = "osc_1_wave_frame"


@dataclass(frozen=True)
class TargetTable:
    """A table made from the target and when its frames sound.

    Attributes:
        wavetable: Vital's wavetable JSON (frames in time order over 0..256).
        analysis: the harmonics it was made from.
        hold_s: seconds frame 0 (the first moment measured) holds after the key goes down.
        sweep_s: seconds from the first moment measured to the last, over which the frame moves to 256.
    """

    wavetable: dict
    analysis: HarmonicAnalysis
    hold_s: float
    sweep_s: float

    def as_dict(self) -> dict[str, Any]:
        """The record `--json` writes."""
        return {
            "name": self.wavetable["name"],
            "frames": self.analysis.n_frames,
            "harmonics": self.analysis.n_harmonics,
            "f0_hz": round(self.analysis.f0_hz, 2),
            "harmonicity": round(self.analysis.harmonicity, 3),
            "hold_s": round(self.hold_s, 4),
            "sweep_s": round(self.sweep_s, 4),
        }


def target_table(
    audio: np.ndarray,
    sample_rate: int,
    pitch: PitchEstimate,
    name: str = "target",
    n_frames: int = DEFAULT_FRAMES,
) -> tuple[TargetTable | None, str | None]:
    """A table made from `audio`, or (None, why not) when the sound is not pitched and harmonic.

    Args:
        audio: (N,) mono target, the whole note.
        sample_rate: its rate.
        pitch: `audio.pitch.estimate_pitch` of it.
        name: the target's file name, for the table's name ("Made from NAME").
        n_frames: moments measured (frames of the table).
    """
    if not pitch.pitched or not math.isfinite(pitch.f0_hz):
        return None, f"no clear pitch (confidence {pitch.confidence:.2f})"
    analysis = analyse_harmonics(audio, sample_rate, pitch.f0_hz, n_frames=n_frames)
    if analysis.harmonicity < MIN_HARMONICITY:
        return None, (
            f"too little of its energy at harmonics of {pitch.f0_hz:.1f} Hz "
            f"(harmonicity {analysis.harmonicity:.2f}, below {MIN_HARMONICITY})"
        )
    frames = [harmonic_frame(a) for a in analysis.amplitudes]
    if not any(np.any(f) for f in frames):
        return None, "no harmonic could be measured"
    t = analysis.times_s
    sweep = float(t[-1] - t[0])
    if sweep > 0:
        positions = [int(round(LAST_POSITION * (x - t[0]) / sweep)) for x in t]
    else:
        positions = [0]
        frames = frames[:1]
    # moments nearer one another than a frame position: keep the first of each position
    kept = sorted({p: i for i, p in reversed(list(enumerate(positions)))}.items())
    table = frames_wavetable(f"{MADE_FROM}{name}", [frames[i] for _, i in kept], [p for p, _ in kept])
    return TargetTable(table, analysis, hold_s=float(t[0]), sweep_s=sweep), None


def with_target_table(preset: Preset, table: TargetTable) -> Preset:
    """`preset` with oscillator 1 on, playing `table`, its frame driven by a free envelope.

    Connections the start had to oscillator 1's Wave Frame are dropped (they moved another table). With
    no free envelope or modulation slot, the frame stays at 0 (the attack's spectrum)."""
    tables = list(preset.data.get("wavetables") or Preset.init().data.get("wavetables") or [])
    tables[0] = table.wavetable
    mods = [m for m in preset.modulations if m.destination != _FRAME]
    used = {m.source for m in mods}
    env = next((e for e in _ENVELOPES if e not in used), None)
    ps = param_space()
    values: dict[str, float] = {"osc_1_on": 1.0, _FRAME: 0.0}
    if env is not None and len(mods) < _N_SLOTS and table.sweep_s > 0:
        values[_FRAME] = float(LAST_POSITION)
        values.update(
            {
                f"{env}_delay": 0.0,
                f"{env}_attack": 0.0,
                f"{env}_hold": ps[f"{env}_hold"].raw_of_shown(table.hold_s),
                f"{env}_decay": ps[f"{env}_decay"].raw_of_shown(table.sweep_s),
                f"{env}_sustain": 0.0,
                f"{env}_release": ps[f"{env}_release"].raw_of_shown(table.sweep_s),
                f"{env}_decay_power": 0.0,  # linear: frame positions are proportional to time
                f"{env}_release_power": 0.0,
            }
        )
        mods.append(Modulation(env, _FRAME, amount=-1.0))
    return preset.with_data(wavetables=tables).with_values(values).with_modulations(mods)
