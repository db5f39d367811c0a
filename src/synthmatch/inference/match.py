"""One match, from a start preset to the preset the user gets: what `infer`, `eval` and the demo share.

    match = match_preset(start, tier, MatchTarget.of(audio, sample_rate), renderer, refine=RefineConfig())
    match.preset, match.audio, match.distance, match.steps.level, match.fallback

Steps (every render counted in `Match.renders`; with refinement they fit in `RefineConfig.max_evals`):
1. refine (`refine.refine`: pitch alignment, template, CMA-ES, final check), or, without refinement,
   pitch alignment alone (`calibrate.align_pitch` and `calibrate.tune`): every path plays in tune;
2. never silent: a start with nothing audible (a prediction with every oscillator off) or a result that
   renders silent falls back to Vital's init preset, matched the same way, and says so (a WARNING and
   `Match.fallback`);
3. on a user render (the exported preset on a fresh Synth, random phase as saved): the pitch is checked
   and corrected once more, and the level is matched to the target's (`calibrate.match_level`);
4. the final user render, in stereo, is the match's audio, and its distance to the target
   (`audio.distances.match_distance`) is the match's score: the sound the user gets, over the whole note.

A search that Ctrl-C stopped (`refine.keep_best_on_interrupt`) goes through steps 2-4 all the same: the
match is its best so far, finished (a fallback then refines no more).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from synthmatch.audio.pitch import PitchEstimate, estimate_pitch
from synthmatch.inference.calibrate import (
    PEAK_LIMIT,
    LevelMatch,
    PitchAlignment,
    Tuning,
    align_pitch,
    fixed_phase,
    is_audible,
    match_level,
    restore_phase,
    soft_limit,
    tune,
    volume_db,
    with_volume_db,
)
from synthmatch.inference.refine import search_interrupted
from synthmatch.inference.scoring import Scorer, rms_db
from synthmatch.synth.presets import Preset

if TYPE_CHECKING:
    from synthmatch.inference.refine import RefineResult

log = logging.getLogger(__name__)

__all__ = [
    "MatchTarget",
    "Match",
    "MatchSteps",
    "Fallback",
    "match_preset",
    "finish_match",
    "POST_RENDERS",
]

# A render below this RMS is silent (Vital's silence sits near -240 dBFS; a quiet match is brought up by
# level matching, and only one still far below the target after it falls back, `calibrate.is_audible`).
SILENT_DB = -100.0
# Renders after refinement: one user render, one pitch check, up to three level checks, up to four
# soft-limit checks (`calibrate.soft_limit`), the final render
# (and one more when it clips).
POST_RENDERS = 11
# A target whose last 250 ms are within this of its RMS level is still sounding at its end.
SUSTAINED_TAIL_DB = 10.0


@dataclass
class MatchTarget:
    """A target ready to match: the whole note, its note and key-held time."""

    audio: np.ndarray  # (N,) mono float32, the whole target
    sample_rate: int
    midi_note: int
    note_duration_s: float
    pitch: PitchEstimate
    name: str = "target"

    @property
    def duration_s(self) -> float:
        return len(self.audio) / float(self.sample_rate)

    def scorer(self, renderer) -> Scorer:
        """A `scoring.Scorer` of this target: every candidate rendered at its note, key time and length."""
        return Scorer(
            self.audio, self.sample_rate, self.midi_note, self.note_duration_s, self.duration_s, renderer
        )

    @classmethod
    def of(
        cls,
        audio: np.ndarray,
        sample_rate: int,
        midi_note: int | None = None,
        note_duration_s: float | None = None,
        name: str = "target",
    ) -> MatchTarget:
        """A target with its pitch and key-held time estimated where not given."""
        from synthmatch.audio.pitch import estimate_timing

        a = np.ascontiguousarray(np.asarray(audio, np.float32).reshape(-1))
        pitch = estimate_pitch(a, sample_rate)
        midi = int(midi_note if midi_note is not None else pitch.midi_note)
        note_s = float(
            note_duration_s
            if note_duration_s is not None
            else estimate_timing(a, sample_rate).note_duration_s
        )
        return cls(a, int(sample_rate), midi, min(note_s, len(a) / sample_rate), pitch, name)


@dataclass
class MatchSteps:
    """What was done to one start: refinement, or pitch alignment alone; then the finishing steps."""

    refine: RefineResult | None = None
    pitch_alignment: PitchAlignment | None = None  # without refinement (refinement records its own)
    tuning: Tuning | None = None
    final_tuning: Tuning | None = None  # on the user render
    level: LevelMatch | None = None
    release: dict[str, float] | None = None  # {"from", "to"}: a one-shot's release made to ring on
    silent: bool | None = None  # None: not reached

    def as_dict(self, trim: bool = False) -> dict[str, Any]:
        """The record `--json` writes; `trim` leaves out the refinement's long lists."""
        out: dict[str, Any] = {}
        if self.refine is not None:
            r = self.refine.info
            out["refine"] = {k: v for k, v in r.items() if k not in _LONG} if trim else r
        for key in ("pitch_alignment", "tuning", "final_tuning", "level"):
            step = getattr(self, key)
            if step is not None:
                out[key] = step.as_dict()
        if self.release is not None:
            out["release"] = self.release
        if self.silent is not None:
            out["silent"] = self.silent
        return out


