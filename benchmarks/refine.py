"""CMA-ES refinement: speed against the raw renderer, wall time, quality, and the noise-floor method.

    python benchmarks/refine.py [--parts objective,speed,wall,quality,noise,method] [--targets 20]
                                [--evals 500] [--starts perturbed,init]

Targets are held-out generated presets (tier 2, sampler seed 9_000_001, never used for training), audible
(RMS above -50 dBFS), rendered whole: 4 s long with the key held 1.5 s at a note drawn from 48-72, with
random phase on, on a fresh Synth, as a user's target would be. Parts:

- objective: cost of one objective call (`MultiScaleLogMel`, target spectra computed once) on a 4 s
  candidate in a worker thread (refine scores candidates in its render threads) and in the main thread,
  against `match_distance` (target spectra recomputed) and one 4 s render on one thread.
- speed: evaluations/s of `refine` (300 evaluations, the default template) with 1 and 2 threads against
  the raw render rate at the same parallelism: `Renderer.render_batch` of comparable candidates with its
  flush (what every render does now), and bare vita renders (`flush_s=0`); target evals/raw >= 0.85.
  On the first 4 targets whose start is audible: a silent start ends refine after 3 renders, which
  times its setup, not its search.
- wall: wall time of one 500-evaluation refinement of a 4 s target on every core.
- quality: loss (`audio.distances.match_distance`, what evaluation calls mel_l1) before and after
  refinement, from two starts: the true preset with its searched controls perturbed by N(0, 0.15) (a
  stand-in for a model prediction with the right categoricals), and Vital's init preset (the no-model
  baseline). Losses are measured on fresh renders of the returned preset as the user gets it (random
  phase restored), mean of 2; the noise floor is the distance between two renders of the true preset.
  `--starts` picks which of the two run.
- noise: the objective's repeatability (distance between two renders of one candidate with another
  candidate rendered in between, as in a search) with random phase as-is or held at 0, each with and
  without the renderer's flush (`synth.render`), plus the old settle render (0.25 s of the candidate
  itself, no flush) for comparison.
- state: what a reused Synth carries: a community preset rendered on a Synth that has just rendered
  another one (and 30 before it), against the same preset on a fresh Synth, with and without the flush
  (random phase 0: the fresh renders are bit-exact, so every difference is carried state), next to the
  noise floor a user hears (two fresh renders with random phase as saved).
- method: refinement with random phase held at 0 while searching, on and off (10 targets, at most 200
  evaluations).
Run it on an otherwise idle machine: each table reports how many cores the whole machine was busy.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import load_monitor, machine_line, print_table  # noqa: E402
from synthmatch.audio.distances import MultiScaleLogMel, match_distance  # noqa: E402
from synthmatch.datagen.sample import PresetSampler  # noqa: E402
from synthmatch.inference.calibrate import fixed_phase  # noqa: E402
from synthmatch.inference.refine import RefineConfig, refine, search_space  # noqa: E402
from synthmatch.inference.scoring import SILENT_RMS  # noqa: E402
from synthmatch.synth.presets import Preset  # noqa: E402
from synthmatch.synth.render import Renderer  # noqa: E402

SR = 44100
DURATION_S, NOTE_S = 4.0, 1.5
TIER = 2
SEED = 9_000_001


def held_out_targets(count: int, renderer: Renderer) -> list[dict]:
    """count audible held-out presets with their target renders and notes."""
    sampler = PresetSampler(tier=TIER, seed=SEED)
    rng = np.random.default_rng(SEED)
    out, i = [], 0
    while len(out) < count:
        preset = sampler.sample(i).preset
        note = int(rng.integers(48, 73))
        i += 1
        audio = renderer.render(preset, note, NOTE_S, DURATION_S, fresh=True)
        if 20 * np.log10(np.sqrt(np.mean(np.square(audio, dtype=np.float64))) + 1e-12) < -50:
            continue
        out.append({"index": i - 1, "preset": preset, "note": note, "audio": audio})
    return out


def perturbed(preset: Preset, rng: np.random.Generator, scale: float = 0.15) -> Preset:
    space = search_space(preset, TIER)
    x = space.encode(preset)
    return space.decode(np.clip(x + scale * rng.standard_normal(len(x)), 0, 1), preset)


def user_loss(renderer: Renderer, preset: Preset, target: dict, n: int = 2) -> float:
    results = renderer.render_batch([preset] * n, target["note"], NOTE_S, DURATION_S, fresh=True)
    return float(np.mean([match_distance(target["audio"], r.audio, SR) for r in results]))


def _median_ms(repeats: int, fn, *args, **kwargs) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args, **kwargs)
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def part_objective(targets: list[dict]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    rows = []
    with Renderer(SR, n_threads=1) as r, ThreadPoolExecutor(1) as worker:
        for t in targets:
            cand = perturbed(t["preset"], np.random.default_rng(t["index"]))
            audio = r.render(cand, t["note"], NOTE_S, DURATION_S)
            load: dict = {}
            with load_monitor(load):
                setup = _median_ms(5, MultiScaleLogMel, t["audio"], SR, loudness_normalize=True)
                obj = MultiScaleLogMel(t["audio"], SR, loudness_normalize=True)
                # refine scores each candidate in the render thread that rendered it
                worker.submit(obj, audio).result()  # warm up
                call = worker.submit(_median_ms, 20, obj, audio).result()
                full = worker.submit(_median_ms, 10, match_distance, t["audio"], audio, SR).result()
                call_main = _median_ms(10, obj, audio)
                render = _median_ms(5, r.render, cand, t["note"], NOTE_S, DURATION_S)
            rows.append(
                [t["index"], call, call_main, setup, full, render, call / render, load["machine_busy_cores"]]
            )
    print_table(
        [
            "target",
            "objective ms/call",
            "same in the main thread",
            "target spectra ms (once)",
            "match_distance ms",
            "render ms",
            "objective / render",
            "machine busy cores",
        ],
        rows,
        title="Objective cost: multi-scale log-mel L1 of a 4 s candidate (windows 10/25/100 ms) in a worker "
        "thread, as refine runs it, against one render on one thread",
    )


SPEED_TARGETS = 4


def _searches(renderer: Renderer, target: dict) -> bool:
    """Whether the speed part's start for `target` is audible, so that refine searches at all."""
    start = perturbed(target["preset"], np.random.default_rng(target["index"]))
    audio = renderer.render(fixed_phase(start), target["note"], NOTE_S, DURATION_S)
    return bool(np.sqrt(np.mean(np.square(audio, dtype=np.float64))) > SILENT_RMS)


