"""Calibrate the verdict: where a match distance sits between the synth's noise floor and unrelated sounds.

    python benchmarks/verdict.py [--presets 120] [--seed 4242]

`audio.verdict` turns a match distance into a 0-100 similarity and a word. Its two anchors come from
this script, rendered the way every match is scored (a fresh Synth per render, random phase as saved,
4 s with the key held 1.5 s, mono 44.1 kHz, `audio.distances.match_distance`):

- noise floor: one preset rendered twice at the same note. Two such renders are the same sound to a
  listener; their median is the "indistinguishable" threshold (similarity 100). The median, not a high
  percentile: presets with noise, unison or random modulation spread far (their p95 is the distance of
  a fair match), and a verdict should not call a fair match indistinguishable.
- unrelated: two different presets at the same note. Their median distance is similarity 0: a match
  that far from its target is as far as a random preset.

Presets are random draws of the dataset sampler (tier 2, a seed no dataset or evaluation uses), each at a
note drawn from MIDI 36-84; silent draws (below -60 dBFS RMS) are skipped. Prints the percentiles of
both distributions and the two constants to put in `audio/verdict.py`, then how the shipped verdict
labels the measured distances (a check that the constants in the package are the ones measured).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine_line, print_table  # noqa: E402

SR, KEY_S, DURATION_S = 44100, 1.5, 4.0
SILENT_DB = -60.0


def main() -> None:
    from synthmatch.audio.distances import match_distance
    from synthmatch.audio.verdict import WORDS, verdict
    from synthmatch.datagen.sample import PresetSampler
    from synthmatch.inference.scoring import rms_db
    from synthmatch.synth.render import Renderer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", type=int, default=120, help="random presets to draw (default %(default)s)")
    ap.add_argument("--seed", type=int, default=4242, help="sampler seed (default %(default)s)")
    a = ap.parse_args()

    sampler = PresetSampler(tier=2, seed=a.seed)
    rng = np.random.default_rng(a.seed)
    floor: list[float] = []
    unrelated: list[float] = []
    kept = []  # (preset, note, first render)
    with Renderer(sample_rate=SR) as r:
        for i in range(a.presets):
            preset = sampler.sample(i).preset
            note = int(rng.integers(36, 85))
            one = r.render(preset, note, KEY_S, DURATION_S, fresh=True)
            if rms_db(one) < SILENT_DB:
                continue
            two = r.render(preset, note, KEY_S, DURATION_S, fresh=True)
            floor.append(match_distance(one, two, SR))
            kept.append((preset, note, one))
        for (_, note, one), (other, _, _) in zip(kept, kept[1:] + kept[:1]):
            heard = r.render(other, note, KEY_S, DURATION_S, fresh=True)
            if rms_db(heard) >= SILENT_DB:
                unrelated.append(match_distance(one, heard, SR))
    f, u = np.array(floor), np.array(unrelated)
    qs = (5, 25, 50, 75, 95)
    print(machine_line())
    print(f"{len(f)} sounding presets of {a.presets} drawn (seed {a.seed}); {len(u)} unrelated pairs")
    print_table(
        ["distances", "n", *(f"p{q}" for q in qs)],
        [
            ["noise floor (same preset twice)", len(f), *(f"{np.percentile(f, q):.3f}" for q in qs)],
            ["unrelated (two random presets)", len(u), *(f"{np.percentile(u, q):.3f}" for q in qs)],
        ],
    )
    print(f"constants: INDISTINGUISHABLE = {np.median(f):.3f}  UNRELATED = {np.median(u):.3f}")
    words: dict[str, list[int]] = {}
    for d in f:
        words.setdefault(verdict(float(d)).word, [0, 0])[0] += 1
    for d in u:
        words.setdefault(verdict(float(d)).word, [0, 0])[1] += 1
    order = ["indistinguishable", *(w for _, w in WORDS)]
    rows = [[w, *words.get(w, [0, 0])] for w in order]
    print_table(["shipped verdict", "noise-floor pairs", "unrelated pairs"], rows)


if __name__ == "__main__":
    main()
