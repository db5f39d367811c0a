"""The finishing steps every match gets, refined or not: in tune, at the target's level, never silent.

- `align_pitch`: a start that sounds at another pitch than the target has every oscillator's and the
  sample's transpose shifted by the difference (or an octave either side, against octave errors of the
  pitch estimate), kept when the loss drops. Transposes are integers CMA-ES does not search, so a start a
  few semitones off could not be fixed otherwise. Up to 3 evaluations.
- `tune`: the cents that remain (the target sits between two MIDI notes, or the preset's oscillators are
  detuned) are taken out with Voice Tune, measured by `audio.pitch.estimate_pitch` on a render and
  checked on another: the result is within `TUNE_TOLERANCE_CENTS` of the target's f0 where both are
  pitched. Refinement holds every tune control, so it never trades tune for timbre.
- `match_level`: the preset's master Volume (the last gain stage, after the effects: a pure gain, dB =
  sqrt(raw) - 80) is set so the match renders at the target's RMS level, without its peak passing
  `PEAK_LIMIT`. The objective compares sounds at equal loudness, so this changes no score.
- `soft_limit`: a match its peaks hold below the target's level gets Vital's Distortion as a soft clip
  (a limiter), kept only where the sound stays the same.
- `is_audible`: whether a render can be called a match at all (see `AUDIBLE_BELOW_TARGET_DB`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from synthmatch.audio.pitch import PitchEstimate, estimate_pitch
from synthmatch.inference.scoring import Scored, Scorer, rms_db
from synthmatch.synth.panel import voice_amplitude_db, voice_amplitude_of_db
from synthmatch.synth.params import param_space
from synthmatch.synth.presets import Preset

log = logging.getLogger(__name__)

__all__ = [
    "TRANSPOSES",
    "TUNE_CONTROLS",
    "RANDOM_PHASE",
    "TUNE_TOLERANCE_CENTS",
    "PEAK_LIMIT",
    "AUDIBLE_BELOW_TARGET_DB",
    "fixed_phase",
    "restore_phase",
    "transposed",
    "align_pitch",
    "tune",
    "cents_off",
    "match_level",
    "soft_limit",
    "LIMITER_DRIVES_DB",
    "volume_db",
    "with_volume_db",
    "is_audible",
    "PitchAlignment",
    "Tuning",
    "LevelMatch",
]

TRANSPOSES = ("osc_1_transpose", "osc_2_transpose", "osc_3_transpose", "sample_transpose")
TUNE_CONTROLS = ("osc_1_tune", "osc_2_tune", "osc_3_tune", "sample_tune", "voice_tune")
RANDOM_PHASE = ("osc_1_random_phase", "osc_2_random_phase", "osc_3_random_phase", "sample_random_phase")
# A match is in tune when its f0 is within this of the target's (the pitch estimate itself is good to a
# few cents on rendered notes: tests/inference/test_pitch.py).
TUNE_TOLERANCE_CENTS = 10.0
# Corrections smaller than this are not worth a render.
_TUNE_DEADBAND_CENTS = 3.0
# The loudest sample level allowed to the match (-0.2 dBFS, just under full scale, where a WAV or a DAW
# clips). Renders with random phase differ in their peaks by up to 2 dB, so the loudest render seen
# counts, and the final render is checked again (`match.match_preset`).
PEAK_LIMIT = 0.98
# A render more than this far below the target's RMS (after level matching) is no match: silence or
# near-silence.
AUDIBLE_BELOW_TARGET_DB = 40.0
# A gain stage is kept only when the loss of the louder render rises by less than this (it is linear).
LEVEL_LOSS_TOLERANCE = 0.02
# Soft-clip drives `soft_limit` tries (dB), and the Distortion settings that make it a plain soft clip.
LIMITER_DRIVES_DB = (6.0, 12.0, 24.0)
_LIMITER = {
    "distortion_on": 1.0,
    "distortion_type": 0.0,
    "distortion_mix": 1.0,
    "distortion_filter_order": 0.0,
}
_VOLUME = "volume"


@dataclass
class PitchAlignment:
    """What `align_pitch` did: the pitches it heard, the shifts it tried, the shift it kept."""

    target_midi: float | None = None
    start_midi: float | None = None
    shift: int = 0
    tried: list[dict[str, Any]] = field(default_factory=list)  # {"shift", "loss", "midi"} per shift

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Tuning:
    """What `tune` did: cents off before and after, and the Voice Tune it left."""

    cents_before: float | None = None
    renders: int = 0
    cents_after: float | None = None
    voice_tune_cents: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LevelMatch:
    """What `match_level` (and the match's final peak check) did to the level, in dBFS RMS."""

    target_db: float
    renders: int = 0
    limited_by: str | None = None  # why the match stays quieter than the target, if it does
    before_db: float | None = None
    after_db: float | None = None
    volume_db: float | None = None
    peak: float | None = None
    rejected: list[dict[str, Any]] = field(default_factory=list)  # gain stages that changed the sound
    lowered_for_peak_db: float | None = None  # the final render would have clipped
    final_db: float | None = None  # the final user render
    limiter_drive_db: float | None = None  # `soft_limit` put a soft clip at this drive

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: v for k, v in d.items() if k == "limited_by" or v not in (None, [])}