def part_speed(targets: list[dict], evals: int) -> None:
    rows = []
    with Renderer(SR) as r:  # a start with nothing to search times its setup, not the search: left out
        targets = [t for t in targets if _searches(r, t)][:SPEED_TARGETS]
    for threads in (1, 2):
        bare_rates, raw_rates, eval_rates, busy = [], [], [], []
        with Renderer(SR, n_threads=threads) as r:
            for t in targets:
                rng = np.random.default_rng(t["index"])
                start = perturbed(t["preset"], rng)
                cands = [fixed_phase(perturbed(start, rng, 0.1)) for _ in range(4 * threads * 4)]
                r.render_batch(cands[: 2 * threads], t["note"], NOTE_S, DURATION_S)  # warm up
                load: dict = {}
                with load_monitor(load):
                    t0 = time.perf_counter()
                    r.render_batch(cands, t["note"], NOTE_S, DURATION_S, flush_s=0.0)
                    bare_rates.append(len(cands) / (time.perf_counter() - t0))
                    t0 = time.perf_counter()
                    r.render_batch(cands, t["note"], NOTE_S, DURATION_S)
                    raw_rates.append(len(cands) / (time.perf_counter() - t0))
                    res = refine(
                        start,
                        t["audio"],
                        SR,
                        midi_note=t["note"],
                        note_duration_s=NOTE_S,
                        duration_s=DURATION_S,
                        tier=TIER,
                        renderer=r,
                        config=RefineConfig(max_evals=evals, timeout_s=600),
                    )
                    eval_rates.append(res.n_evals / res.elapsed_s)
                busy.append(load["machine_busy_cores"])
        bare, raw, ev = (
            float(np.sum(len(targets) / np.sum(1 / np.array(x)))) for x in (bare_rates, raw_rates, eval_rates)
        )  # harmonic means: total time
        rows.append([threads, bare, raw, ev, ev / raw, ev / bare, float(np.mean(busy))])
    print_table(
        [
            "threads",
            "bare vita renders/s (no flush)",
            "raw renders/s (Renderer, flushed)",
            "refine evals/s",
            "evals / raw",
            "evals / bare",
            "machine busy cores",
        ],
        rows,
        title=f"Speed: {len(targets)} held-out 4 s targets, {evals} evaluations each (target evals/raw >= 0.85)",
    )


