"""Nearest-neighbour search of the retrieval index: is brute force in NumPy fast enough?

    python benchmarks/retrieval.py [--index PATH] [--sizes 3837,50000,500000] [--repeats 50]

Times, in this process, one query's embedding (log-mel features of the target's first 2 s, pooled) and
the brute-force search (Euclidean distance to every row, argsort) over the bundled index and over random
indexes of larger sizes with the same width (float32 in memory, as `RetrievalIndex` holds them). Prints
medians and p90 over the repeats, with how busy the machine was.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import load_monitor, machine_line, print_table  # noqa: E402


def _times(fn, repeats: int) -> tuple[float, float]:
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return float(np.median(t)) * 1e3, float(np.percentile(t, 90)) * 1e3


def main() -> None:
    from synthmatch.inference.retrieval import RetrievalIndex, default_index_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", default=None)
    ap.add_argument("--sizes", default="3837,50000,500000")
    ap.add_argument("--repeats", type=int, default=50)
    a = ap.parse_args()
    index = RetrievalIndex.load(a.index or default_index_path())
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal(4 * index.sample_rate)).astype(np.float32)
    q = index.embed(audio, index.sample_rate)
    rows, load = [], {}
    with load_monitor(load):
        med, p90 = _times(lambda: index.embed(audio, index.sample_rate), a.repeats)
        rows.append(["embed one target (features + pooling)", "-", f"{med:.2f}", f"{p90:.2f}"])
        for n in [int(s) for s in a.sizes.split(",")]:
            e = index.embeddings if n == len(index) else rng.standard_normal((n, q.size)).astype(np.float32)

            def search(e=e):
                d = np.sum(np.square(e - q), axis=1)
                return np.argsort(d, kind="stable")[:8]

            med, p90 = _times(search, max(5, a.repeats // (1 + n // 50_000)))
            label = "bundled index" if n == len(index) else "random rows"
            rows.append([f"brute-force search ({label})", f"{n}", f"{med:.2f}", f"{p90:.2f}"])
    print(machine_line() + f"; machine busy {load['machine_busy_cores']:.1f} cores during the run")
    print_table(["step", "rows", "median ms", "p90 ms"], rows)


if __name__ == "__main__":
    main()
