"""Dataset generation throughput, storage size and read speed.

    python benchmarks/datagen.py [--tier 2] [--count 512] [--part-size 256] [--workers 1,2]

For each worker count W it renders the same examples twice, in the same run:
- raw: the presets `generate` would render (indices [0, count) of the tier's sampler, each at its own MIDI
  note, 2 s renders of a 1.5 s note at 44.1 kHz, mono) with the threaded `Renderer`, W threads, one
  long-lived Synth per thread, warmed up first: what the renderer alone can do;
- generate: `synthmatch generate` of the same indices with W worker processes (fresh process per part,
  rejection checks, IPC, HDF5 parts, final assembly), timed end to end.
The ratio generate / raw (attempted renders per second) is the pipeline's efficiency; target >= 0.85.
Accepted/s also counts only the examples kept (silent or clipped ones are rejected).

Then, on the dataset written: bytes per accepted example, and the time to read a shuffled batch of 64
examples' audio (`Dataset.audio_batch`, file in the OS page cache, median of 20 batches).
Run it on an idle machine: the "machine busy cores" columns show how loaded the machine was.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import load_monitor, machine_line, print_table  # noqa: E402
from synthmatch.datagen.generate import GenerateConfig, generate  # noqa: E402
from synthmatch.datagen.sample import PresetSampler, example_midi_note  # noqa: E402
from synthmatch.datagen.store import Dataset  # noqa: E402
from synthmatch.synth.render import Renderer  # noqa: E402

DURATION_S, NOTE_S, NOTES = 2.0, 1.5, (48, 60, 72)


def raw_rate(tier: int, count: int, threads: int, seed: int) -> tuple[float, dict]:
    sampler = PresetSampler(tier, seed)
    presets = [sampler.sample(i).preset for i in range(count)]
    notes = [example_midi_note(seed, i, tier, NOTES) for i in range(count)]
    load: dict = {}
    with Renderer(n_threads=threads) as r:
        r.render_batch(presets[: threads * 2], notes[: threads * 2], NOTE_S, DURATION_S)  # build every Synth
        with load_monitor(load):
            t0 = time.perf_counter()
            results = r.render_batch(presets, notes, NOTE_S, DURATION_S)
            rate = count / (time.perf_counter() - t0)
    errors = sum(not x.ok for x in results)
    if errors:
        print(f"note: {errors} raw renders failed")
    return rate, load


def generate_rate(tier: int, count: int, workers: int, part_size: int, seed: int, out: Path):
    cfg = GenerateConfig(
        output=out,
        n=count,
        tier=tier,
        workers=workers,
        seed=seed,
        duration_s=DURATION_S,
        note_duration_s=NOTE_S,
        midi_notes=NOTES,
        part_size=part_size,
        overwrite=True,
        progress=False,
    )
    load: dict = {}
    with load_monitor(load):
        t0 = time.perf_counter()
        report = generate(cfg)
        seconds = time.perf_counter() - t0
    return report, seconds, load


def read_batch_ms(path: Path, batch: int = 64, repeats: int = 20, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    times = []
    with Dataset(path) as ds:
        n = len(ds)
        ds.audio_batch(rng.choice(n, size=min(batch, n), replace=False))  # open the datasets once
        for _ in range(repeats):
            idx = rng.choice(n, size=min(batch, n), replace=False)
            t0 = time.perf_counter()
            ds.audio_batch(idx)
            times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tier", type=int, default=2, choices=(1, 2, 3))
    ap.add_argument("--count", type=int, default=512, help="examples per measurement")
    ap.add_argument("--part-size", type=int, default=256)
    ap.add_argument("--workers", default="1,2", help="worker counts to measure, comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    counts = [int(x) for x in args.workers.split(",")]
    print(f"machine: {machine_line()}")
    rows, last = [], None
    with tempfile.TemporaryDirectory(prefix="synthmatch-bench-") as tmp:
        for w in counts:
            raw, raw_load = raw_rate(args.tier, args.count, w, args.seed)
            out = Path(tmp) / f"w{w}.h5"
            report, seconds, gen_load = generate_rate(
                args.tier, args.count, w, args.part_size, args.seed, out
            )
            attempted = report.attempted / seconds
            accepted = report.accepted / seconds
            rows.append(
                [
                    w,
                    round(raw, 1),
                    round(attempted, 1),
                    round(accepted, 1),
                    round(attempted / raw, 3),
                    round(accepted / raw, 3),
                    f"{report.rejected / report.attempted:.1%}",
                    f"{raw_load['machine_busy_cores']:.2f} / {gen_load['machine_busy_cores']:.2f}",
                ]
            )
            last = (out, report)
        print_table(
            [
                "workers",
                "raw renders/s",
                "generate attempted/s",
                "generate accepted/s",
                "ratio attempted/raw",
                "ratio accepted/raw",
                "rejected",
                "machine busy cores (raw / generate)",
            ],
            rows,
            title=(
                f"Generation, tier {args.tier}, {args.count} examples, part size {args.part_size}, "
                f"{DURATION_S:g} s renders at 44.1 kHz mono int16"
            ),
        )
        out, report = last
        size = out.stat().st_size
        print_table(
            ["accepted examples", "file MB", "bytes per example", "shuffled batch of 64 (ms, page cache)"],
            [
                [
                    report.accepted,
                    round(size / 1e6, 1),
                    round(size / report.accepted),
                    round(read_batch_ms(out), 1),
                ]
            ],
            title="Storage",
        )


if __name__ == "__main__":
    main()