def fixed_phase(preset: Preset) -> Preset:
    """`preset` with every oscillator's and the sample's random phase at 0 (repeatable renders)."""
    return replace(preset, values={**preset.values, **{n: 0.0 for n in RANDOM_PHASE}})


def restore_phase(preset: Preset, original: Preset) -> Preset:
    """`preset` with the random-phase settings of `original` (what the user's preset plays with)."""
    return replace(preset, values={**preset.values, **{n: original.values.get(n, 0.0) for n in RANDOM_PHASE}})


def transposed(preset: Preset, semitones: int) -> Preset:
    """`preset` with every oscillator's and the sample's transpose moved by `semitones` (within +-48)."""
    return preset.with_values(
        {n: float(np.clip(preset.values.get(n, 0.0) + semitones, -48, 48)) for n in TRANSPOSES}
    )


def cents_off(target: PitchEstimate, audio: np.ndarray | None, sample_rate: int) -> float | None:
    """Cents from the match's f0 up to the target's (None when either is unpitched)."""
    if not target.pitched or audio is None:
        return None
    p = estimate_pitch(audio, sample_rate)
    if not p.pitched:
        return None
    return float(1200 * math.log2(target.f0_hz / p.f0_hz))


def align_pitch(
    scorer: Scorer, preset: Preset, scored: Scored, target: PitchEstimate
) -> tuple[Preset, Scored, PitchAlignment]:
    """Shift the transposes of `preset` (whose render `scored` holds audio) to the target's pitch.

    Returns:
        (the best of the start and its shifts by loss, its Scored, a summary).
    """
    info = PitchAlignment()
    if not scored.ok or scored.audio is None or not target.pitched:
        return preset, scored, info
    sr = scorer.sample_rate
    start_pitch = estimate_pitch(scored.audio, sr)
    info.target_midi = round(float(target.midi), 3)
    if not start_pitch.pitched:
        return preset, scored, info
    info.start_midi = round(float(start_pitch.midi), 3)
    d = int(round(target.midi - start_pitch.midi))
    if d == 0:
        return preset, scored, info
    shifts = [s for s in dict.fromkeys((d, d - 12, d + 12)) if s != 0 and abs(s) <= 48]
    candidates = [transposed(preset, s) for s in shifts]
    results = scorer.evaluate(candidates, keep_audio=True)
    pitches = [estimate_pitch(r.audio, sr) if r.audio is not None else None for r in results]
    info.tried = [
        {
            "shift": s,
            "loss": round(float(r.loss), 5),
            "midi": round(float(p.midi), 3) if p is not None and p.pitched else None,
        }
        for s, r, p in zip(shifts, results, pitches)
    ]
    # In tune first: a loss at equal loudness can prefer the wrong octave (a dull target matched by a
    # bright start an octave up), so shifts that land within a semitone of the target's pitch come first,
    # and the loss picks among them.
    in_tune = [
        i
        for i, (r, p) in enumerate(zip(results, pitches))
        if r.ok and p is not None and p.pitched and abs(p.midi - target.midi) < 1.0
    ]
    if in_tune:
        i = min(in_tune, key=lambda k: results[k].loss)
    else:
        i = int(np.argmin([r.loss for r in results]))
        if results[i].loss >= scored.loss:
            return preset, scored, info
    info.shift = shifts[i]
    return candidates[i], results[i], info


