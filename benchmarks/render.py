"""Render throughput: renders/s with 1 and N threads, and the parallel efficiency.

    python benchmarks/render.py [--seconds 2.0] [--count 60]

Presets: Vital's init preset, and random audible tier-2 presets from the dataset sampler (silent ones
skipped, as the generator rejects them). Each item is a 2 s render of a 1.5 s note at 44.1 kHz, mono.
Parallel efficiency = (rate with N threads) / (N x rate with 1 thread); the target on 2 cores is >= 0.9.
Run it on an otherwise idle machine: the last column reports how many cores the whole machine was busy.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import load_monitor, machine_line, print_table  # noqa: E402
from synthmatch.datagen.sample import PresetSampler  # noqa: E402
from synthmatch.synth.presets import Preset  # noqa: E402
from synthmatch.synth.render import Renderer  # noqa: E402


def audible_random_presets(count: int, seed: int = 123) -> list[Preset]:
    sampler = PresetSampler(tier=2, seed=seed)
    out, i = [], 0
    with Renderer(n_threads=os.cpu_count()) as r:
        while len(out) < count:
            batch = [sampler.sample(i + k).preset for k in range(count)]
            i += count
            for p, res in zip(batch, r.render_batch(batch, 60, 0.5, 0.5)):
                if res.ok and np.sqrt(np.mean(res.audio**2)) > 1e-3:
                    out.append(p)
    return out[:count]


def rate(presets: list[Preset], threads: int, duration_s: float, repeats: int = 3) -> tuple[float, dict]:
    load: dict = {}
    with Renderer(n_threads=threads) as r:
        r.render_batch(presets[: threads * 2], 60, duration_s * 0.75, duration_s)  # warm every Synth
        best = 0.0
        with load_monitor(load):
            for _ in range(repeats):
                t0 = time.perf_counter()
                results = r.render_batch(presets, 60, duration_s * 0.75, duration_s)
                best = max(best, len(presets) / (time.perf_counter() - t0))
                assert all(x.ok for x in results)
    return best, load


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=2.0, help="render length")
    ap.add_argument("--count", type=int, default=60, help="presets per timed batch")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    print(f"machine: {machine_line()}")
    sets = {
        "init": [Preset.init()] * args.count,
        "random audible (tier 2)": audible_random_presets(args.count),
    }
    rows = []
    for name, presets in sets.items():
        r1, l1 = rate(presets, 1, args.seconds)
        rn, ln = rate(presets, args.threads, args.seconds)
        eff = rn / (args.threads * r1)
        rows.append(
            [
                name,
                round(r1, 1),
                round(rn, 1),
                round(rn / r1, 2),
                round(eff, 3),
                f"{l1['machine_busy_cores']:.2f} / {ln['machine_busy_cores']:.2f}",
            ]
        )
    print_table(
        [
            "presets",
            "renders/s 1 thread",
            f"renders/s {args.threads} threads",
            "speed-up",
            "parallel efficiency",
            "machine busy cores (1 / N)",
        ],
        rows,
        title=f"Render throughput, {args.seconds:g} s renders at 44.1 kHz, best of 3 batches of {args.count}",
    )


if __name__ == "__main__":
    main()
