"""Can the search change a discrete choice? Restarts from the model's second choice against CatCMA.

    python benchmarks/discrete_search.py [--evals 90] [--seeds 10]

The target is Vital's init saw through a Comb filter (cutoff 80, resonance 0.6); the start is the same
preset with an Analog filter, and a stand-in model gives Analog 0.45 and Comb 0.25 (the rest 0.05 each).
Each method gets the same render budget, once per search seed:

- continuous: CMA-ES over the continuous controls (the filter model stays as the start has it);
- restarts: `match_candidates` from the start and from the model's second choice for the filter model,
  sharing the budget by successive halving;
- catcma: CatCMA with Margin over the continuous controls and the filter model, the model's
  probabilities as the prior.

Scored as the user hears it: the returned preset rendered afresh (random phase as saved) over the whole
target, `match_distance` against the target. Prints, per method, how often it ended on the Comb, the
median distance, and its paired win rate against the continuous search.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import load_monitor, machine_line, print_table  # noqa: E402

SR, NOTE, NOTE_S, DURATION_S = 44100, 57, 0.6, 1.0
COMB = 6


def main() -> None:
    from synthmatch.audio.distances import match_distance
    from synthmatch.inference.candidates import Start, alternative_starts, match_candidates
    from synthmatch.inference.match import MatchTarget
    from synthmatch.inference.refine import RefineConfig, refine
    from synthmatch.synth.presets import Preset
    from synthmatch.synth.render import Renderer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evals", type=int, default=90)
    ap.add_argument("--seeds", type=int, default=10)
    a = ap.parse_args()

    def filtered(model: int) -> Preset:
        return Preset.init().with_values(
            filter_1_on=1, filter_1_model=float(model), filter_1_cutoff=80, filter_1_resonance=0.6
        )

    p = np.full(8, 0.05)
    p[0], p[COMB] = 0.45, 0.25
    probs = {"filter_1_model": p / p.sum()}
    start = filtered(0)
    results: dict[str, list[tuple[bool, float]]] = {"continuous": [], "restarts": [], "catcma": []}
    load: dict = {}
    with Renderer(sample_rate=SR) as r, load_monitor(load):
        target_audio = r.render(filtered(COMB), NOTE, NOTE_S, DURATION_S, fresh=True)
        target = MatchTarget.of(target_audio, SR, NOTE, note_duration_s=NOTE_S, name="comb")
        kw = dict(midi_note=NOTE, note_duration_s=NOTE_S, duration_s=DURATION_S, tier=2, renderer=r)

        def scored(preset: Preset) -> tuple[bool, float]:
            heard = r.render(preset, NOTE, NOTE_S, DURATION_S, fresh=True)
            return preset.values["filter_1_model"] == COMB, match_distance(target_audio, heard, SR)

        for seed in range(a.seeds):
            cfg = RefineConfig(max_evals=a.evals, seed=seed)
            results["continuous"].append(scored(refine(start, target_audio, SR, config=cfg, **kw).preset))
            starts = [Start(start, "model", "model", probs), *alternative_starts(start, probs, 2, 1)]
            best = match_candidates(starts, 2, target, r, cfg, k=1).best.match.preset
            results["restarts"].append(scored(best))
            mixed = RefineConfig(max_evals=a.evals, seed=seed, discrete="catcma", discrete_controls=1)
            results["catcma"].append(
                scored(refine(start, target_audio, SR, config=mixed, probabilities=probs, **kw).preset)
            )
            print(f"seed {seed}: " + ", ".join(f"{m} {v[-1][1]:.3f}" for m, v in results.items()), flush=True)
    base = np.array([d for _, d in results["continuous"]])
    rows = []
    for method, v in results.items():
        d = np.array([x for _, x in v])
        wins = "-" if method == "continuous" else f"{int(np.sum(d < base))}/{len(d)}"
        rows.append([method, f"{sum(c for c, _ in v)}/{len(v)}", f"{np.median(d):.3f}", wins])
    print(machine_line() + f"; machine busy {load['machine_busy_cores']:.1f} cores during the run")
    print(f"budget {a.evals} renders per search, {a.seeds} seeds")
    print_table(["method", "ended on the Comb", "median distance (fresh render)", "wins vs continuous"], rows)


if __name__ == "__main__":
    main()