def _with_tune(preset: Preset, semitones: float) -> Preset:
    """Voice Tune (and, past a semitone, Voice Transpose) moved by `semitones`."""
    ps = param_space()
    total = (
        preset.values.get("voice_transpose", 0.0) + preset.values.get("voice_tune", 0.0) + float(semitones)
    )
    transpose = float(np.clip(round(total), ps["voice_transpose"].min, ps["voice_transpose"].max))
    return preset.with_values(voice_transpose=transpose, voice_tune=ps["voice_tune"].clamp(total - transpose))


def tune(
    scorer: Scorer,
    preset: Preset,
    scored: Scored,
    target: PitchEstimate,
    *,
    fresh: bool = False,
    max_renders: int = 2,
) -> tuple[Preset, Scored, Tuning]:
    """Take the remaining cents out with Voice Tune, checking each correction on a render.

    Args:
        scorer: renders and scores candidates (each check is one evaluation).
        preset: the match so far; `scored` one render of it, with audio.
        target: the target's pitch.
        fresh: check on user renders (the exported preset on a fresh Synth) instead of search renders.
        max_renders: at most this many corrections.
    Returns:
        (preset, its Scored, what was done).
    """
    sr = scorer.sample_rate
    before = cents_off(target, scored.audio, sr)
    info = Tuning(cents_before=None if before is None else round(before, 1))
    off = before
    for _ in range(max_renders):
        if off is None or abs(off) <= _TUNE_DEADBAND_CENTS:
            break
        candidate = _with_tune(preset, off / 100)
        result = scorer.evaluate([candidate], fresh=fresh, keep_audio=True)[0]
        info.renders += 1
        new_off = cents_off(target, result.audio, sr)
        if new_off is None or abs(new_off) >= abs(off) or result.loss >= 1.5 * scored.loss + 0.05:
            break  # the estimate does not follow the correction (or the sound fell apart): keep what was
        preset, scored, off = candidate, result, new_off
    info.cents_after = None if off is None else round(off, 1)
    info.voice_tune_cents = round(100 * preset.values.get("voice_tune", 0.0), 1)
    return preset, scored, info


def volume_db(preset: Preset) -> float:
    """The preset's master Volume in dB, as Vital shows it."""
    spec = param_space()[_VOLUME]
    return spec.shown(preset.values.get(_VOLUME, spec.default))


def with_volume_db(preset: Preset, db: float) -> Preset:
    return preset.with_values(volume=param_space()[_VOLUME].raw_of_shown(db))


_LEVELS = ("osc_1_level", "osc_2_level", "osc_3_level", "sample_level")
# The EQ as make-up gain: both shelves at the ends of the range (the low shelf at 21 kHz boosts
# everything below it, the high shelf at 13 Hz everything above it), +15 dB each at most.
_EQ_MAKEUP = {
    "eq_on": 1.0,
    "eq_low_mode": 0.0,
    "eq_low_cutoff": 136.0,
    "eq_high_mode": 0.0,
    "eq_high_cutoff": 8.0,
}
_EQ_MAX_DB = 15.0


def _with_eq_gain(preset: Preset, gain_db: float) -> tuple[Preset, float]:
    """The EQ (when the preset does not use it) as a broadband make-up gain of up to +30 dB."""
    v = preset.values
    ours = (
        all(abs(v.get(k, -1.0) - x) < 1e-6 for k, x in _EQ_MAKEUP.items())
        and abs(v.get("eq_band_gain", 0)) < 1e-6
    )
    if (v.get("eq_on", 0.0) >= 0.5 and not ours) or gain_db <= 0:
        return preset, 0.0
    now = v.get("eq_low_gain", 0.0) + v.get("eq_high_gain", 0.0) if ours else 0.0
    g = min(now + gain_db, 2 * _EQ_MAX_DB)
    values = {**_EQ_MAKEUP, "eq_low_gain": g / 2, "eq_high_gain": g / 2, "eq_band_gain": 0.0}
    return preset.with_values(values), g - now


