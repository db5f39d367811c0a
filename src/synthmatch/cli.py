"""The `synthmatch` command line: parse flags, call one function, print. No logic lives here.

Each subcommand is a pair: `_add_<name>(subparsers)` declares its flags (names kept from the seed
document: --tier, -n, --workers, --refine-evals, ...), `_run_<name>(args)` builds the stage's config and
calls the documented function. Heavy modules are imported inside `_run_*` so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
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
# ---------------------------------------------------------------------------------------------------
# training: precompute-mels, compute-weights, train, report
def _run_precompute_mels(args: argparse.Namespace) -> int:
    from synthmatch.audio.features import MelSettings
    from synthmatch.datagen.store import Dataset
    from synthmatch.training.data import precompute_mels

    with Dataset(args.dataset) as ds:
        sr = ds.schema.sample_rate
    settings = MelSettings(sample_rate=sr, n_fft=args.n_fft, hop_length=args.hop_length, n_mels=args.n_mels)
    out = precompute_mels(args.dataset, settings, device=args.device, batch_size=args.batch_size)
    print(f"wrote {out}")
    return 0


def _add_precompute_mels(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--dataset", type=Path, required=True, help="dataset .h5 file")
    p.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    p.add_argument("--n-mels", type=int, default=128)
    p.add_argument("--n-fft", type=int, default=2048)
    p.add_argument("--hop-length", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=64)


def _run_compute_weights(args: argparse.Namespace) -> int:
    from synthmatch.training.weights import compute_param_weights

    w = compute_param_weights(args.dataset, n_base=args.n_base, delta=args.delta, seed=args.seed)
    print(f"stored {len(w)} weights in {args.dataset} (min {w.min():.3g}, max {w.max():.3g})")
    return 0


def _add_compute_weights(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--dataset", type=Path, required=True, help="dataset .h5 file (weights are stored in it)")
    p.add_argument("--n-base", type=int, default=8, help="base presets to average over")
    p.add_argument("--delta", type=float, default=0.15, help="normalized step of each parameter")
    p.add_argument("--seed", type=int, default=0)


def _run_train(args: argparse.Namespace) -> int:
    from synthmatch.training.loop import TrainConfig, train

    cfg = TrainConfig(
        dataset=args.dataset, output_dir=args.output_dir, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs, grad_clip=args.grad_clip,
        gradient_accumulation_steps=args.gradient_accumulation_steps, label_smoothing=args.label_smoothing,
        dropout=args.dropout, model_size=args.model_size, early_stopping_patience=args.early_stopping_patience,
        num_workers=args.num_workers, seed=args.seed, device=args.device, val_fraction=args.val_fraction,
        init_from=args.init_from, freeze=args.freeze, resume=args.resume,
        perceptual_weights=args.perceptual_weights, categorical_weight=args.categorical_weight,
        compute_spectral_metrics=args.compute_spectral_metrics, spectral_examples=args.spectral_examples,
        log_audio_every=args.log_audio_every, wandb_project=args.wandb_project, wandb_mode=args.wandb_mode,
        max_steps=args.max_steps, threads=args.threads, checkpoint_every_minutes=args.checkpoint_every_minutes,
    )
    summary = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in summary.items() if k != "metrics"}, indent=1))
    return 0


def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--dataset", type=Path, required=True, help="dataset .h5 (precompute-mels first)")
    p.add_argument("-o", "--output-dir", type=Path, default=Path("checkpoints"),
                   help="run folder: checkpoints, metrics.jsonl, config.json (default: checkpoints/)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64, help="per process")
    p.add_argument("--lr", type=float, default=1e-3,
                   help="peak learning rate (AdamW). Not scaled with the number of DDP processes: "
                        "under torchrun the effective batch is batch-size x processes x accumulation; scale --lr "
                        "yourself if you want to")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-epochs", type=float, default=1.0, help="linear warm-up, then cosine decay")
    p.add_argument("--grad-clip", type=float, default=1.0, help="gradient norm clip (0: off)")
    p.add_argument("--gradient-accumulation-steps", type=int, default=1)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--model-size", default="small", help="tiny, small, base or large")
    p.add_argument("--early-stopping-patience", type=int, default=0, help="epochs without improvement (0: off)")
    p.add_argument("--num-workers", type=int, default=0, help="data loader processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of presets held out for validation")
    p.add_argument("--init-from", type=Path, help="start from an earlier checkpoint (e.g. a tier-1 model)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--freeze", dest="freeze", action="store_true", help="freeze the early backbone layers")
    g.add_argument("--no-freeze", dest="freeze", action="store_false", help="train every layer (default)")
    p.set_defaults(freeze=False)
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/latest.safetensors")
    p.add_argument("--perceptual-weights", action="store_true",
                   help="weight the continuous loss by the dataset's compute-weights")
    p.add_argument("--categorical-weight", type=float, default=0.2)
    p.add_argument("--compute-spectral-metrics", action="store_true",
                   help="render validation predictions through Vital and score them each epoch")
    p.add_argument("--spectral-examples", type=int, default=16)
    p.add_argument("--log-audio-every", type=int, default=0, help="write target/prediction WAVs every K epochs")
    p.add_argument("--wandb-project", help="also log to Weights & Biases")
    p.add_argument("--wandb-mode", choices=("online", "offline", "disabled"))
    p.add_argument("--checkpoint-every-minutes", type=float, default=10.0,
                   help="also save latest.safetensors mid-epoch this often (resume continues mid-epoch)")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many optimizer steps (debug)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")


def _run_report(args: argparse.Namespace) -> int:
    from synthmatch.training.logging import plot_report

    print(f"wrote {plot_report(args.run_dir, args.output)}")
    return 0


def _add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, help="a training run folder (holds metrics.jsonl)")
    p.add_argument("-o", "--output", type=Path, help="PNG to write (default RUN_DIR/curves.png)")


# ---------------------------------------------------------------------------------------------------
# ingest, preview
def _midi_notes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIDI notes like 48,60,72, got {text!r}") from None


def _run_ingest(args: argparse.Namespace) -> int:
    """Read Vital presets (.vital files, folders searched recursively), render each at the requested
    notes and write them as dataset rows (source "community") in the same schema as `generate`.

    Exit status: 0 when every preset was ingested, 1 when any file or row was skipped (each skip is
    a warning line naming the file and the reason, and is listed in the summary), 2 on an error.
    """
    from synthmatch.datagen.ingest import IngestConfig, ingest

    cfg = IngestConfig(
        inputs=tuple(args.inputs),
        output=args.output,
        tier=args.tier,
        midi_notes=args.midi_notes,
        sample_rate=args.sample_rate,
        duration_s=args.duration,
        note_duration_s=args.note_duration,
        append=args.append,
        overwrite=args.overwrite,
        workers=args.workers,
        silence_db=args.silence_db,
        stereo=args.stereo,
        progress=not args.quiet_progress and sys.stderr.isatty(),
        include_test_presets=args.include_test_presets,
    )
    summary = ingest(cfg)
    if args.json:
        json.dump(summary.to_dict(), sys.stdout, indent=1)
        print()
    else:
        print(summary.format())
    return 0 if summary.ok else 1


def _add_ingest(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", type=Path, nargs="+", metavar="DIR_OR_FILES", help=".vital files and/or folders")
    p.add_argument("-o", "--output", type=Path, required=True, help="dataset .h5 file to write")
    p.add_argument("--tier", type=int, choices=(1, 2, 3), help="parameter tier (default 3, or the file's)")
    p.add_argument(
        "--midi-notes", type=_midi_notes, help="notes to render each preset at (default 48,60,72, or the file's)"
    )
    p.add_argument("--append", action="store_true", help="add to an existing dataset (its schema must match)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--sample-rate", type=int, help="render sample rate in Hz (default 44100, or the file's)")
    p.add_argument("--duration", type=float, help="seconds rendered (default 2.0, or the file's)")
    p.add_argument("--note-duration", type=float, help="seconds the key is held (default 1.5, or the file's)")
    p.add_argument("--workers", type=int, help="render threads (default: every core)")
    p.add_argument(
        "--silence-db", type=float, default=-60.0, help="skip renders quieter than this RMS (dBFS, default -60)"
    )
    p.add_argument("--stereo", action="store_true", help="store stereo audio (new files)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", dest="quiet_progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--include-test-presets",
        action="store_true",
        help="also ingest the community presets reserved for evaluation (presets/community/split.json)",
    )


def _run_preview(args: argparse.Namespace) -> int:
    """Browse a dataset: a table of examples, each one's parameters in Vital's display text, its
    waveform and spectrogram, and playback at the dataset's sample rate (or export to WAV where there
    is no audio device). PATH is a .h5 file, or a folder: one dataset in it opens directly, several
    are listed to pick from. Needs the tui extra: pip install 'synthmatch[tui]'.
    """
    from synthmatch.datagen.preview import run_preview  # raises TuiUnavailable with the install command

    run_preview(args.path, export_dir=args.export_dir, page_size=args.page_size)
    return 0


def _add_preview(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, nargs="?", default=Path("."), help="a dataset .h5 file or a folder (default .)")
    p.add_argument("--export-dir", type=Path, default=Path("."), help="where `w` writes WAV files (default .)")
    p.add_argument("--page-size", type=int, default=200, help="table rows read at a time")


# (name, declare flags, run, one-line help)
_COMMANDS: list[tuple[str, Callable, Callable, str]] = [
    ("params", _add_params, _run_params, "list Vital's parameter space (name, kind, module, range, tier)"),
    ("render", _add_render, _run_render, "render a .vital preset (or 'init') to a WAV file"),
    ("infer", _add_infer, _run_infer, "match a sound (or a folder of sounds) with a Vital preset"),
    ("precompute-mels", _add_precompute_mels, _run_precompute_mels, "write a dataset's log-mel features"),
    ("compute-weights", _add_compute_weights, _run_compute_weights,
     "measure each parameter's perceptual importance and store it in the dataset"),
    ("train", _add_train, _run_train, "train a model (CPU, GPU, or multi-GPU under torchrun)"),
    ("report", _add_report, _run_report, "draw a training run's curves to PNG"),
    ("ingest", _add_ingest, _run_ingest, "add community .vital presets to a dataset (rendered, same schema)"),
    ("preview", _add_preview, _run_preview, "browse a dataset: examples, parameters, waveform, playback"),
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