_LONG = ("params", "history", "history_evals")


@dataclass(frozen=True)
class Fallback:
    """The match comes from Vital's init preset because the start could not give one."""

    source: str  # the start that failed: "model", "preset"...
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"from": self.source, "to": "init", "reason": self.reason}


@dataclass
class Match:
    """The preset the user gets, its render and what happened."""

    preset: Preset
    audio: np.ndarray  # (2, N) the final user render
    distance: float  # match_distance of that render to the target
    renders: int
    steps: MatchSteps = field(default_factory=MatchSteps)
    fallback: Fallback | None = None
    first_attempt: MatchSteps | None = None  # with a fallback: what was tried from the start

    @property
    def refine(self) -> RefineResult | None:
        """The refinement that made this match, or before a fallback the first attempt's."""
        if self.steps.refine is not None or self.first_attempt is None:
            return self.steps.refine
        return self.first_attempt.refine

    def as_dict(self, trim: bool = False) -> dict[str, Any]:
        """The record `--json` writes."""
        out = self.steps.as_dict(trim)
        if self.fallback is not None:
            out["fallback"] = self.fallback.as_dict()
        if self.first_attempt is not None:
            out["first_attempt"] = self.first_attempt.as_dict(trim)
        out["renders"] = self.renders
        return out


def _start(
    start: Preset,
    tier: int,
    target: MatchTarget,
    scorer: Scorer,
    refine_cfg,
    progress: bool,
    callback: Callable[[dict], None] | None,
    probabilities: dict[str, np.ndarray] | None = None,
) -> tuple[Preset, MatchSteps, bool]:
    """Step 1: (preset, steps, whether the start had anything audible)."""
    steps = MatchSteps()
    if refine_cfg is not None:
        from synthmatch.inference.refine import refine

        budget = max(1, refine_cfg.max_evals - POST_RENDERS)
        result = refine(
            start,
            target.audio,
            target.sample_rate,
            midi_note=target.midi_note,
            note_duration_s=target.note_duration_s,
            duration_s=target.duration_s,
            tier=tier,
            config=replace(refine_cfg, max_evals=budget),
            progress=progress,
            callback=callback,
            scorer=scorer,
            target_pitch=target.pitch,
            probabilities=probabilities,
        )
        steps.refine = result
        return result.preset, steps, result.skipped or result.start_was_audible
    first = scorer.evaluate([fixed_phase(start)], keep_audio=True)[0]
    preset, scored, steps.pitch_alignment = align_pitch(scorer, fixed_phase(start), first, target.pitch)
    preset, scored, steps.tuning = tune(scorer, preset, scored, target.pitch)
    return restore_phase(preset, start), steps, first.ok


def _one_shot_release(preset: Preset, target: MatchTarget) -> tuple[Preset, dict[str, float] | None]:
    """A target held to its end shows no release, so the match's release was never heard while matching:
    it is set so that letting go of the key sooner changes what is heard as little as it can.

    - A sound that dies away on its own (amp sustain below half): the release at least as long as the
      decay, so the note rings on as the target does instead of being cut.
    - A sound that holds its level, in a target still sounding at its end (its last 250 ms within
      SUSTAINED_TAIL_DB of its RMS): the longest release, so it keeps sounding as the target does (the
      target gives no sign that it ever stops).

    Changes nothing within the target's length at the key-held time it was matched at."""
    from synthmatch.synth.params import param_space

    if target.note_duration_s < target.duration_s - 1e-3:
        return preset, None
    v = preset.values
    spec = param_space()["env_1_release"]
    decay, release = v.get("env_1_decay", 1.0), v.get("env_1_release", 0.0)
    if v.get("env_1_sustain", 1.0) < 0.5:
        want = decay
    else:
        tail = target.audio[-max(1, int(0.25 * target.sample_rate)) :]
        if rms_db(tail) < rms_db(target.audio) - SUSTAINED_TAIL_DB:
            return preset, None  # the target fades by its end: the match's own release may be right
        want = spec.max
    if release >= want:
        return preset, None
    new = spec.clamp(want)
    return preset.with_values(env_1_release=new), {"from": round(release, 4), "to": round(new, 4)}