def _with_source_gain(preset: Preset, gain_db: float) -> tuple[Preset, float]:
    """Every oscillator's and the sample's level raised together by up to `gain_db` (amplitude follows
    the square of the level control), as far as the loudest one allows. Returns (preset, dB applied)."""
    ps = param_space()
    levels = {n: ps[n].clamp(preset.values.get(n, ps[n].default)) for n in _LEVELS}
    on = {n: v for n, v in levels.items() if preset.values.get(n.replace("_level", "_on"), 0.0) >= 0.5}
    top = max(on.values(), default=0.0)
    if top <= 0 or gain_db <= 0:
        return preset, 0.0
    factor = min(10 ** (gain_db / 40), ps[_LEVELS[0]].max / top)  # amplitude x factor^2
    if factor <= 1.0001:
        return preset, 0.0
    return preset.with_values({n: ps[n].clamp(v * factor) for n, v in levels.items()}), 40 * math.log10(
        factor
    )


def _gain_staged(preset: Preset, delta_db: float, stages: tuple[str, ...]) -> tuple[Preset, float]:
    """`preset` made `delta_db` louder: Volume first, then the given stages ("voice", "eq", "sources").

    Returns (preset, the dB of `delta_db` it could not give)."""
    max_db = param_space()[_VOLUME].shown(param_space()[_VOLUME].max)
    want = volume_db(preset) + delta_db
    out = with_volume_db(preset, min(want, max_db))
    left = want - max_db
    for stage in stages:
        if left <= 0.05:
            break
        if stage == "voice":
            # the gain Voice Amplitude can still give: it plays voice_amplitude_db (heard squared)
            now_db = voice_amplitude_db(float(np.clip(preset.values.get("voice_amplitude", 1.0), 1e-4, 1.0)))
            gain = min(left, -now_db)
            if gain > 0.05:
                out = out.with_values(voice_amplitude=voice_amplitude_of_db(now_db + gain))
                left -= gain
        elif stage == "eq":
            out, gain = _with_eq_gain(out, left)
            left -= gain
        elif stage == "sources":
            out, gain = _with_source_gain(out, left)
            left -= gain
    return out, max(0.0, left)


def match_level(
    scorer: Scorer,
    preset: Preset,
    scored: Scored,
    *,
    max_renders: int = 3,
    tolerance_db: float = 0.5,
    peaks: list[float] | None = None,
) -> tuple[Preset, Scored, LevelMatch]:
    """Bring the match to the target's RMS level, its peak below PEAK_LIMIT, without changing its sound.

    Gain stages, in order, as far as each goes: the master Volume (the last stage: a pure gain, up to
    +6 dB); Voice Amplitude up to 1 (after the filters); the EQ, when the preset does not use it, as a
    broadband make-up gain (both shelves at the ends of the range, up to +30 dB); the oscillators' and
    the sample's levels together. Each try is checked on a user render and kept only when the sound stays
    the same (the loss does not rise by more than `LEVEL_LOSS_TOLERANCE`: a distortion or a compressor
    after the gain is not linear); otherwise the next try uses fewer stages.

    Args:
        scorer: renders the checks (user renders: the exported preset on a fresh Synth).
        preset: the match; `scored` one user render of it, with audio.
        max_renders: at most this many checking renders.
        tolerance_db: stop when the level is this close to the target's.
        peaks: peaks of other user renders of this preset at its current gain: random phase moves a
            render's peak by up to 3 dB (unison voices that line up or not), so the loudest one counts.
    Returns:
        (preset, its latest Scored, what was done).
    """
    info = LevelMatch(target_db=round(scorer.target_rms_db, 2))
    if scored.audio is None or not scored.ok:
        return preset, scored, info
    before_db = info.before_db = round(rms_db(scored.audio), 2)
    plans = [("voice", "eq", "sources"), ("voice", "eq"), ("voice",), ()]
    plan = 0
    # peak of each render seen, relative to its level: what this preset's peaks do at any gain
    crest = [20 * math.log10(max(p, 1e-9)) - before_db for p in (peaks or [])]
    while info.renders < max_renders:
        level = rms_db(scored.audio)
        crest.append(20 * math.log10(max(scored.peak or 0.0, 1e-9)) - level)
        peak = 10 ** ((level + max(crest)) / 20)
        delta = scorer.target_rms_db - level
        limited = None
        if peak > 0 and 20 * math.log10(PEAK_LIMIT / peak) < delta:
            delta, limited = 20 * math.log10(PEAK_LIMIT / peak), "peak (kept below -0.2 dBFS)"
        if abs(delta) <= tolerance_db:
            info.limited_by = limited
            break
        candidate, short = _gain_staged(preset, delta, plans[plan])
        if short > tolerance_db:
            limited = "every gain stage at its maximum"
        info.limited_by = limited
        if candidate.content_hash() == preset.content_hash():
            break
        result = scorer.evaluate([candidate], fresh=True, keep_audio=True)[0]
        info.renders += 1
        if not result.ok or result.audio is None:
            break
        if result.loss > scored.loss + LEVEL_LOSS_TOLERANCE and plan < len(plans) - 1:
            info.rejected.append(
                {"stages": list(plans[plan]), "loss_rise": round(result.loss - scored.loss, 4)}
            )
            plan += 1  # that gain changed the sound: try again with fewer stages
            continue
        preset, scored = candidate, result
    assert scored.audio is not None  # checked on entry and for every render kept
    info.after_db = round(rms_db(scored.audio), 2)
    info.volume_db = round(volume_db(preset), 2)
    info.peak = round(scored.peak or 0.0, 4)
    return preset, scored, info


