"""Several ranked candidates: diverse starts sharing one render budget, the best few written.

    starts = [Start(prediction.preset, "model", "the model's prediction", prediction.probabilities),
              *alternative_starts(prediction.preset, prediction.probabilities, tier=2, n=2),
              *neighbour_starts(index, target.audio, target.sample_rate, n=2),
              Start(Preset.init(), "init", "Vital's init preset")]
    result = match_candidates(starts, 2, target, renderer, RefineConfig(max_evals=300), k=3)
    result.candidates[0].match   # the best (`infer`'s NAME.vital); [1] is NAME.2.vital...

A wrong discrete guess of the model (filter model, oscillator shape, an effect on or off) cannot be undone
by CMA-ES over the continuous controls. Candidates start from several places instead: the model's
prediction; its top alternatives (the prediction with one of its least confident categorical controls
switched to the model's second choice: `alternative_starts`); the nearest neighbours of the target in a
dataset (`inference.retrieval`); Vital's init preset. One budget (`RefineConfig.max_evals`, every render
counted) is shared by successive halving:

1. screen: every start is rendered and moved to the target's pitch (`refine` step 1, a few renders each,
   in the order given, while that has spent at most SCREEN_SHARE of the budget); silent starts and starts
   that align to the same preset are dropped;
2. the `k` best (as many as the budget can set up and finish) set up their searches (the template probe) and search in rounds: each round
   gets an equal share of what is left, split equally among those still in it; after each round the
   worse half stops (its best so far stays a candidate), until one searches on alone with the rest;
3. each search is finished (template pruned, its gain checked on a user render: `verify_renders` 1) and
   each candidate goes through the finishing steps (`match.finish_match`: the best by search loss with the
   full level steps, the others with one level render and no limiter);
4. the candidates are ranked by their distance on the final user render, and candidates that sound the
   same (their renders closer than SAME_SOUND to each other: two fresh renders of one preset differ by
   about that much) count once.

Ctrl-C during the rounds (under `refine.keep_best_on_interrupt`) ends them: every search set up is
finished with its best so far (steps 3 and 4), and `info["interrupted"]` says so.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from synthmatch.inference.match import POST_RENDERS, Match, MatchSteps, MatchTarget, finish_match
from synthmatch.inference.refine import (
    FAILED_LOSS,
    MIN_TEMPLATE_EVALS,
    RefineConfig,
    StopReason,
    search_interrupted,
    searcher,
    stop_on_interrupt,
)
from synthmatch.synth.audibility import Audibility
from synthmatch.synth.params import param_space
from synthmatch.synth.presets import Preset

if TYPE_CHECKING:
    from synthmatch.inference.retrieval import RetrievalIndex

log = logging.getLogger(__name__)

__all__ = [
    "Start",
    "Candidate",
    "CandidateResult",
    "alternative_starts",
    "neighbour_starts",
    "match_candidates",
    "START_KINDS",
    "SAME_SOUND",
    "LIGHT_POST_RENDERS",
]

START_KINDS = ("model", "alternatives", "neighbours", "init")
# Two candidates whose final renders are closer than this sound the same: the median distance between two
# fresh renders of one preset with its random phase (docs/BENCHMARKS.md, "the written WAV": 0.073).
SAME_SOUND = 0.075
# The finishing steps of a candidate other than the best: user render, tune check, one level render, the
# final render (and one more when it clips).
LIGHT_POST_RENDERS = 5
# Screening a start: one render, up to three transposes and two tune renders; the starts after the first
# are screened while the screening has spent at most SCREEN_SHARE of the budget.
SCREEN_RENDERS = 6
SCREEN_SHARE = 0.3
# categoricals an alternative start never changes: they do not shape one note's sound
_HELD = frozenset({"voice_priority", "legato", "portamento_slope", "polyphony", "oversampling"})


@dataclass(frozen=True)
class Start:
    """A place to start matching from."""

    preset: Preset
    source: str  # "model", "alternative", "neighbour", "init", "preset"
    label: str  # for --json, the summary and the tutorial
    probabilities: dict[str, np.ndarray] | None = None  # the model's, for a mixed (CatCMA) search


@dataclass
class Candidate:
    """One finished candidate."""

    start: Start
    match: Match
    search_loss: float  # the refinement objective where its search ended
    search_evals: int  # renders its screening, search and finishing spent

    def as_dict(self, trim: bool = True) -> dict[str, Any]:
        return {
            "start": {"source": self.start.source, "description": self.start.label},
            "distance": round(float(self.match.distance), 5),
            "search_loss": round(float(self.search_loss), 5),
            "renders": self.search_evals,
            **self.match.as_dict(trim),
        }


@dataclass
class CandidateResult:
    """The ranked distinct candidates (best first) and how the budget went."""

    candidates: list[Candidate]
    renders: int
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> Candidate:
        return self.candidates[0]


# ---------------------------------------------------------------------------------------------------
# starts
def alternative_starts(
    preset: Preset, probabilities: dict[str, np.ndarray] | None, tier: int, n: int
) -> list[Start]:
    """The prediction with one categorical control switched to the model's second choice, for the `n`
    controls where that choice is nearest the first (p2 / p1 highest) among those that can be heard (or
    a switch that turns a module on). Each keeps the model's probabilities (for a mixed search)."""
    if not probabilities or n <= 0:
        return []
    ps = param_space()
    aud = Audibility(preset, ps)
    if aud.silent:
        return []
    ranked = []
    cats = set(ps.tier(tier).categorical)
    for name, p in probabilities.items():
        if name not in cats or name in _HELD or len(p) < 2:
            continue
        if not (aud.audible(name) or name.endswith("_on")):
            continue
        spec = ps[name]
        current = spec.index_of(preset.values.get(name, spec.default))
        order = [int(i) for i in np.argsort(-np.asarray(p), kind="stable") if int(i) != current]
        if not order or p[current] <= 0:
            continue
        alt = order[0]
        ranked.append((float(p[alt] / p[current]), name, alt))
    ranked.sort(key=lambda t: (-t[0], t[1]))
    out = []
    for ratio, name, alt in ranked[:n]:
        spec = ps[name]
        label = spec.options[alt] if alt < len(spec.options) else str(alt)
        out.append(
            Start(
                preset.with_values({name: spec.raw_of_index(alt)}),
                "alternative",
                f"the model's prediction with {spec.display_name} = {label} "
                f"(its second choice, {ratio:.2f}x as likely)",
                probabilities,
            )
        )
    return out