def match_preset(
    start: Preset,
    tier: int,
    target: MatchTarget,
    renderer,
    *,
    refine=None,
    progress: bool = False,
    callback: Callable[[dict], None] | None = None,
    start_source: str = "model",
    probabilities: dict[str, np.ndarray] | None = None,
) -> Match:
    """Match `target` from `start`; the result is in tune, at the target's level and never silent.

    Args:
        start: the starting preset (a prediction, Vital's init preset, a user's .vital).
        tier: the parameter space refinement searches.
        target: the whole target with its note (`MatchTarget.of`).
        renderer: a `synth.render.Renderer` at the target's sample rate.
        refine: a `refine.RefineConfig` to refine with CMA-ES; None: pitch alignment only.
        progress: show the refinement's progress bar.
        callback: the refinement's progress callback.
        start_source: "model", "init", "preset"... (a start that is already init does not fall back).
        probabilities: the model's probability of every option of its categorical controls (the prior of
            a mixed search, `RefineConfig.discrete`).
    """
    scorer = target.scorer(renderer)
    preset, steps, audible_start = _start(
        start, tier, target, scorer, refine, progress, callback, probabilities
    )

    def fall_back(reason: str) -> Match:
        log.warning("%s: %s; matching from Vital's init preset instead", target.name, reason)
        left = refine.max_evals - scorer.n_evals if refine is not None else 0
        fallback = match_preset(
            Preset.init(),
            tier,
            target,
            renderer,
            # the budget covers both attempts: the fallback refines with what is left, if that is enough
            # (and not after Ctrl-C stopped the first search: it keeps what init gives)
            refine=replace(refine, max_evals=left)
            if refine is not None and left >= POST_RENDERS + 6 and not search_interrupted()
            else None,
            progress=progress,
            callback=callback,
            start_source="init",
        )
        fallback.renders += scorer.n_evals
        fallback.fallback = Fallback(start_source, reason)
        fallback.first_attempt = steps
        return fallback

    can_fall_back = start_source != "init"
    if not audible_start and can_fall_back:
        return fall_back("nothing in the start can be heard (no oscillator or sample on)")
    match, reason = finish_match(preset, steps, target, scorer, renderer, stop_if_silent=can_fall_back)
    if reason is not None and can_fall_back:
        return fall_back(reason)
    if match.steps.silent:
        log.warning(
            "%s: the match is still near-silent after falling back to Vital's init preset", target.name
        )
    return match


def finish_match(
    preset: Preset,
    steps: MatchSteps,
    target: MatchTarget,
    scorer: Scorer,
    renderer,
    *,
    level_renders: int = 3,
    limiter: bool = True,
    stop_if_silent: bool = True,
) -> tuple[Match, str | None]:
    """Steps 3 and 4 of a match: the user render, its pitch checked, its level matched, the final render.

    Returns (the match, None) or, when it renders silent or near-silent, (the match as it is, the reason);
    with `stop_if_silent` a silent user render ends it there (distance inf).
    `level_renders` and `limiter` bound what the level steps may spend (`calibrate.match_level`,
    `calibrate.soft_limit`): at most 2 + level_renders + 4 + 2 renders, counted in `scorer.n_evals`.
    """
    from synthmatch.audio.distances import match_distance

    user = scorer.evaluate([preset], fresh=True, keep_audio=True)[0]
    if (user.audio is None or rms_db(user.audio) < SILENT_DB) and stop_if_silent:
        empty = np.zeros((2, len(target.audio)), np.float32)
        return Match(preset, empty, float("inf"), scorer.n_evals, steps), "the match renders silent"
    peaks = [user.peak] if user.peak is not None else []
    preset, user, steps.final_tuning = tune(scorer, preset, user, target.pitch, fresh=True, max_renders=1)
    if steps.final_tuning.renders:
        peaks = []  # the tune moved: only renders at the final tune count
    preset, user, level = match_level(scorer, preset, user, max_renders=level_renders, peaks=peaks)
    if limiter:
        preset, user = soft_limit(scorer, preset, user, level)
    steps.level = level
    preset, steps.release = _one_shot_release(preset, target)

    def final_render(p: Preset) -> np.ndarray:
        return renderer.render(
            p, target.midi_note, target.note_duration_s, target.duration_s, stereo=True, fresh=True
        )

    audio = final_render(preset)
    renders = scorer.n_evals + 1
    peak = float(np.max(np.abs(audio)))
    if peak > 1.0:  # this render's phases lined up: take the volume down so it does not clip
        preset = with_volume_db(preset, volume_db(preset) + 20 * np.log10(PEAK_LIMIT / peak))
        audio = final_render(preset)
        renders += 1
        level.lowered_for_peak_db = round(float(20 * np.log10(PEAK_LIMIT / peak)), 2)
    scorer.n_evals = renders  # the final renders count too
    mono = audio.mean(axis=0)
    level.final_db = round(rms_db(mono), 2)
    silent = steps.silent = not is_audible(mono, scorer.target_rms_db)
    distance = float(match_distance(target.audio, mono, target.sample_rate))
    match = Match(preset, audio, distance, renders, steps)
    if silent:
        # every gain stage could not bring it near the target: a near-silent preset is no match
        return match, f"the match plays {scorer.target_rms_db - rms_db(mono):.0f} dB below the target"
    return match, None