def part_wall(targets: list[dict]) -> None:
    rows = []
    with Renderer(SR) as r:
        for t in targets:
            start = perturbed(t["preset"], np.random.default_rng(t["index"]))
            load: dict = {}
            with load_monitor(load):
                res = refine(
                    start,
                    t["audio"],
                    SR,
                    midi_note=t["note"],
                    note_duration_s=NOTE_S,
                    duration_s=DURATION_S,
                    tier=TIER,
                    renderer=r,
                    config=RefineConfig(max_evals=500, timeout_s=600),
                )
            rows.append(
                [
                    t["index"],
                    res.n_params,
                    res.n_evals,
                    round(res.elapsed_s, 3),
                    res.evals_per_s,
                    res.initial_loss,
                    res.final_loss,
                    load["machine_busy_cores"],
                ]
            )
    print_table(
        ["target", "params", "evals", "wall s", "evals/s", "loss before", "loss after", "machine busy cores"],
        rows,
        title=f"Wall time of a 500-evaluation refinement of a 4 s target, {os.cpu_count()} threads (target <= 30 s)",
    )


def part_quality(targets: list[dict], evals: int, starts: set[str]) -> None:
    summary = []
    with Renderer(SR) as r:
        floors = []
        for t in targets:
            a, b = (
                x.audio for x in r.render_batch([t["preset"]] * 2, t["note"], NOTE_S, DURATION_S, fresh=True)
            )
            floors.append(match_distance(a, b, SR))
        for key, label, make_start in (
            (
                "perturbed",
                "perturbed truth",
                lambda t: perturbed(t["preset"], np.random.default_rng(t["index"])),
            ),
            ("init", "init", lambda t: Preset.init()),
        ):
            if key not in starts:
                continue
            before, after, secs, busy, improved = [], [], [], [], 0
            for t in targets:
                start = make_start(t)
                load: dict = {}
                with load_monitor(load):
                    res = refine(
                        start,
                        t["audio"],
                        SR,
                        midi_note=t["note"],
                        note_duration_s=NOTE_S,
                        duration_s=DURATION_S,
                        tier=TIER,
                        renderer=r,
                        config=RefineConfig(max_evals=evals, timeout_s=600),
                    )
                before.append(user_loss(r, start, t))
                after.append(user_loss(r, res.preset, t))
                secs.append(res.elapsed_s)
                improved += res.improved
                busy.append(load["machine_busy_cores"])
            b, a, f = np.array(before), np.array(after), np.array(floors)
            summary.append(
                [
                    label,
                    float(np.median(b)),
                    float(np.median(a)),
                    float(np.median(f)),
                    float(np.mean(a <= b + 1e-9)),
                    f"{improved}/{len(targets)}",
                    float(np.median(a / b)),
                    float(np.median(secs)),
                    float(np.mean(busy)),
                ]
            )
    print_table(
        [
            "start",
            "loss before (median)",
            "loss after (median)",
            "noise floor (median)",
            "share not worse",
            "improved",
            "after / before (median)",
            "seconds (median)",
            "machine busy cores",
        ],
        summary,
        title=f"Quality: {len(targets)} held-out targets, {evals} evaluations, tier {TIER}; "
        "loss = match_distance on fresh renders (random phase on), mean of 2",
    )


def part_noise(targets: list[dict]) -> None:
    rows = []
    with Renderer(SR, n_threads=1) as r:
        for label, phase0, flush, settle in (
            ("as-is (random phase), no flush", False, 0.0, False),
            ("random phase 0, no flush", True, 0.0, False),
            ("random phase 0 + the old settle render (0.25 s), no flush", True, 0.0, True),
            ("as-is (random phase), flushed", False, None, False),
            ("random phase 0, flushed (what refine does)", True, None, False),
        ):
            d = []
            kw = {} if flush is None else {"flush_s": flush}
            for t in targets:
                rng = np.random.default_rng(t["index"])
                cand, other = perturbed(t["preset"], rng), perturbed(t["preset"], rng, 0.1)
                if phase0:
                    cand, other = fixed_phase(cand), fixed_phase(other)
                obj = MultiScaleLogMel(t["audio"], SR, loudness_normalize=True)
                seq = [cand, other, cand]
                if settle:
                    seq = [other, cand, cand, other, cand, cand]
                out = [x.audio for x in r.render_batch(seq, t["note"], NOTE_S, DURATION_S, **kw)]
                if settle:
                    a, b = out[2], out[5]  # each after a 4 s render of itself: the settle, at most
                else:
                    a, b = out[0], out[2]
                d.append(abs(obj(a) - obj(b)))
            d = np.array(d)
            rows.append([label, float(np.median(d)), float(np.quantile(d, 0.9)), float(d.max())])
    print_table(
        ["renders", "|loss difference| median", "p90", "max"],
        rows,
        title="Objective repeatability: the same candidate scored twice, another rendered in between",
    )


