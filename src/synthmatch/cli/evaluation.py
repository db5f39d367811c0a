"""Evaluation commands: `eval` and `devset` (target sets)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from synthmatch.cli import flags
from synthmatch.defaults import SEARCH_TIER

log = logging.getLogger("synthmatch")


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x.strip().replace("-", "_") for x in text.split(",") if x.strip())


def run_eval(args: argparse.Namespace) -> int:
    """Benchmark matching: every method on every test set at one render budget, scored by every metric.

    Test sets: in_domain (held-out generated presets, seed 9000001, with ground truth), community (the 15
    presets presets/community/split.json reserves for evaluation) and audio (--audio-dir). Methods: init
    (Vital's init preset), random (a random preset), nn (nearest training example by log-mel embedding,
    needs --train-data), model (needs -c or the bundled model), cmaes (CMA-ES from init, B evaluations),
    model_cmaes (CMA-ES from the prediction, B evaluations), random_search (best of B random presets).
    Metrics: multi-scale log-mel L1, MFCC distance, spectral convergence, RMS-envelope cosine, pitch error,
    parameter MAE and categorical accuracy, each as median [bootstrap 95% CI], with the noise floor (two
    renders of the true preset) and paired win rates. Writes eval.md, eval.json and PNG plots to -o and
    prints the Markdown table. See docs/EVAL.md.
    """
    import shlex

    from synthmatch.evaluation.benchmark import EvalConfig, run_eval

    methods: dict[str, Any] = {"methods": _csv(args.methods)} if args.methods else {}  # else the default
    cfg = EvalConfig(
        checkpoint=args.checkpoint,
        test_sets=_csv(args.test_sets) if args.test_sets else None,
        audio_dir=args.audio_dir,
        max_seconds=args.max_seconds,
        tier=args.tier,
        n=args.n,
        budget=args.budget,
        **methods,
        train_data=args.train_data,
        output=args.output,
        quick=args.quick,
        seed=args.seed,
        workers=args.workers,
        progress=sys.stderr.isatty(),
        command=shlex.join(["synthmatch", *sys.argv[1:]]),
    )
    run = run_eval(cfg)
    print(run.markdown)
    print(f"wrote {', '.join(str(p) for p in run.paths.values())}")
    return 0


def add_eval(p: argparse.ArgumentParser) -> None:
    flags.checkpoint(p, "model for the model and model_cmaes methods, skipped without one")
    p.add_argument(
        "--test-sets",
        help="comma-separated: in_domain,community,audio (default: in_domain,community, plus audio with --audio-dir)",
    )
    p.add_argument(
        "--audio-dir",
        type=Path,
        help="folder of audio files: the audio test set (a `synthmatch devset` folder brings known notes; "
        "default: none)",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=4.0,
        help="length of the targets, matched and scored whole (default %(default)s; longer audio is cut)",
    )
    flags.search_tier(p, "parameter space of the in-domain targets and of CMA-ES from init")
    p.add_argument("-n", type=int, help="in-domain targets (default 50; 3 with --quick)")
    p.add_argument(
        "--budget",
        type=int,
        help="evaluations (renders) of each search method per target (default 100; 24 with --quick)",
    )
    p.add_argument(
        "--methods",
        help="comma-separated subset of init,random,nn,model,cmaes,model_cmaes,random_search,candidates (default: all)",
    )
    p.add_argument(
        "--train-data",
        type=Path,
        metavar="FILE.h5",
        help="training dataset for the nearest-neighbour method (default: none, nn skipped)",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("out/eval"),
        help="folder for eval.md, eval.json, PNGs (default %(default)s)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="CI-sized smoke run: 3 in-domain + 2 community targets of at most 1 s, budget 24",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the random baselines and CMA-ES (default %(default)s)"
    )
    flags.workers(p)


# (name, declare flags, run, one-line help)


def run_devset(args: argparse.Namespace) -> int:
    """Write a folder of one-shot targets in the format of a producer's samples, with a manifest.

    Every file is 4 s long with the key held for the first 1.5 s, mono, 44.1 kHz, peak-normalised;
    manifest.json records each one's MIDI note (when pitched), key-held time and origin. Kinds:
    soundfont (real instruments of the General MIDI families rendered by fluidsynth from Debian's
    timgm6mb and MuseScore soundfonts, plus the synth patches), synth (small synth patches made with
    NumPy, not Vital), in_domain (held-out presets of the dataset sampler, rendered by Vital) and
    community (the community presets reserved for evaluation, rendered by Vital at MIDI note 60).
    `synthmatch eval --test-sets audio --audio-dir DIR` scores on it with the known notes. Files already
    there are kept (an interrupted run resumes); --overwrite makes them anew.
    """
    from synthmatch.evaluation.devset import write_devset

    items = write_devset(
        args.output,
        args.kind,
        n=args.n,
        both=args.both,
        tier=args.tier,
        overwrite=args.overwrite,
        limit=args.limit,
        progress=sys.stderr.isatty(),
    )
    families = sorted({i.family for i in items if i.family})
    print(f"wrote {len(items)} targets to {args.output} ({', '.join(families)}); manifest: manifest.json")
    return 0


def add_devset(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, required=True, help="folder to write (created)")
    p.add_argument(
        "--kind",
        choices=("soundfont", "synth", "in_domain", "community"),
        default="soundfont",
        help="soundfont: real instruments + synth patches (default); synth; in_domain: held-out sampler "
        "presets; community: the evaluation-only community presets",
    )
    p.add_argument("-n", type=int, default=30, help="in_domain targets (default %(default)s)")
    p.add_argument("--both", action="store_true", help="soundfont: every instrument from both soundfonts")
    flags.tier(p, "in_domain presets' tier", default=SEARCH_TIER)
    p.add_argument("--limit", type=int, help="at most this many files (a quick check; default: no limit)")
    p.add_argument("--overwrite", action="store_true", help="make every file anew")
