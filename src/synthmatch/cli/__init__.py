"""The `synthmatch` command line: parse flags, call one function, print. No logic lives here.

One module per stage group, in the pipeline's order (synth, datagen, training, inference, evaluation).
Each subcommand is a pair: `add_<name>(parser)` declares its flags (names kept from the seed
document: --tier, -n, --workers, --refine-evals, ...), `run_<name>(args)` builds the stage's config and
calls the documented function. Heavy modules are imported inside `run_*` so `--help` stays fast.

`-v`/`-q` go before or after the subcommand (`synthmatch -v infer ...`, `synthmatch infer -v ...`), and
log lines are written above any progress bar, never through it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from synthmatch import __version__
from synthmatch.cli import datagen, evaluation, inference, synth, training
from synthmatch.errors import SynthmatchError

# in the pipeline's order, as `synthmatch --help` lists them
_COMMANDS: list[tuple[str, Callable, Callable, str]] = [
    (
        "params",
        synth.add_params,
        synth.run_params,
        "list Vital's parameter space (name, kind, module, range, tier)",
    ),
    ("render", synth.add_render, synth.run_render, "render a .vital preset (or 'init') to a WAV file"),
    (
        "generate",
        datagen.add_generate,
        datagen.run_generate,
        "render a training dataset (parallel, resumable, shardable)",
    ),
    ("merge", datagen.add_merge, datagen.run_merge, "join datasets (e.g. generate shards) into one file"),
    (
        "inspect",
        datagen.add_inspect,
        datagen.run_inspect,
        "summarise a dataset, or show one example's parameters",
    ),
    (
        "ingest",
        datagen.add_ingest,
        datagen.run_ingest,
        "add community .vital presets to a dataset (rendered, same schema)",
    ),
    (
        "preview",
        datagen.add_preview,
        datagen.run_preview,
        "browse a dataset: examples, parameters, waveform, playback",
    ),
    (
        "precompute-mels",
        training.add_precompute_mels,
        training.run_precompute_mels,
        "write a dataset's log-mel features",
    ),
    (
        "compute-weights",
        training.add_compute_weights,
        training.run_compute_weights,
        "measure each parameter's perceptual importance and store it in the dataset",
    ),
    (
        "train",
        training.add_train,
        training.run_train,
        "train a model (CPU, GPU, or multi-GPU under torchrun)",
    ),
    ("report", training.add_report, training.run_report, "draw a training run's curves to PNG"),
    (
        "index",
        inference.add_index,
        inference.run_index,
        "build a nearest-neighbour index of a dataset's sounds (starts for --candidates)",
    ),
    (
        "infer",
        inference.add_infer,
        inference.run_infer,
        "match a sound (or a folder of sounds) with a Vital preset",
    ),
    (
        "demo",
        inference.add_demo,
        inference.run_demo,
        "serve the web demo: upload or record a note, get a Vital preset",
    ),
    (
        "eval",
        evaluation.add_eval,
        evaluation.run_eval,
        "benchmark matching methods on held-out targets (tables, JSON, plots)",
    ),
    (
        "devset",
        evaluation.add_devset,
        evaluation.run_devset,
        "write a target set: real-instrument one-shots, synth patches, presets",
    ),
]


def _logging_flags(p: argparse.ArgumentParser, dest_prefix: str = "") -> None:
    """-v/-q. After the subcommand they count in their own attributes, so that the subcommand's defaults
    do not clobber what was given before it (`verbosity` adds both up)."""
    p.add_argument(
        "-v",
        "--verbose",
        dest=f"{dest_prefix}verbose",
        action="count",
        default=0,
        help="more logging (-vv for debug)",
    )
    p.add_argument(
        "-q", "--quiet", dest=f"{dest_prefix}quiet", action="store_true", help="only warnings and errors"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthmatch",
        description="Turn a one-shot sound into a Vital preset: generate data, train, match, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"synthmatch {__version__}")
    _logging_flags(parser)
    common = argparse.ArgumentParser(add_help=False)
    _logging_flags(common, dest_prefix="sub_")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, add, run, help_text in _COMMANDS:
        p = sub.add_parser(name, help=help_text, description=(run.__doc__ or help_text), parents=[common])
        add(p)
        p.set_defaults(_run=run)
    return parser


def verbosity(args: argparse.Namespace) -> tuple[int, bool]:
    """(-v count, -q) of parsed arguments, given before the subcommand, after it, or both."""
    return args.verbose + getattr(args, "sub_verbose", 0), args.quiet or getattr(args, "sub_quiet", False)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.INFO if verbose <= 1 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not verbose and not quiet:
        # INFO for our own messages (truncation notes, dropped modulations...), WARNING for libraries.
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("synthmatch").setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    _setup_logging(*verbosity(args))
    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        with logging_redirect_tqdm():  # a log line clears the progress bars, then they are redrawn
            return int(args._run(args) or 0)
    except SynthmatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