def part_state() -> None:
    from synthmatch.datagen.community import COMMUNITY_DIR, community_files, unusable_preset_names

    bad = unusable_preset_names(COMMUNITY_DIR)
    files = [f for f in community_files([COMMUNITY_DIR]) if f.stem not in bad][:24]
    presets = [Preset.load(f) for f in files]
    rows = []
    with Renderer(SR, n_threads=1) as r:
        fresh = [
            x.audio
            for x in r.render_batch([fixed_phase(p) for p in presets], 60, NOTE_S, DURATION_S, fresh=True)
        ]
        floor = [
            match_distance(*(x.audio for x in r.render_batch([p, p], 60, NOTE_S, DURATION_S, fresh=True)), SR)
            for p in presets
        ]
        for label, flush in (("reused Synth, no flush", 0.0), ("reused Synth, flushed (default)", None)):
            kw = {} if flush is None else {"flush_s": flush}
            r.render_batch([fixed_phase(p) for p in presets[::-1]], 48, NOTE_S, DURATION_S, **kw)  # history
            d = []
            for p, f in zip(presets, fresh):
                a = r.render_batch([fixed_phase(p)], 60, NOTE_S, DURATION_S, **kw)[0].audio
                d.append(match_distance(f, a, SR))
            d = np.array(d)
            rows.append(
                [
                    label,
                    float(np.median(d)),
                    float(np.quantile(d, 0.9)),
                    float(d.max()),
                    f"{np.mean(d <= np.array(floor)):.0%}",
                ]
            )
    fl = np.array(floor)
    rows.append(
        [
            "noise floor: two fresh renders, random phase as saved",
            float(np.median(fl)),
            float(np.quantile(fl, 0.9)),
            float(fl.max()),
            "-",
        ]
    )
    print_table(
        ["render", "distance to a fresh render: median", "p90", "max", "within the preset's floor"],
        rows,
        title=f"State between renders: {len(presets)} community presets, 4 s at MIDI 60, random phase 0",
    )


def part_method(targets: list[dict], evals: int) -> None:
    rows = []
    with Renderer(SR) as r:
        for label, cfg in (
            ("method on (default)", RefineConfig(max_evals=evals, timeout_s=600)),
            ("method off", RefineConfig(max_evals=evals, timeout_s=600, fixed_phase=False)),
        ):
            before, after, claimed = [], [], []
            for t in targets:
                start = perturbed(t["preset"], np.random.default_rng(t["index"]))
                res = refine(
                    start,
                    t["audio"],
                    SR,
                    midi_note=t["note"],
                    note_duration_s=NOTE_S,
                    duration_s=DURATION_S,
                    tier=TIER,
                    renderer=r,
                    config=cfg,
                )
                before.append(user_loss(r, start, t, 3))
                after.append(user_loss(r, res.preset, t, 3))
                claimed.append(res.final_loss)
            b, a, c = np.array(before), np.array(after), np.array(claimed)
            rows.append(
                [
                    label,
                    float(np.median(b)),
                    float(np.median(a)),
                    float(np.median(c)),
                    float(np.median(a - c)),
                    float(np.mean(a <= b + 1e-9)),
                ]
            )
    print_table(
        [
            "refinement",
            "loss before",
            "loss after (fresh renders)",
            "loss the search reported",
            "fresh - reported (median)",
            "share not worse",
        ],
        rows,
        title=f"Noise-floor method: {len(targets)} targets, perturbed-truth start, {evals} evaluations",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="objective,speed,wall,quality,noise,state,method")
    ap.add_argument("--targets", type=int, default=20, help="held-out targets for quality")
    ap.add_argument("--evals", type=int, default=500, help="evaluations per refinement in quality")
    ap.add_argument("--starts", default="perturbed,init", help="quality's starts: perturbed, init or both")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    print(f"machine: {machine_line()}")
    print(f"command: python benchmarks/refine.py {' '.join(sys.argv[1:])}".rstrip())
    with Renderer(SR) as r:
        targets = held_out_targets(max(args.targets, 10), r)
    if "objective" in parts:
        part_objective(targets[:4])
    if "speed" in parts:
        part_speed(targets, 300)
    if "wall" in parts:
        part_wall(targets[:3])
    if "quality" in parts:
        part_quality(targets[: args.targets], args.evals, set(args.starts.split(",")))
    if "noise" in parts:
        part_noise(targets[:10])
    if "state" in parts:
        part_state()
    if "method" in parts:
        part_method(targets[:10], min(args.evals, 200))


if __name__ == "__main__":
    main()
