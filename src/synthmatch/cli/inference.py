"""Matching commands: `infer` and the web `demo`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from synthmatch.cli import flags
from synthmatch.defaults import DEFAULT_SAMPLE_RATE

if TYPE_CHECKING:
    from synthmatch.inference.pipeline import MatchResult

log = logging.getLogger("synthmatch")


def run_infer(args: argparse.Namespace) -> int:
    """Match a one-shot sound (or every audio file in a folder) with a Vital preset.

    Reads the target (any format, rate and channel count), estimates its pitch and note length, starts
    from a model's prediction (-c CKPT, or the bundled default model) or a preset (--start init |
    PRESET.vital), optionally refines with CMA-ES against the real synth (--refine), and writes the .vital
    preset, plus the match's WAV and a spectrogram PNG (--render) and a Markdown tutorial (--tutorial).
    --wavetable target gives oscillator 1 a wavetable made from the target's harmonics over the note.
    Each input's line is printed as soon as it is done (with --json, a failing input's line goes to
    stderr and the list is printed at the end). Ctrl-C during a refinement keeps the best match found so
    far: it is finished, written and reported, and the run stops there (a second Ctrl-C stops at once).
    Exit status: 0 when every input matched, 1 when some inputs of a folder failed, 2 on an error, 130
    when interrupted.
    """
    from tqdm import tqdm

    from synthmatch.inference.pipeline import InferConfig, MatchInterrupted, run_infer

    cfg = InferConfig(
        inputs=tuple(args.input),
        output=args.output,
        checkpoint=args.checkpoint,
        start=args.start,
        tier=args.tier,
        midi_note=args.midi_note,
        note_duration_s=args.note_duration,
        max_seconds=args.max_seconds,
        refine=args.refine,
        refine_evals=args.refine_evals,
        refine_timeout_s=args.refine_timeout,
        refine_sigma=args.refine_sigma,
        render=args.render,
        tutorial=args.tutorial,
        sample_rate=args.sample_rate,
        workers=args.workers,
        seed=args.seed,
        progress=sys.stderr.isatty(),
        overwrite=args.overwrite,
        candidates=args.candidates,
        starts=args.starts,
        discrete=args.discrete,
        index=args.index,
        wavetable=args.wavetable,
    )

    def show(r: MatchResult) -> None:
        if args.json and not r.error:
            return  # in the list at the end
        out = sys.stderr if args.json else sys.stdout
        # above the progress bar (tqdm.write clears and redraws it), flushed: a pipe sees it now too
        tqdm.write(_result_line(r), file=out)
        out.flush()

    stopped: MatchResult | None = None
    try:
        results = run_infer(cfg, on_result=show)
    except MatchInterrupted as stop:
        results, stopped = stop.results, stop.result
    if args.json:
        json.dump([r.summary() for r in results], sys.stdout, indent=1)
        print()
    elif len(results) > 1 and stopped is None:
        print(f"matched {sum(not r.error for r in results)} of {len(results)} files into {args.output}")
    if stopped is not None:
        if stopped.error:
            print(f"interrupted: {stopped.input} was not written", file=sys.stderr)
        else:
            renders = stopped.info.get("renders", "?")
            print(
                f"interrupted: kept the best match so far ({renders} of {cfg.refine_evals} renders) "
                f"-> {stopped.preset_path}",
                file=sys.stderr,
            )
        return 130
    return 1 if any(r.error for r in results) else 0


def _result_line(r: MatchResult) -> str:
    """One input's line: its note, distance, refinement and files, or its error."""
    if r.error:
        # the error names the file already (most do): said once
        return f"{r.input}: error: {r.error.removeprefix(f'{r.input}: ')}"
    from synthmatch.audio.pitch import note_name
    from synthmatch.audio.verdict import Verdict

    info = r.info
    midi = info.get("midi_note")
    line = f"{r.input}: MIDI {midi}" + (f" ({note_name(midi)})" if isinstance(midi, int) else "")
    score = info.get("verdict")  # the pipeline's, of the distance measured on a fresh render of the .vital
    if score:
        line += f", {Verdict.from_dict(score).text}"
    elif "match_distance" in info:
        line += f", distance {info['match_distance']}"
    ref = info.get("refine") or {}
    if ref and not ref.get("skipped"):
        renders = info.get("renders", ref["n_evals"])  # with several candidates: all of theirs
        line += f" (refined: {renders} renders{', interrupted' if r.interrupted else ''})"
    if info.get("fallback"):
        line += " [fell back to Vital's init preset: the start was silent]"
    elif (info.get("wavetable") or {}).get("used") == "target":
        line += " [oscillator 1: a wavetable made from the sound]"
    others = info.get("candidates") or []
    if len(others) > 1:
        line += "; other candidates: " + ", ".join(
            f"{c['similarity']}/100" if "similarity" in c else "silent" for c in others[1:]
        )
    best = [p for k, p in r.outputs.items() if "." not in k]  # "preset", "audio"...: not "preset.2"
    outputs = (
        best[0] if len(best) == 1 else f"{best[0].with_suffix('')}.{{{','.join(p.suffix[1:] for p in best)}}}"
    )
    if len(others) > 1:
        outputs = f"{outputs} (and {best[0].stem}.2 ... {best[0].stem}.{len(others)})"
    return f"{line} -> {outputs}"