def soft_limit(
    scorer: Scorer, preset: Preset, scored: Scored, info: LevelMatch, *, short_db: float = 1.0
) -> tuple[Preset, Scored]:
    """For a match held below the target's level by its peaks: Vital's Distortion as a soft clip.

    A match whose crest factor is higher than the target's (sharper transients, unison phases that line
    up) cannot reach the target's RMS without passing `PEAK_LIMIT`: that is most of the matches left
    quiet (docs/BENCHMARKS.md, "The target's level"). Producers put a limiter last for this; Vital's is
    the Distortion effect's Soft Clip. Each drive of `LIMITER_DRIVES_DB` is tried on a user render (in
    parallel) on a preset whose Distortion is off (a preset's own distortion is part of its sound), the
    Volume then set so the peak sits at `PEAK_LIMIT`; the loudest that keeps the sound (its loss rises by
    at most `LEVEL_LOSS_TOLERANCE`) is checked on one more render and kept when it is louder. At most
    len(LIMITER_DRIVES_DB) + 1 renders.

    Returns:
        (preset, its latest Scored); `info` records the drive kept (`limiter_drive_db`).
    """
    if scored.audio is None or not scored.ok or not (info.limited_by or "").startswith("peak"):
        return preset, scored
    if preset.values.get("distortion_on", 0.0) >= 0.5:
        return preset, scored
    level = rms_db(scored.audio)
    if scorer.target_rms_db - level <= short_db:
        return preset, scored
    tries = [preset.with_values({**_LIMITER, "distortion_drive": d}) for d in LIMITER_DRIVES_DB]
    results = scorer.evaluate(tries, fresh=True, keep_audio=True)
    info.renders += len(tries)
    best: tuple[float, float, Preset] | None = None
    for drive, candidate, r in zip(LIMITER_DRIVES_DB, tries, results):
        if not r.ok or r.audio is None or r.loss > scored.loss + LEVEL_LOSS_TOLERANCE:
            continue
        at = rms_db(r.audio)
        gain = min(20 * math.log10(PEAK_LIMIT / max(r.peak or 0.0, 1e-9)), scorer.target_rms_db - at)
        louder = with_volume_db(candidate, volume_db(candidate) + gain)
        reach = at + volume_db(louder) - volume_db(candidate)  # Volume is last: a pure gain
        if reach > level + 0.5 and (best is None or reach > best[0]):
            best = (reach, drive, louder)
    if best is None:
        return preset, scored
    _, drive, louder = best
    check = scorer.evaluate([louder], fresh=True, keep_audio=True)[0]
    info.renders += 1
    if (
        not check.ok
        or check.audio is None
        or check.loss > scored.loss + LEVEL_LOSS_TOLERANCE
        or rms_db(check.audio) <= level + 0.5
    ):
        return preset, scored
    info.limiter_drive_db = drive
    if scorer.target_rms_db - rms_db(check.audio) <= 0.5:
        info.limited_by = None
    info.after_db = round(rms_db(check.audio), 2)
    info.volume_db = round(volume_db(louder), 2)
    info.peak = round(check.peak or 0.0, 4)
    return louder, check


def is_audible(audio: np.ndarray | None, target_rms_db: float) -> bool:
    """True when a render is loud enough to be a match: not silent, and not far below the target."""
    if audio is None or audio.size == 0 or not np.all(np.isfinite(audio)):
        return False
    level = rms_db(audio)
    return level > -100.0 and level >= target_rms_db - AUDIBLE_BELOW_TARGET_DB