def neighbour_starts(
    index: RetrievalIndex | None, audio: np.ndarray, sample_rate: int, n: int
) -> list[Start]:
    """The presets of the `n` examples of `index` that sound closest to the target."""
    if index is None or n <= 0:
        return []
    return [
        Start(
            hit.preset,
            "neighbour",
            f"nearest neighbour {i + 1} in {index.meta.get('dataset', 'the index')} "
            f"(example {hit.seed_index}, MIDI {hit.midi_note}, embedding distance {hit.distance:.2f})",
        )
        for i, hit in enumerate(index.query(audio, sample_rate, n))
    ]


# ---------------------------------------------------------------------------------------------------
# the shared budget
def match_candidates(
    starts: list[Start],
    tier: int,
    target: MatchTarget,
    renderer,
    refine: RefineConfig,
    k: int = 3,
    *,
    progress: bool = False,
    callback: Callable[[dict], None] | None = None,
) -> CandidateResult:
    """Match `target` from several starts within `refine.max_evals` renders; up to `k` distinct
    candidates, best first (see the module doc). Empty `candidates` when every start is silent."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    budget = int(refine.max_evals)
    root = target.scorer(renderer)
    cfg = replace(refine, verify_renders=min(1, refine.verify_renders))
    n_search = max(1, min(k, len(starts))) if k > 1 else 1
    searches = [searcher(s.preset, root.fork(), tier, cfg, target.pitch, s.probabilities) for s in starts]
    info: dict[str, Any] = {"starts": [s.label for s in starts], "budget": budget}
    bar = tqdm(total=budget, desc="matching candidates", unit="eval", disable=not progress, leave=False)

    def spent() -> int:
        return sum(s.scorer.n_evals for s in searches) + root.n_evals

    def report(best: float) -> None:
        bar.n = min(budget, spent())
        bar.refresh()
        if callback is not None:
            callback(
                {
                    "n_evals": spent(),
                    "budget": budget,
                    "initial_loss": float(screen_losses[0]) if screen_losses else FAILED_LOSS,
                    "best_loss": float(best),
                    "elapsed_s": round(time.perf_counter() - t0, 3),
                }
            )

    # 1. screen the starts in order (a few renders each) while SCREEN_SHARE of the budget allows, drop
    # silent ones and duplicates
    screen_losses: list[float] = []
    for k, s in enumerate(searches):
        if k > 0 and spent() + SCREEN_RENDERS > SCREEN_SHARE * budget:
            screen_losses.append(FAILED_LOSS)  # not screened: the budget is too small for every start
            continue
        screen_losses.append(s.screen())
    screened = [i for i, s in enumerate(searches) if hasattr(s, "scored")]
    seen: set[str] = set()
    order = []
    for i in sorted(range(len(searches)), key=lambda i: (screen_losses[i], i)):
        if i not in screened or screen_losses[i] >= FAILED_LOSS or not searches[i].scored.ok:
            continue
        h = searches[i].base.content_hash()
        if h in seen:
            continue
        seen.add(h)
        order.append(i)
    info["screen"] = [
        {"start": starts[i].label, "loss": round(float(v), 5) if v < FAILED_LOSS else None}
        for i, v in enumerate(screen_losses)
    ]
    report(min(screen_losses) if screen_losses else FAILED_LOSS)
    if not order:
        bar.close()
        return CandidateResult([], spent(), info)
    # as many searches as the budget can set up and finish whatever their template probe and prune cost
    n_conn = len(cfg.connections()) if budget >= MIN_TEMPLATE_EVALS else 0
    per_search = (2 * n_conn + 1 if n_conn else 0) + (n_conn + 1 if n_conn else 0) + 2 * cfg.verify_renders
    n_fit = n_search
    while (
        n_fit > 1 and spent() + n_fit * per_search + POST_RENDERS + (n_fit - 1) * LIGHT_POST_RENDERS > budget
    ):
        n_fit -= 1
    chosen = order[:n_fit]
    # 2. set up the searches of the best starts, and share what is left in rounds of successive halving
    for i in chosen:
        searches[i].setup()
    # what finishing may spend: pruning each search's template (one render per connection, one more),
    # its check (verify_renders each of start and best), the finishing steps of every candidate
    reserve = sum(
        2 * cfg.verify_renders + (len(searches[i].slots) + 1 if searches[i].slots else 0) for i in chosen
    )
    reserve += POST_RENDERS + (len(chosen) - 1) * LIGHT_POST_RENDERS
    left = budget - spent() - reserve
    alive = list(chosen)
    rounds = int(math.ceil(math.log2(len(alive)))) + 1 if len(alive) > 1 else 1
    rounds_info = []
    with stop_on_interrupt():  # Ctrl-C (under keep_best_on_interrupt): the rounds end, every best kept
        for r in range(rounds):
            left = budget - spent() - reserve
            if left <= 0 or not any(searches[i].searching for i in alive):
                break
            last = r == rounds - 1 or len(alive) == 1
            share = left if last else left // (rounds - r)
            per = share // len(alive)
            for i in alive:
                s = searches[i]
                # a hard cap: the last generation of a share is cut to it (the last searcher: to what is left)
                allowed = max(0, budget - spent() - reserve) if last else min(per, budget - spent() - reserve)
                if not last and s.popsize:  # whole generations, so that each is told to the optimizer
                    allowed = (allowed // s.popsize) * s.popsize
                s.budget = s.n_evals + max(0, allowed)
                if allowed > 0:
                    s.step(allowed)
                report(min(searches[j].best_loss for j in chosen))
            rounds_info.append({"searching": [starts[i].label for i in alive], "each": per})
            alive = sorted(alive, key=lambda i: (searches[i].best_loss, i))[
                : max(1, math.ceil(len(alive) / 2))
            ]
    info["rounds"] = rounds_info
    if search_interrupted():
        info["interrupted"] = True
        for i in chosen:  # those Ctrl-C cut between their steps too
            if searches[i].searching:
                searches[i].stop_reason = StopReason.INTERRUPTED
    # 3. finish each search, then the finishing steps (the best with the full level steps)
    finished = []
    for i in sorted(chosen, key=lambda i: (searches[i].best_loss, i)):
        result = searches[i].finish()
        finished.append((i, result))
    candidates: list[Candidate] = []
    for rank, (i, result) in enumerate(finished):
        s = searches[i]
        steps = MatchSteps(refine=result)
        best = rank == 0
        match, reason = finish_match(
            result.preset, steps, target, s.scorer, renderer, level_renders=3 if best else 1, limiter=best
        )
        if reason is not None:
            log.info("%s: candidate from %s dropped: %s", target.name, starts[i].label, reason)
            continue
        match.renders = s.scorer.n_evals
        candidates.append(Candidate(starts[i], match, float(result.final_loss), s.scorer.n_evals))
    bar.close()
    # 4. rank by the distance of what the user hears; the same sound counts once
    from synthmatch.audio.distances import match_distance

    candidates.sort(key=lambda c: c.match.distance)
    distinct: list[Candidate] = []
    for c in candidates:
        mono = c.match.audio.mean(axis=0)
        same = [
            d
            for d in distinct
            if d.match.preset.content_hash() == c.match.preset.content_hash()
            or match_distance(d.match.audio.mean(axis=0), mono, target.sample_rate) < SAME_SOUND
        ]
        if same:
            log.info(
                "%s: the candidate from %s sounds like a better one; counted once", target.name, c.start.label
            )
            continue
        distinct.append(c)
    info["distinct"] = len(distinct)
    info["finished"] = len(candidates)
    return CandidateResult(distinct[:k], spent(), info)