def _kinds(text: str) -> tuple[str, ...]:
    """--starts: a comma-separated list (checked by InferConfig, which says what is allowed)."""
    return tuple(k.strip() for k in text.split(",") if k.strip())


def add_infer(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-i", "--input", type=Path, nargs="+", required=True, help="audio file(s) or a folder of audio files"
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("out"),
        help="a .vital file (single input; the WAV, PNG and .md go beside it) or a folder (default: %(default)s)",
    )
    flags.checkpoint(p, "model checkpoint to predict the starting preset")
    p.add_argument(
        "--start",
        help="start from 'init' (Vital's init preset) or a .vital preset instead of a model "
        "(default: the model; Vital's init preset without one)",
    )
    flags.search_tier(p, "parameter space refined without a model")
    p.add_argument("--midi-note", type=int, help="MIDI note of the target (default: estimated)")
    p.add_argument("--note-duration", type=float, help="seconds the key is held (default: estimated)")
    p.add_argument(
        "--max-seconds",
        type=float,
        default=4.0,
        help="match at most this much of each target, whole (default %(default)s; longer files are cut, with a note)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--refine",
        dest="refine",
        action="store_true",
        help="refine the start with CMA-ES against the real synth",
    )
    g.add_argument("--no-refine", dest="refine", action="store_false", help="no refinement (default)")
    p.set_defaults(refine=False)
    p.add_argument(
        "--refine-evals", type=int, default=500, help="refinement budget in renders (default %(default)s)"
    )
    flags.refine_timeout(p)
    p.add_argument(
        "--candidates",
        type=int,
        help="with --refine: write the K best distinct matches, ranked (NAME.vital the best, NAME.2.vital...), "
        "from several starts sharing the budget (default 3; 1: one start)",
    )
    p.add_argument(
        "--starts",
        type=_kinds,
        default=("model", "alternatives", "neighbours", "init"),
        help="where candidates start, comma-separated: model (its prediction), alternatives (its top "
        "discrete alternatives), neighbours (nearest sounds in the index), init (default: all four)",
    )
    p.add_argument(
        "--discrete",
        choices=("none", "catcma"),
        default="none",
        help="search categorical controls too: catcma (mixed-variable CMA-ES over the least confident ones); "
        "none: only continuous controls (default)",
    )
    p.add_argument(
        "--index",
        type=Path,
        help="nearest-neighbour index for neighbour starts (`synthmatch index`; default: the bundled one)",
    )
    p.add_argument(
        "--wavetable",
        default="basic",
        help="oscillator 1's wavetable: basic (Basic Shapes, default), target (made from the target's "
        "harmonics over the note, its frame moved by an envelope; an unpitched or inharmonic target keeps "
        "basic and says so) or auto (provisional: target for pitched, harmonic targets, else basic)",
    )
    p.add_argument(
        "--refine-sigma",
        type=float,
        default=0.1,
        help="CMA-ES initial step in normalized [0, 1] units (default %(default)s)",
    )
    p.add_argument("--render", action="store_true", help="also write the match as WAV and a spectrogram PNG")
    p.add_argument(
        "--tutorial", action="store_true", help="also write a Markdown guide to rebuild it in Vital"
    )
    p.add_argument(
        "--sample-rate",
        type=int,
        help=f"render rate in Hz (default: the model's, else {DEFAULT_SAMPLE_RATE})",
    )
    flags.workers(p)
    p.add_argument("--seed", type=int, default=0, help="CMA-ES seed (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that exist (default: refuse)")


