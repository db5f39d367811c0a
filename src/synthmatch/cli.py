"""The `synthmatch` command line: parse flags, call one function, print. No logic lives here.

Each subcommand is a pair: `_add_<name>(subparsers)` declares its flags (names kept from the seed
document: --tier, -n, --workers, --refine-evals, ...), `_run_<name>(args)` builds the stage's config and
calls the documented function. Heavy modules are imported inside `_run_*` so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from synthmatch import __version__
from synthmatch.errors import SynthmatchError

log = logging.getLogger("synthmatch")


# ---------------------------------------------------------------------------------------------------
# params
def _run_params(args: argparse.Namespace) -> int:
    from synthmatch.synth.params import param_space

    ps = param_space()
    rows = ps.records(tier=args.tier, include_excluded=args.all)
    if args.json:
        ts = ps.tier(args.tier) if args.tier else None
        doc = {"tier": args.tier, "controls": rows}
        if ts is not None:
            doc["counts"] = {
                "continuous": len(ts.continuous),
                "categorical": len(ts.categorical),
                "modulation_sources": len(ts.mod_sources),
                "modulation_destinations": len(ts.mod_destinations),
            }
            if ts.has_modulation:
                doc["modulation_sources"] = list(ts.mod_sources)
                doc["modulation_destinations"] = list(ts.mod_destinations)
        json.dump(doc, sys.stdout, indent=1)
        print()
        return 0
    print(f"{'name':34} {'kind':11} {'module':12} {'range':>24} {'default':>10} tier")
    for r in rows:
        rng = f"[{r['min']:g}, {r['max']:g}]"
        tier = r["tier"] if r["tier"] is not None else f"- ({r['excluded_reason']})"
        print(f"{r['name']:34} {r['kind']:11} {r['module']:12} {rng:>24} {r['default']:>10.4g} {tier}")
    if args.tier:
        ts = ps.tier(args.tier)
        print(
            f"\ntier {args.tier}: {len(ts.continuous)} continuous, {len(ts.categorical)} categorical/switch"
            + (
                f", modulation {len(ts.mod_sources)} sources x {len(ts.mod_destinations)} destinations"
                if ts.has_modulation
                else ""
            )
        )
    return 0


def _add_params(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tier", type=int, choices=(1, 2, 3), help="only the controls of this tier")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--all", action="store_true", help="with --tier: also list controls outside it")


# ---------------------------------------------------------------------------------------------------
# render
def _run_render(args: argparse.Namespace) -> int:
    from synthmatch.audio.io import write_wav
    from synthmatch.synth.presets import Preset
    from synthmatch.synth.render import Renderer

    preset = Preset.init() if args.preset == "init" else Preset.load(args.preset)
    with Renderer(sample_rate=args.sample_rate, n_threads=1) as r:
        audio = r.render(preset, args.midi_note, args.note_duration, args.duration, stereo=args.stereo)
    write_wav(args.output, audio, args.sample_rate)
    print(f"wrote {args.output} ({args.duration:g} s, note {args.midi_note}, {args.sample_rate} Hz)")
    return 0


def _add_render(p: argparse.ArgumentParser) -> None:
    p.add_argument("preset", help="a .vital file, or 'init' for Vital's init preset")
    p.add_argument("-o", "--output", type=Path, required=True, help="WAV file to write")
    p.add_argument("--midi-note", type=int, default=60)
    p.add_argument("--note-duration", type=float, default=1.5, help="seconds the key is held")
    p.add_argument("--duration", type=float, default=2.0, help="seconds rendered")
    p.add_argument("--sample-rate", type=int, default=44100)
    p.add_argument("--stereo", action="store_true")


# ---------------------------------------------------------------------------------------------------
# infer
def _run_infer(args: argparse.Namespace) -> int:
    from synthmatch.inference.pipeline import InferConfig, run_infer

    cfg = InferConfig(
        inputs=tuple(args.input),
        output=args.output,
        start=args.start,
        midi_note=args.midi_note,
        note_duration_s=args.note_duration,
        render=args.render,
        sample_rate=args.sample_rate,
    )
    results = run_infer(cfg)
    if args.json:
        json.dump([r.summary() for r in results], sys.stdout, indent=1)
        print()
    else:
        for r in results:
            outputs = ", ".join(str(p) for p in (r.preset_path, r.audio_path) if p)
            print(f"{r.input}: {('error: ' + r.error) if r.error else '-> ' + outputs}")
    failed = [r for r in results if r.error]
    return 1 if failed else 0


def _add_infer(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-i", "--input", type=Path, nargs="+", required=True, help="audio file(s) or a folder of audio files"
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("out"),
        help="a .vital file (single input) or a folder for the results (default: out/)",
    )
    p.add_argument("--start", default="init", help="starting point: 'init' or a .vital preset")
    p.add_argument("--midi-note", type=int, help="MIDI note of the target (default: 60)")
    p.add_argument("--note-duration", type=float, help="seconds the key is held in the render")
    p.add_argument("--render", action="store_true", help="also write the match as WAV")
    p.add_argument("--sample-rate", type=int, default=44100)
    p.add_argument("--json", action="store_true", help="print a machine-readable summary")


# ---------------------------------------------------------------------------------------------------
# (name, declare flags, run, one-line help)
_COMMANDS: list[tuple[str, Callable, Callable, str]] = [
    ("params", _add_params, _run_params, "list Vital's parameter space (name, kind, module, range, tier)"),
    ("render", _add_render, _run_render, "render a .vital preset (or 'init') to a WAV file"),
    ("infer", _add_infer, _run_infer, "match a sound (or a folder of sounds) with a Vital preset"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthmatch",
        description="Turn a one-shot sound into a Vital preset: generate data, train, match, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"synthmatch {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, add, run, help_text in _COMMANDS:
        p = sub.add_parser(name, help=help_text, description=(run.__doc__ or help_text))
        add(p)
        p.set_defaults(_run=run)
    return parser


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
    _setup_logging(args.verbose, args.quiet)
    try:
        return int(args._run(args) or 0)
    except SynthmatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
