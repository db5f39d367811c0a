"""CMA-ES refinement: move a preset's audible controls until its render matches the target.

    result = refine(start_preset, target_audio, sample_rate, midi_note=57, note_duration_s=1.5,
                    duration_s=4.0, tier=2, config=RefineConfig(max_evals=300, timeout_s=60))
    result.preset, result.initial_loss, result.final_loss, result.stop_reason

The target is the whole note (up to `infer --max-seconds`, release included), and so is every candidate
render: refinement fits the sound the user gets, not an excerpt of it.

Steps, every render counted against `max_evals`:
1. the start is scored, then moved to the target's pitch (`calibrate.align_pitch` and `calibrate.tune`:
   transposes and Voice Tune, which refinement itself never moves);
2. the modulation template (`synth.template`: a filter envelope, a pitch envelope, vibrato...,
   connections the start lacks) is probed on the target: each connection rendered alone at two amounts,
   and those that lower the loss join the search at their better amount, so the search can reach the
   moves one-shots are made of without spending dimensions on moves the target does not have;
3. CMA-ES searches (`search_space`) the tier's continuous controls that can be heard given the start's
   switches and categoricals, in normalized [0, 1] units, plus the template's amounts (each within its
   +-max_amount) and the envelope and LFO controls those make audible, plus at tier 3 the amounts of the
   start's own connections. Categoricals, switches, integer controls (transposes, effect order), the
   routing and every tune control stay as they are. Left out, with the reason recorded: everything when no
   oscillator or sample is on, modules switched off or fed by nothing, envelopes 2-6 / LFOs / random
   LFOs / macros that modulate nothing, unison settings of 1-voice oscillators, distortion and
   spectral-morph amounts whose type is None, the frame of a one-frame wavetable, formant controls of
   non-formant filters, effect rates in tempo-sync mode, overall gain (the objective compares at equal
   loudness), panning and stereo width (it compares mono mixes);
4. template connections whose amount ended negligible are removed (`synth.template.prune_template`);
5. the final check renders the aligned start and the best candidate as the user gets them (random phase
   restored, each on a fresh Synth, `verify_renders` each) and keeps the start unless the best is better
   there too: the result is never worse than the aligned start in the sound the user gets.

Ctrl-C: within `keep_best_on_interrupt()` (what `infer` runs under), a KeyboardInterrupt during the
CMA-ES search stops it there (`StopReason.INTERRUPTED`) and the refinement finishes with its best so far
(steps 4 and 5), so the caller can write that match; a second Ctrl-C raises as usual. Outside it, Ctrl-C
raises wherever it lands.

The objective (`scoring.Scorer`) is the multi-scale log-mel L1 at equal loudness that evaluation reports
as `mel_l1`. While searching every candidate has its random phases at 0 and renders on the renderer's
long-lived, flushed Synths (`synth.render`): repeatable to the noise measured in benchmarks/refine.py.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import numpy as np

from synthmatch.errors import ConfigError
from synthmatch.inference.calibrate import (
    align_pitch,
    fixed_phase,
    restore_phase,
    tune,
)
from synthmatch.inference.scoring import FAILED_LOSS, SILENT_RMS, Scorer, shown_loss
from synthmatch.inference.search_space import SearchSpace, search_space
from synthmatch.synth import VitaUnavailable, require_vita
from synthmatch.synth.audibility import Audibility
from synthmatch.synth.presets import Preset
from synthmatch.synth.template import (
    DEFAULT_TEMPLATE,
    TemplateConnection,
    TemplateSlot,
    add_template,
    prune_template,
    template_connections,
)

log = logging.getLogger(__name__)

__all__ = [
    "RefineConfig",
    "RefineResult",
    "InterruptGuard",
    "keep_best_on_interrupt",
    "stop_on_interrupt",
    "search_interrupted",
    "SearchSpace",
    "StopReason",
    "search_space",
    "refine",
    "searcher",
    "DISCRETE_SEARCHES",
    "FAILED_LOSS",
    "SILENT_RMS",
]

# A template connection whose removal raises the search loss by less than this is not exported (the
# search's repeat-render noise is far below it, benchmarks/refine.py; a random-phase floor is ~0.1).
PRUNE_TOLERANCE = 0.01
# Smallest budget that adds the modulation template.
MIN_TEMPLATE_EVALS = 50
# The template probe: each connection tried at +- this share of its range; kept when it lowers the loss by
# more than PROBE_MIN_GAIN.
PROBE_SHARE = 0.4
PROBE_MIN_GAIN = 0.005


DISCRETE_SEARCHES = ("none", "catcma")


@dataclass(frozen=True)
class RefineConfig:
    """Settings of a refinement (`synthmatch infer --refine ...`).

    Attributes:
        max_evals: evaluations (renders scored against the target), the start, pitch alignment and the
            final check included.
        timeout_s: wall-clock limit; the search stops before a generation that would overrun it.
        sigma: CMA-ES initial step size in normalized [0, 1] units.
        popsize: candidates per generation (default CMA-ES's 4 + 3 ln n, rounded up to a multiple of the
            render threads).
        seed: CMA-ES random seed (same seed, same start, same target: same search).
        fixed_phase: hold random oscillator phase at 0 while searching (repeatable renders).
        verify_renders: renders each of start and best (user renders) in the final check.
        align_pitch: move the start to the target's pitch first (transposes, then Voice Tune; up to 5
            evaluations): transposes and tune are never searched.
        template: keys of the modulation template added before the search (None: the default template,
            `synth.template.DEFAULT_TEMPLATE`; () adds none).
        template_step: the template amounts' initial step, as a share of `sigma`.
        discrete: "none" (CMA-ES over the continuous controls; categoricals stay as the start has them)
            or "catcma" (CatCMA with Margin, the `cmaes` package, over those and the `discrete_controls`
            least confident audible categorical controls, the model's probabilities as their prior).
        discrete_controls: how many categorical controls "catcma" searches.
    """

    max_evals: int = 500
    timeout_s: float = 60.0
    sigma: float = 0.1
    popsize: int | None = None
    seed: int = 0
    fixed_phase: bool = True
    verify_renders: int = 2
    align_pitch: bool = True
    template: tuple[str, ...] | None = None
    template_step: float = 0.3
    discrete: str = "none"
    discrete_controls: int = 6

    def __post_init__(self) -> None:
        if self.discrete not in DISCRETE_SEARCHES:
            raise ConfigError(
                f"discrete search must be one of {', '.join(DISCRETE_SEARCHES)}, got {self.discrete!r}"
            )
        if self.discrete_controls < 0:
            raise ConfigError(f"discrete_controls must be >= 0, got {self.discrete_controls}")
        if self.max_evals < 1:
            raise ConfigError(f"--refine-evals must be >= 1, got {self.max_evals}")
        if not self.timeout_s > 0:
            raise ConfigError(f"--refine-timeout must be > 0 seconds, got {self.timeout_s}")
        if not 0 < self.sigma <= 0.5:
            raise ConfigError(f"--refine-sigma must be in (0, 0.5] (normalized units), got {self.sigma}")
        if self.popsize is not None and self.popsize < 2:
            raise ConfigError(f"popsize must be >= 2, got {self.popsize}")
        if self.verify_renders < 0:
            raise ConfigError(f"verify_renders must be >= 0, got {self.verify_renders}")
        if not 0 < self.template_step <= 1:
            raise ConfigError(f"template_step must be in (0, 1], got {self.template_step}")
        try:
            self.connections()
        except ValueError as exc:
            raise ConfigError(f"template: {exc}") from None

    def connections(self) -> tuple[TemplateConnection, ...]:
        return template_connections(DEFAULT_TEMPLATE if self.template is None else self.template)


class StopReason(str, Enum):
    """Why a refinement stopped (a str: it is written as its value in `info` and in --json)."""

    BUDGET = "budget"
    TIMEOUT = "timeout"
    CONVERGED = "converged"
    NOTHING_TO_SEARCH = "nothing to search"  # no audible control in the start
    SILENT_START = "start is silent"
    INTERRUPTED = "interrupted"  # Ctrl-C, under `keep_best_on_interrupt`: the best so far was kept


# ---------------------------------------------------------------------------------------------------
# Ctrl-C: stop the search, keep its best so far
@dataclass
class InterruptGuard:
    """Whether Ctrl-C stopped a search under `keep_best_on_interrupt`."""

    interrupted: bool = False


_GUARD: ContextVar[InterruptGuard | None] = ContextVar("synthmatch_interrupt_guard", default=None)


@contextmanager
def keep_best_on_interrupt() -> Iterator[InterruptGuard]:
    """Within it, the first Ctrl-C (KeyboardInterrupt) during a refinement's search stops that search
    instead of raising: it finishes with its best so far (`StopReason.INTERRUPTED`), later searches do not
    start (their refinements keep what their start gives), and `guard.interrupted` tells the caller to
    write what it got and stop. A second Ctrl-C raises wherever it lands."""
    guard = InterruptGuard()
    token = _GUARD.set(guard)
    try:
        yield guard
    finally:
        _GUARD.reset(token)


def search_interrupted() -> bool:
    """True once Ctrl-C has stopped a search under the current `keep_best_on_interrupt`."""
    guard = _GUARD.get()
    return guard is not None and guard.interrupted


@contextmanager
def stop_on_interrupt() -> Iterator[None]:
    """Around a search loop: the first Ctrl-C under `keep_best_on_interrupt` ends the block (and marks the
    guard) instead of raising; without the guard, or at a second Ctrl-C, it raises."""
    guard = _GUARD.get()
    try:
        yield
    except KeyboardInterrupt:
        if guard is None or guard.interrupted:
            raise
        guard.interrupted = True
        log.debug("Ctrl-C: the search stops and keeps its best so far")


@dataclass
class RefineResult:
    """The refined preset (never worse than the aligned start) and what happened.

    Losses are the search objective (`scoring.Scorer`): `initial_loss` of the start as given,
    `aligned_loss` after pitch alignment, `final_loss` of the result. `details` holds the diagnostics
    that only go to `--json` (the controls searched, the template probe, the final check...); `info` is
    the whole record as written there.
    """

    preset: Preset
    stop_reason: StopReason | None = None  # None: not run (`skipped`)
    initial_loss: float = FAILED_LOSS
    aligned_loss: float = FAILED_LOSS
    final_loss: float = FAILED_LOSS
    n_evals: int = 0
    elapsed_s: float = 0.0
    improved: bool = False
    generations: int = 0
    n_params: int = 0
    popsize: int | None = None
    template: dict[str, float] = field(default_factory=dict)  # template connection key -> amount kept
    history: list[float] = field(default_factory=list)  # best-so-far loss after each generation
    history_evals: list[int] = field(default_factory=list)  # evaluations spent at each history point
    skipped_reason: str | None = None  # why refinement did not run (vita missing)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def skipped(self) -> bool:
        return self.skipped_reason is not None

    @property
    def evals_per_s(self) -> float | None:
        return round(self.n_evals / self.elapsed_s, 3) if self.elapsed_s > 0 else None

    @property
    def interrupted(self) -> bool:
        """Ctrl-C stopped the search (`keep_best_on_interrupt`): the result is its best so far."""
        return self.stop_reason is StopReason.INTERRUPTED

    @property
    def start_was_audible(self) -> bool:
        """False when the start had nothing to refine: silent, or no control that can be heard."""
        return self.stop_reason not in (StopReason.NOTHING_TO_SEARCH, StopReason.SILENT_START)

    @property
    def info(self) -> dict[str, Any]:
        """The record `--json` writes (`{"skipped": True, "reason": ...}` when refinement did not run)."""
        if self.skipped:
            return {"skipped": True, "reason": self.skipped_reason}
        out = dict(self.details)
        if self.popsize is not None:
            out["popsize"] = self.popsize
        if self.template:
            out["template"] = dict(self.template)
        out.update(
            n_params=self.n_params,
            # the loss of a render that failed is the search's sentinel, not a number to show: null
            initial_loss=shown_loss(self.initial_loss),
            aligned_loss=shown_loss(self.aligned_loss),
            final_loss=shown_loss(self.final_loss),
            n_evals=self.n_evals,
            elapsed_s=round(self.elapsed_s, 3),
            evals_per_s=self.evals_per_s,
            improved=self.improved,
            generations=self.generations,
            stop_reason=self.stop_reason.value if self.stop_reason is not None else None,
            history=[round(h, 5) for h in self.history],
            history_evals=list(self.history_evals),
        )
        return out


def _without(preset: Preset, slots) -> Preset:
    """`preset` with the amounts of these template slots at 0."""
    mods = list(preset.modulations)
    for s in slots:
        mods[s.index] = replace(mods[s.index], amount=0.0)
    return replace(preset, modulations=tuple(mods))


def _template_usable(preset: Preset, tier: int) -> Callable[[TemplateConnection], bool]:
    """A template connection is added only when its destination can be heard in the start."""
    aud = Audibility(preset)

    def usable(conn: TemplateConnection) -> bool:
        return aud.audible(conn.destination)

    return usable


# ---------------------------------------------------------------------------------------------------
# the search
def refine(
    start: Preset,
    target: np.ndarray,
    sample_rate: int,
    *,
    midi_note: int,
    note_duration_s: float,
    duration_s: float | None = None,
    tier: int = 2,
    config: RefineConfig = RefineConfig(),
    renderer=None,
    n_threads: int | None = None,
    progress: bool = False,
    callback: Callable[[dict], None] | None = None,
    scorer: Scorer | None = None,
    target_pitch=None,
    probabilities: dict[str, np.ndarray] | None = None,
) -> RefineResult:
    """Refine `start` towards `target` with CMA-ES; never returns a worse preset than the aligned start.

    Args:
        start: the starting preset (a prediction, Vital's init preset, a user's .vital).
        target: (N,) mono target audio at `sample_rate`: the whole note.
        midi_note: note every candidate is rendered at (the target's pitch).
        note_duration_s: seconds the key is held.
        duration_s: seconds rendered (default: the target's length).
        tier: parameter space searched (the model's tier, or `--tier` without a model).
        config: budget, timeout, step size, template.
        renderer: a `synth.render.Renderer` at `sample_rate` to reuse (default: one is made and closed).
        n_threads: render threads when no renderer is given (default: every core).
        progress: show a progress bar.
        callback: called after the start's evaluation and after each generation with
            `{"n_evals", "budget", "initial_loss", "best_loss", "elapsed_s"}` (e.g. a web page's progress bar).
        scorer: a `scoring.Scorer` of this target to share (its evaluation count includes earlier steps).
        target_pitch: the target's `audio.pitch.estimate_pitch`, when already known.
        probabilities: categorical control -> the model's probability of each option (the prior of
            `discrete="catcma"`).
    Returns:
        the `RefineResult` (`skipped` when vita cannot be imported).
    """
    try:
        require_vita()
    except VitaUnavailable as exc:
        log.warning("refinement skipped: %s", exc)
        return RefineResult(start, skipped_reason=str(exc))
    from synthmatch.audio.pitch import estimate_pitch
    from synthmatch.synth.render import Renderer

    t0 = time.perf_counter()
    target = np.asarray(target, np.float32).reshape(-1)
    if target.size == 0 or not np.all(np.isfinite(target)):
        raise ValueError("refine needs a finite, non-empty target")
    duration_s = float(duration_s if duration_s is not None else len(target) / sample_rate)
    own_renderer = renderer is None and scorer is None
    if scorer is None:
        if renderer is None:
            renderer = Renderer(sample_rate=sample_rate, n_threads=n_threads)
        scorer = Scorer(target, sample_rate, midi_note, note_duration_s, duration_s, renderer)
    if target_pitch is None:
        target_pitch = estimate_pitch(target, sample_rate)
    try:
        return _Search(start, scorer, tier, config, progress, t0, target_pitch, probabilities).run(callback)
    finally:
        if own_renderer:
            scorer.renderer.close()


def searcher(
    start: Preset,
    scorer: Scorer,
    tier: int,
    config: RefineConfig,
    target_pitch,
    probabilities: dict[str, np.ndarray] | None = None,
) -> _Search:
    """A refinement to run in parts (`prepare`, `step` again and again, `finish`), as `inference.candidates`
    does to share one budget between several starts. `scorer` counts only this refinement's renders (a
    `Scorer.fork()` of the target's)."""
    return _Search(start, scorer, tier, config, False, time.perf_counter(), target_pitch, probabilities)


class _Search:
    def __init__(
        self, start, scorer: Scorer, tier, cfg: RefineConfig, progress, t0, target_pitch, probabilities=None
    ):
        self.start = start
        self.probabilities = probabilities
        self.generations = 0
        self.popsize: int | None = None
        self.scorer = scorer
        self.cfg = cfg
        self.tier = tier
        self.progress = progress
        self.t0 = t0
        self.target_pitch = target_pitch
        self.evals0 = scorer.n_evals  # what earlier steps of the match spent
        self.history: list[float] = []
        self.history_evals: list[int] = []

    @property
    def n_evals(self) -> int:
        return self.scorer.n_evals - self.evals0

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def _report(self, callback, budget: int, initial_loss: float, best_loss: float) -> None:
        if callback is not None:
            callback(
                {
                    "n_evals": self.n_evals,
                    "budget": budget,
                    "initial_loss": float(initial_loss),
                    "best_loss": float(best_loss),
                    "elapsed_s": round(self.elapsed(), 3),
                }
            )

    def _mark(self, loss: float) -> None:
        self.history.append(float(loss))
        self.history_evals.append(self.n_evals)

    def _prune(
        self, best: Preset, best_loss: float, slots: tuple[TemplateSlot, ...], original: Preset
    ) -> tuple[Preset, float, dict[str, float]]:
        """Export only the template connections whose amount matters.

        Negligible amounts go first (`prune_template`); then each remaining template connection is
        rendered switched off (amount 0), and those whose removal costs less than PRUNE_TOLERANCE go
        together, checked on one more render. Returns (preset, its loss, template key -> amount kept).
        """
        live = [s for s in slots if abs(best.modulations[s.index].amount) >= s.connection.negligible_amount]
        if live:
            without = [_without(best, [s]) for s in live]
            losses = self.scorer.losses(without)
            drop = [s for s, v in zip(live, losses) if v <= best_loss + PRUNE_TOLERANCE]
            if len(drop) > 1:
                combined = _without(best, drop)
                loss = self.scorer.losses([combined])[0]
                if loss > best_loss + PRUNE_TOLERANCE:  # together they matter: drop only the cheapest
                    k = int(np.argmin(losses))
                    drop, loss = [live[k]], losses[k]
            elif drop:
                loss = losses[live.index(drop[0])]
            if drop:
                best = _without(best, drop)
                best_loss = min(best_loss, loss) if loss <= best_loss else loss
        pruned, kept = prune_template(best, slots, original=original)
        return pruned, best_loss, kept

    def _probe(
        self, base: Preset, connections, base_loss: float
    ) -> tuple[Preset, tuple[TemplateSlot, ...], float, dict]:
        """Which template connections this target wants, measured on it before the search.

        Every usable connection is rendered alone at +-PROBE_SHARE of its range (its source at the
        template's settings: a decaying envelope, a 5 Hz LFO); those that beat the start by more than
        PROBE_MIN_GAIN are kept at their better amount, together if together they beat the best one
        alone (one more render), else only the best one. CMA-ES then searches the kept ones from there
        and leaves out the others: a connection searched from 0 costs the search dimensions whether or not
        the target has that move (measured: docs/BENCHMARKS.md, "Modulation template").

        Returns:
            (the start with the kept connections, their slots, its loss, a summary).
        """
        usable = _template_usable(base, self.tier)
        candidates = [c for c in connections if usable(c)]
        info: dict = {"tried": [c.key for c in candidates], "kept": {}}
        if not candidates or base_loss >= FAILED_LOSS:
            return base, (), base_loss, info
        probes, trials = [], []
        for conn in candidates:
            one, slots = add_template(base, (conn,))
            if not slots:
                continue
            for sign in (1.0, -1.0):
                mods = list(one.modulations)
                i = slots[0].index
                mods[i] = replace(mods[i], amount=sign * PROBE_SHARE * conn.max_amount)
                probes.append(one.with_modulations(mods))
                trials.append((conn, sign * PROBE_SHARE * conn.max_amount))
        losses = self.scorer.losses(probes)
        best: dict[str, tuple[float, float]] = {}
        for (conn, amount), loss in zip(trials, losses):
            if loss < base_loss - PROBE_MIN_GAIN and loss < best.get(conn.key, (FAILED_LOSS, 0.0))[0]:
                best[conn.key] = (loss, amount)
        info["losses"] = {f"{c.key}{a:+.3f}": round(v, 4) for (c, a), v in zip(trials, losses)}
        if not best:
            return base, (), base_loss, info

        def with_amounts(keys) -> tuple[Preset, tuple[TemplateSlot, ...]]:
            preset, slots = add_template(base, [c for c in candidates if c.key in keys])
            mods = list(preset.modulations)
            for s in slots:
                mods[s.index] = replace(mods[s.index], amount=best[s.connection.key][1])
            return preset.with_modulations(mods), slots

        top = min(best, key=lambda k: best[k][0])
        chosen, loss = [top], best[top][0]
        if len(best) > 1:
            together, _ = with_amounts(best)
            both = self.scorer.losses([together])[0]
            if both < loss:
                chosen, loss = list(best), both
        preset, slots = with_amounts(chosen)
        info["kept"] = {k: round(best[k][1], 4) for k in chosen}
        return preset, slots, loss, info

    # -----------------------------------------------------------------------------------------------
    # a refinement in three parts, so that several starts can share one budget (`inference.candidates`):
    # prepare (score, align, probe the template, set up the search), step (spend some evaluations
    # searching; again and again), finish (prune the template, check on the user's renders)
    def run(self, callback: Callable[[dict], None] | None = None) -> RefineResult:
        self.prepare(callback)
        self.step(self.budget, callback)
        return self.finish()

    def prepare(self, callback: Callable[[dict], None] | None = None) -> _Search:
        self.screen()
        return self.setup(callback)

    def screen(self) -> float:
        """The start scored and moved to the target's pitch; returns its loss there (the aligned loss)."""
        cfg, scorer = self.cfg, self.scorer
        # the template needs a real search to pay off (its amounts start at 0): not below MIN_TEMPLATE_EVALS
        self.connections = connections = cfg.connections() if cfg.max_evals >= MIN_TEMPLATE_EVALS else ()
        # the final check, and the pruning of the template's connections (one render each, one more)
        reserve = 2 * cfg.verify_renders + (len(connections) + 1 if connections else 0)
        # (the probe's renders, two per connection and one more, come out of the search's share)
        self.budget = budget = max(1, cfg.max_evals - reserve)
        base = fixed_phase(self.start) if cfg.fixed_phase else self.start
        first = scorer.evaluate([base], keep_audio=True)[0]
        self.initial_loss = first.loss
        info: dict[str, Any] = {"tier": self.tier, "sigma": cfg.sigma, "fixed_phase": cfg.fixed_phase}
        info.update(
            midi_note=scorer.midi_note,
            note_duration_s=round(scorer.note_duration_s, 4),
            duration_s=round(scorer.duration_s, 4),
        )
        scored = first
        if cfg.align_pitch and budget - self.n_evals >= 5:
            base, scored, alignment = align_pitch(scorer, base, scored, self.target_pitch)
            base, scored, tuning = tune(scorer, base, scored, self.target_pitch, max_renders=2)
            info.update(pitch_alignment=alignment.as_dict(), tuning=tuning.as_dict())
        self.base = base
        aligned = restore_phase(base, self.start) if cfg.fixed_phase else base
        if aligned.content_hash() == self.start.content_hash():
            aligned = self.start  # alignment changed nothing: hand back the start itself
        self.aligned, self.aligned_loss = aligned, scored.loss
        self.scored, self.info = scored, info
        return self.aligned_loss

    def setup(self, callback: Callable[[dict], None] | None = None) -> _Search:
        """The template probed and the search set up (after `screen`)."""
        cfg, scorer, scored, info, base, budget = (
            self.cfg,
            self.scorer,
            self.scored,
            self.info,
            self.base,
            self.budget,
        )
        # the template: each usable connection is probed at two amounts, and only those that lower the
        # loss join the search, starting at their better amount (see `_probe`)
        self.templated, self.slots, start_loss, info["template_probe"] = self._probe(
            base, self.connections, self.aligned_loss if scored.ok else FAILED_LOSS
        )
        # audibility as exported: a phase control is inert when the user's preset randomises the phase
        self.space = space = search_space(
            restore_phase(self.templated, self.start), self.tier, template=self.slots
        )
        self.discrete = discrete_controls(self.templated, self.tier, self.probabilities, cfg)
        info.update(
            params=space.names,
            n_skipped_params=len(space.skipped),
            template_added=[s.connection.key for s in self.slots],
            discrete=cfg.discrete,
        )
        if self.discrete:
            info["discrete_params"] = [d.name for d in self.discrete]
        self._report(callback, budget, self.initial_loss, self.aligned_loss)
        self.best = _Point(space.encode(self.templated), None)
        self.best_loss = min(self.aligned_loss, start_loss)
        # the best-so-far curve starts at the in-tune start (alignment may trade loss for tune)
        self._mark(self.best_loss)
        self.stop_reason: StopReason | None = None
        self.optimizer = None
        if space.size == 0 and not self.discrete:
            self.stop_reason = StopReason.NOTHING_TO_SEARCH
        elif not scored.ok:
            self.stop_reason = StopReason.SILENT_START
        else:
            n_threads = scorer.renderer.n_threads
            size = space.size + len(self.discrete)
            popsize = cfg.popsize or (4 + int(3 * math.log(max(size, 2))))
            self.popsize = int(math.ceil(popsize / n_threads) * n_threads)
            self.optimizer = _optimizer(self.best.x, space, self.discrete, cfg, self.popsize, budget)
            log.debug(
                "refinement searches %d controls, %d candidates a generation, up to %d renders",
                size,
                self.popsize,
                budget,
            )
        self.bar = None
        if self.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=budget, desc="refining", unit="eval", leave=False)
            self.bar.update(self.n_evals)
        return self

    def decode(self, point: _Point) -> Preset:
        """The candidate preset of a point of the search (its discrete choices set, if any)."""
        preset = self.space.decode(point.x, self.templated)
        if point.cats is None:
            return preset
        # replace() skips with_values' name checks: every name here is a control of the parameter space
        values = dict(preset.values)
        for d, k in zip(self.discrete, point.cats):
            values[d.name] = d.raw(k)
        return replace(preset, values=values)

    @property
    def searching(self) -> bool:
        """Still has budget and time, and has not converged."""
        return self.optimizer is not None and self.stop_reason is None

    def step(self, evals: int, callback: Callable[[dict], None] | None = None) -> int:
        """Search for about `evals` more evaluations (whole generations; the last one may be cut to the
        budget). Returns the evaluations spent."""
        spent0 = self.n_evals
        gen_s = 0.0
        optimizer = self.optimizer
        if optimizer is not None and self.stop_reason is None and search_interrupted():
            self.stop_reason = StopReason.INTERRUPTED  # Ctrl-C stopped an earlier search: none starts now
        with stop_on_interrupt():  # Ctrl-C (under keep_best_on_interrupt) ends the loop, the best kept
            while optimizer is not None and self.stop_reason is None and self.n_evals - spent0 < evals:
                left = self.budget - self.n_evals
                if left <= 0:
                    break  # this share is spent (`finish` records the budget as the reason)
                if self.elapsed() + gen_s > self.cfg.timeout_s:
                    self.stop_reason = StopReason.TIMEOUT
                    break
                if optimizer.stop():
                    self.stop_reason = StopReason.CONVERGED
                    break
                g0 = time.perf_counter()
                points = optimizer.ask()
                batch = points[:left]
                losses = self.scorer.losses([self.decode(p) for p in batch])
                if len(batch) == len(points):
                    optimizer.tell(points, losses)
                self._note_options(batch, losses)
                i = int(np.argmin(losses))
                if losses[i] < self.best_loss:
                    self.best_loss, self.best = losses[i], batch[i]
                self._mark(self.best_loss)
                self.generations += 1
                gen_s = time.perf_counter() - g0
                log.debug("refinement generation %d: best loss %.4f", self.generations, self.best_loss)
                if self.bar is not None:
                    self.bar.update(len(batch))
                    self.bar.set_postfix(loss=f"{self.best_loss:.4f}")
                self._report(callback, self.budget, self.initial_loss, self.best_loss)
        if search_interrupted() and optimizer is not None and self.stop_reason is None:
            self.stop_reason = StopReason.INTERRUPTED
        return self.n_evals - spent0

    def _note_options(self, points: list[_Point], losses: list[float]) -> None:
        """The lowest search loss seen with each option of each discrete control (info "discrete_tried",
        raw option value -> loss): what the mixed search found out about its choices."""
        if not self.discrete:
            return
        tried = self.info.setdefault("discrete_tried", {d.name: {} for d in self.discrete})
        for point, loss in zip(points, losses):
            for d, k in zip(self.discrete, point.cats or ()):
                seen = tried[d.name]
                key = d.raw(k)
                seen[key] = min(float(loss), seen.get(key, math.inf))

    def finish(self) -> RefineResult:
        """The template pruned, the best checked against the aligned start on the user's renders."""
        cfg, scorer, info = self.cfg, self.scorer, self.info
        if self.bar is not None:
            self.bar.close()
        aligned, aligned_loss = self.aligned, self.aligned_loss
        improved = self.best_loss < aligned_loss
        result, final_loss = aligned, aligned_loss
        kept: dict[str, float] = {}
        if improved:
            best = self.decode(self.best)
            best, best_loss, kept = self._prune(best, self.best_loss, self.slots, self.base)
            candidate = restore_phase(best, self.start) if cfg.fixed_phase else best
            result, final_loss = candidate, best_loss
            if self.best.cats is not None:
                info["discrete_changed"] = {
                    d.name: [d.raw(d.current), d.raw(k)]
                    for d, k in zip(self.discrete, self.best.cats)
                    if k != d.current
                }
            if cfg.verify_renders > 0:
                # the sound the user gets: the exported preset, random phase as saved, fresh Synths
                k = cfg.verify_renders
                losses = scorer.losses([aligned] * k + [candidate] * k, fresh=True)
                start_l, best_l = float(np.mean(losses[:k])), float(np.mean(losses[k:]))
                info["verify"] = {"start_loss_mean": start_l, "final_loss_mean": best_l, "renders_each": k}
                if best_l >= start_l:
                    log.info("refinement gain did not hold in the user's renders; keeping the aligned start")
                    result, improved, final_loss, kept = aligned, False, aligned_loss, {}
                    info.pop("discrete_changed", None)
        return RefineResult(
            result,
            stop_reason=self.stop_reason or StopReason.BUDGET,
            initial_loss=float(self.initial_loss),
            aligned_loss=float(aligned_loss),
            final_loss=float(final_loss),
            n_evals=self.n_evals,
            elapsed_s=self.elapsed(),
            improved=bool(improved),
            generations=self.generations,
            n_params=self.space.size + len(self.discrete),
            popsize=self.popsize,
            template=kept,
            history=list(self.history),
            history_evals=list(self.history_evals),
            details=info,
        )


# ---------------------------------------------------------------------------------------------------
# the optimizers: CMA-ES over the continuous coordinates, or CatCMA with Margin over those and some
# categorical controls
@dataclass(frozen=True)
class _Point:
    """One candidate of the search: continuous coordinates in [0, 1], and option indices of the
    discrete controls searched (None: the start's)."""

    x: np.ndarray
    cats: tuple[int, ...] | None = None


@dataclass(frozen=True)
class DiscreteControl:
    """A categorical control the mixed search may change: its options' prior probabilities."""

    name: str
    prior: np.ndarray  # (n_options,) sums to 1
    current: int  # the start's option
    low: float  # raw value of option 0

    def raw(self, k: int) -> float:
        return float(self.low + int(k))


def discrete_controls(
    preset: Preset, tier: int, probabilities: dict[str, np.ndarray] | None, cfg: RefineConfig
) -> tuple[DiscreteControl, ...]:
    """The categorical controls CatCMA searches: the `cfg.discrete_controls` least confident ones that can
    be heard (or a switch that turns a module on), with the model's probabilities as their prior (without
    a model: DISCRETE_PRIOR on the start's option, the rest shared)."""
    from synthmatch.synth.params import param_space

    if cfg.discrete != "catcma" or cfg.discrete_controls == 0:
        return ()
    ps = param_space()
    aud = Audibility(preset, ps)
    if aud.silent:
        return ()
    ranked = []
    for name in ps.tier(tier).categorical:
        spec = ps[name]
        n = spec.n_options
        if n < 2 or name in _HELD_DISCRETE or not (aud.audible(name) or _turns_on(name)):
            continue
        current = spec.index_of(preset.values.get(name, spec.default))
        p = probabilities.get(name) if probabilities else None
        if p is None or len(p) != n:
            p = np.full(n, (1 - DISCRETE_PRIOR) / (n - 1))
            p[current] = DISCRETE_PRIOR
        p = np.maximum(np.asarray(p, np.float64), DISCRETE_FLOOR)
        p /= p.sum()
        ranked.append((float(p[current]), name, DiscreteControl(name, p, current, spec.min)))
    ranked.sort(key=lambda t: (t[0], t[1]))
    return tuple(d for _, _, d in ranked[: cfg.discrete_controls])


def _turns_on(name: str) -> bool:
    return name.endswith("_on")


# categoricals the mixed search leaves alone: they do not shape one note's sound (or break the note)
_HELD_DISCRETE = frozenset({"voice_priority", "legato", "portamento_slope", "polyphony", "oversampling"})
DISCRETE_PRIOR = 0.7  # without a model: the start's option's prior probability
DISCRETE_FLOOR = 0.02  # the smallest prior probability of an option (CatCMA keeps its own margin too)


class _CMA:
    """pycma over the continuous coordinates (today's search)."""

    def __init__(self, x0: np.ndarray, space: SearchSpace, cfg: RefineConfig, popsize: int, budget: int):
        import cma

        self.size = space.size
        opts = {
            "bounds": [0.0, 1.0],
            "popsize": popsize,
            "seed": cfg.seed + 1,  # cma treats seed 0 as "random"
            "verbose": -9,
            "maxfevals": budget,
            "tolfun": 1e-6,
            "tolx": 1e-5,
        }
        x0 = x0.copy()
        # the template's amounts start at 0 with a smaller step: at the full step every candidate
        # would carry random envelope, vibrato and tremolo moves, and the search slowed down
        stds = _stds(space, cfg)
        if space.size == 1:
            x0 = np.concatenate([x0, [0.5]])  # cma needs >= 2 dimensions: one dummy coordinate
            stds = np.concatenate([stds, [1.0]])
        opts["CMA_stds"] = stds
        self.es = cma.CMAEvolutionStrategy(x0, cfg.sigma, opts)
        self._asked: list = []

    def ask(self) -> list[_Point]:
        self._asked = self.es.ask()
        return [_Point(np.asarray(x[: self.size], np.float64).copy()) for x in self._asked]

    def tell(self, points: list[_Point], losses: list[float]) -> None:
        self.es.tell(self._asked, losses)

    def stop(self) -> bool:
        return bool(self.es.stop())


class _CatCMA:
    """CatCMA with Margin (the `cmaes` package) over the continuous coordinates and discrete controls."""

    def __init__(self, x0, space: SearchSpace, discrete, cfg: RefineConfig, popsize: int):
        from cmaes import CatCMAwM

        self.size = space.size
        x_space = [[0.0, 1.0]] * max(1, space.size)  # >= 1 continuous: one dummy coordinate if none
        mean = x0.copy() if space.size else np.array([0.5])
        stds = _stds(space, cfg) if space.size else np.ones(1)
        kmax = max(len(d.prior) for d in discrete)
        cat = np.zeros((len(discrete), kmax))
        for i, d in enumerate(discrete):
            cat[i, : len(d.prior)] = d.prior
        self.opt = CatCMAwM(
            x_space=x_space,
            c_space=[len(d.prior) for d in discrete],
            population_size=popsize,
            mean=np.clip(mean, 1e-6, 1 - 1e-6),
            sigma=cfg.sigma,
            cov=np.diag(stds**2),
            cat_param=cat,
            seed=cfg.seed + 1,
        )
        self._asked: list = []

    def ask(self) -> list[_Point]:
        self._asked = [self.opt.ask() for _ in range(self.opt.population_size)]
        return [
            _Point(np.asarray(s.x[: self.size], np.float64).copy(), tuple(int(k) for k in s.c.argmax(axis=1)))
            for s in self._asked
        ]

    def tell(self, points: list[_Point], losses: list[float]) -> None:
        self.opt.tell(list(zip(self._asked, [float(v) for v in losses])))

    def stop(self) -> bool:
        return bool(self.opt.should_stop())


def _stds(space: SearchSpace, cfg: RefineConfig) -> np.ndarray:
    stds = np.ones(space.size)
    if space.template:
        stds[-len(space.template) :] = cfg.template_step
    return stds


def _optimizer(x0, space: SearchSpace, discrete, cfg: RefineConfig, popsize: int, budget: int):
    if discrete:
        return _CatCMA(x0, space, discrete, cfg, popsize)
    return _CMA(x0, space, cfg, popsize, budget)