def run_index(args: argparse.Namespace) -> int:
    """Build a nearest-neighbour index of a dataset's sounds, for the neighbour starts of
    `infer --candidates` (`--index INDEX`; a small one ships beside the default model).

    Each example is indexed by an embedding of its log-mel features (band energies over time) and its
    generator index: a generated example is a pure function of seed, index and tier, so its preset is
    drawn again when needed, not stored. Only the random draws of a `generate` run without community
    presets can be rebuilt that way; other rows are left out and counted. Refuses to replace INDEX
    without --overwrite.
    """
    from synthmatch.inference.export import refuse_existing
    from synthmatch.inference.retrieval import build_index

    if not args.overwrite:
        refuse_existing([args.output])
    summary = build_index(args.dataset, args.output, progress=sys.stderr.isatty())
    left = ", ".join(f"{v} {k}" for k, v in summary["left_out"].items() if v)
    print(
        f"indexed {summary['examples']} of {summary['dataset_rows']} examples into {summary['index']} "
        f"({summary['bytes'] / 1e6:.1f} MB, {summary['seconds']:.0f} s)"
        + (f"; left out: {left}" if left else "")
    )
    return 0


def add_index(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--dataset", type=Path, required=True, help="dataset file (.h5) written by generate")
    p.add_argument("-o", "--output", type=Path, required=True, help="index file to write (.safetensors)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing index")


def run_demo(args: argparse.Namespace) -> int:
    """Serve the web demo: upload or record a note, get a Vital preset that sounds like it.

    The page matches with the same pipeline as `infer` (model from -c, else the bundled model, else
    Vital's init preset; optional CMA-ES refinement with an evaluation budget) and shows the match's
    audio, the target and match spectrograms, the .vital download, the tutorial, the parameters with the
    model's confidences and the refinement statistics. Listens on 127.0.0.1 unless --host or --share;
    uploads are bounded by --max-upload-mb and --max-seconds. Ctrl-C stops it and removes its temporary
    files. Needs the web extra: pip install 'synthmatch[web]'.
    """
    from synthmatch.web.demo import DemoConfig

    cfg = DemoConfig(
        checkpoint=args.checkpoint,
        tier=args.tier,
        host=args.host,
        port=args.port,
        share=args.share,
        max_upload_mb=args.max_upload_mb,
        max_seconds=args.max_seconds,
        refine_evals=args.refine_evals,
        max_refine_evals=args.max_refine_evals,
        refine_timeout_s=args.refine_timeout,
        workers=args.workers,
    )
    from synthmatch.web.app import launch  # raises WebUnavailable with the install command

    def ready(running) -> None:
        print(
            f"synthmatch demo on {running.url} (starting from {running.demo.start_description}); Ctrl-C stops"
        )
        if running.share_url:
            print(f"public link: {running.share_url}")

    launch(cfg, block=True, on_ready=ready)
    return 0


def add_demo(p: argparse.ArgumentParser) -> None:
    flags.checkpoint(p, "model checkpoint to predict the starting preset")
    flags.search_tier(p, "parameter space refined without a model")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=7860, help="TCP port (default %(default)s)")
    p.add_argument("--share", action="store_true", help="also open a public Gradio share link")
    p.add_argument(
        "--max-upload-mb", type=float, default=20.0, help="largest upload in MB (default %(default)s)"
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=30.0,
        help="longest accepted upload in seconds (default %(default)s)",
    )
    p.add_argument(
        "--refine-evals",
        type=int,
        default=200,
        help="the evaluation budget slider's default (default %(default)s)",
    )
    p.add_argument(
        "--max-refine-evals",
        type=int,
        default=1000,
        help="the evaluation budget slider's maximum (default %(default)s)",
    )
    flags.refine_timeout(p)
    flags.workers(p)
