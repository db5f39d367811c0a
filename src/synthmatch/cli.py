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
from typing import Any

from synthmatch import __version__
from synthmatch.defaults import DEFAULT_SAMPLE_RATE
from synthmatch.errors import SynthmatchError
from synthmatch.synth.params import TIERS

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
    p.add_argument("--tier", type=int, choices=TIERS, help="only the controls of this tier")
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
    p.add_argument("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE)
    p.add_argument("--stereo", action="store_true")


# ---------------------------------------------------------------------------------------------------
# infer
def _run_infer(args: argparse.Namespace) -> int:
    """Match a one-shot sound (or every audio file in a folder) with a Vital preset.

    Reads the target (any format, rate and channel count), estimates its pitch and note length, starts
    from a model's prediction (-c CKPT, or the bundled default model) or a preset (--start init |
    PRESET.vital), optionally refines with CMA-ES against the real synth (--refine), and writes the .vital
    preset, plus the match's WAV and a spectrogram PNG (--render) and a Markdown tutorial (--tutorial).
    Exit status: 0 when every input matched, 1 when some inputs of a folder failed, 2 on an error.
    """
    from synthmatch.inference.pipeline import InferConfig, run_infer

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
    )
    results = run_infer(cfg)
    if args.json:
        json.dump([r.summary() for r in results], sys.stdout, indent=1)
        print()
    else:
        for r in results:
            if r.error:
                print(f"{r.input}: error: {r.error}")
                continue
            info = r.info
            loss = ""
            if "match_distance" in info:
                loss += f", distance {info['match_distance']:.3f}"
            ref = info.get("refine") or {}
            if ref and not ref.get("skipped"):
                loss += f" (refined: {ref['n_evals']} evals)"
            if info.get("fallback"):
                loss += " [fell back to Vital's init preset: the start was silent]"
            paths = list(r.outputs.values())
            outputs = f"{paths[0].with_suffix('')}.{{{','.join(p.suffix[1:] for p in paths)}}}"
            print(
                f"{r.input}: MIDI {info.get('midi_note')}{loss} -> {outputs if len(paths) > 1 else paths[0]}"
            )
        if len(results) > 1:
            print(f"matched {sum(not r.error for r in results)} of {len(results)} files into {args.output}")
    return 1 if any(r.error for r in results) else 0


def _add_infer(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-i", "--input", type=Path, nargs="+", required=True, help="audio file(s) or a folder of audio files"
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("out"),
        help="a .vital file (single input; the WAV, PNG and .md go beside it) or a folder (default: out/)",
    )
    p.add_argument(
        "-c",
        "--checkpoint",
        type=Path,
        help="model checkpoint to predict the starting preset (default: the bundled model, if any)",
    )
    p.add_argument(
        "--start", help="start from 'init' (Vital's init preset) or a .vital preset instead of a model"
    )
    p.add_argument(
        "--tier",
        type=int,
        choices=TIERS,
        help="parameter space refined without a model (default 2; a model brings its own)",
    )
    p.add_argument("--midi-note", type=int, help="MIDI note of the target (default: estimated)")
    p.add_argument("--note-duration", type=float, help="seconds the key is held (default: estimated)")
    p.add_argument(
        "--max-seconds",
        type=float,
        default=4.0,
        help="match at most this much of each target, whole (default 4; longer files are cut, with a note)",
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
    p.add_argument("--refine-evals", type=int, default=500, help="refinement budget in renders (default 500)")
    p.add_argument(
        "--refine-timeout", type=float, default=60.0, help="refinement time limit in seconds (default 60)"
    )
    p.add_argument(
        "--refine-sigma",
        type=float,
        default=0.1,
        help="CMA-ES initial step in normalized [0, 1] units (default 0.1)",
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
    p.add_argument("--workers", type=int, help="render threads (default: every core)")
    p.add_argument("--seed", type=int, default=0, help="CMA-ES seed")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary")


# ---------------------------------------------------------------------------------------------------
# demo
def _run_demo(args: argparse.Namespace) -> int:
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


def _add_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--checkpoint",
        type=Path,
        help="model checkpoint to predict the starting preset (default: the bundled model, if any)",
    )
    p.add_argument(
        "--tier", type=int, choices=TIERS, help="parameter space refined without a model (default 2)"
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=7860, help="TCP port (default 7860)")
    p.add_argument("--share", action="store_true", help="also open a public Gradio share link")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload in MB (default 20)")
    p.add_argument(
        "--max-seconds", type=float, default=30.0, help="longest accepted upload in seconds (default 30)"
    )
    p.add_argument(
        "--refine-evals", type=int, default=200, help="the evaluation budget slider's default (default 200)"
    )
    p.add_argument(
        "--max-refine-evals",
        type=int,
        default=1000,
        help="the evaluation budget slider's maximum (default 1000)",
    )
    p.add_argument(
        "--refine-timeout", type=float, default=60.0, help="refinement time limit in seconds (default 60)"
    )
    p.add_argument("--workers", type=int, help="render threads (default: every core)")


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
    p.add_argument(
        "-d", "--dataset", type=Path, required=True, help="dataset .h5 file (weights are stored in it)"
    )
    p.add_argument("--n-base", type=int, default=8, help="base presets to average over")
    p.add_argument("--delta", type=float, default=0.15, help="normalized step of each parameter")
    p.add_argument("--seed", type=int, default=0)


def _run_train(args: argparse.Namespace) -> int:
    from synthmatch.training.loop import TrainConfig, train

    cfg = TrainConfig(
        dataset=args.dataset,
        output_dir=args.output_dir,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs,
        grad_clip=args.grad_clip,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        label_smoothing=args.label_smoothing,
        dropout=args.dropout,
        model_size=args.model_size,
        early_stopping_patience=args.early_stopping_patience,
        num_workers=args.num_workers,
        seed=args.seed,
        device=args.device,
        val_fraction=args.val_fraction,
        init_from=args.init_from,
        freeze=args.freeze,
        resume=args.resume,
        perceptual_weights=args.perceptual_weights,
        categorical_weight=args.categorical_weight,
        compute_spectral_metrics=args.compute_spectral_metrics,
        spectral_examples=args.spectral_examples,
        log_audio_every=args.log_audio_every,
        wandb_project=args.wandb_project,
        wandb_mode=args.wandb_mode,
        max_steps=args.max_steps,
        threads=args.threads,
        checkpoint_every_minutes=args.checkpoint_every_minutes,
    )
    summary = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in summary.items() if k != "metrics"}, indent=1))
    return 0


def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--dataset", type=Path, required=True, help="dataset .h5 (precompute-mels first)")
    p.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=Path("checkpoints"),
        help="run folder: checkpoints, metrics.jsonl, config.json (default: checkpoints/)",
    )
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64, help="per process")
    p.add_argument(
        "--lr",
        type=float,
        default=1e-3,
        help="peak learning rate (AdamW). Not scaled with the number of DDP processes: "
        "under torchrun the effective batch is batch-size x processes x accumulation; scale --lr "
        "yourself if you want to",
    )
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-epochs", type=float, default=1.0, help="linear warm-up, then cosine decay")
    p.add_argument("--grad-clip", type=float, default=1.0, help="gradient norm clip (0: off)")
    p.add_argument("--gradient-accumulation-steps", type=int, default=1)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--model-size", default="small", help="tiny, small, base or large")
    p.add_argument(
        "--early-stopping-patience", type=int, default=0, help="epochs without improvement (0: off)"
    )
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
    p.add_argument(
        "--perceptual-weights",
        action="store_true",
        help="weight the continuous loss by the dataset's compute-weights",
    )
    p.add_argument("--categorical-weight", type=float, default=0.2)
    p.add_argument(
        "--compute-spectral-metrics",
        action="store_true",
        help="render validation predictions through Vital and score them each epoch",
    )
    p.add_argument("--spectral-examples", type=int, default=16)
    p.add_argument(
        "--log-audio-every", type=int, default=0, help="write target/prediction WAVs every K epochs"
    )
    p.add_argument("--wandb-project", help="also log to Weights & Biases")
    p.add_argument("--wandb-mode", choices=("online", "offline", "disabled"))
    p.add_argument(
        "--checkpoint-every-minutes",
        type=float,
        default=10.0,
        help="also save latest.safetensors mid-epoch this often (resume continues mid-epoch)",
    )
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
    p.add_argument("--tier", type=int, choices=TIERS, help="parameter tier (default 3, or the file's)")
    p.add_argument(
        "--midi-notes",
        type=_midi_notes,
        help="notes to render each preset at (default 48,60,72, or the file's)",
    )
    p.add_argument("--append", action="store_true", help="add to an existing dataset (its schema must match)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument(
        "--sample-rate",
        type=int,
        help=f"render sample rate in Hz (default {DEFAULT_SAMPLE_RATE}, or the file's)",
    )
    p.add_argument("--duration", type=float, help="seconds rendered (default 2.0, or the file's)")
    p.add_argument("--note-duration", type=float, help="seconds the key is held (default 1.5, or the file's)")
    p.add_argument("--workers", type=int, help="render threads (default: every core)")
    p.add_argument(
        "--silence-db",
        type=float,
        default=-60.0,
        help="skip renders quieter than this RMS (dBFS, default -60)",
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
    p.add_argument(
        "path", type=Path, nargs="?", default=Path("."), help="a dataset .h5 file or a folder (default .)"
    )
    p.add_argument(
        "--export-dir", type=Path, default=Path("."), help="where `w` writes WAV files (default .)"
    )
    p.add_argument("--page-size", type=int, default=200, help="table rows read at a time")


# ---------------------------------------------------------------------------------------------------
# generate, merge, inspect
def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shard like 0/4 (shard i of N), got {text!r}") from None
    return i, n


def _run_generate(args: argparse.Namespace) -> int:
    """Render a training dataset: sampled Vital presets (tier 1-3, optionally bred from community presets)
    rendered by worker processes. Work is kept in OUTPUT.parts/ as complete parts: an interrupted run
    (Ctrl-C, kill -9) resumes with the same command and ends with exactly the file an uninterrupted run
    writes. A worker that crashes or hangs is replaced and its example recorded as rejected.
    `--shard i/N` renders one of N contiguous shares; `synthmatch merge` joins the shards.
    """
    from synthmatch.datagen.generate import GenerateConfig, generate

    cfg = GenerateConfig(
        output=args.output,
        n=args.n,
        tier=args.tier,
        workers=args.workers,
        seed=args.seed,
        sample_rate=args.sample_rate,
        duration_s=args.duration,
        note_duration_s=args.note_duration,
        midi_notes=args.midi_notes,
        community_dirs=tuple(args.community_dir or ()),
        community_share=args.community_share,
        include_test_presets=args.include_test_presets,
        shard=args.shard,
        audio_dtype=args.audio_dtype,
        stereo=args.stereo,
        silence_db=args.silence_db,
        timeout_s=args.timeout,
        part_size=args.part_size,
        overwrite=args.overwrite,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    report = generate(cfg)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=1)
        print()
    else:
        print(report.format())
    return 0


def _add_generate(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, required=True, help="dataset .h5 file to write")
    p.add_argument("-n", type=int, required=True, help="generator indices of the whole dataset (all shards)")
    p.add_argument("--tier", type=int, choices=TIERS, default=3, help="parameter tier (default 3)")
    p.add_argument("--workers", type=int, help="worker processes (default: every core)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE, help=f"Hz (default {DEFAULT_SAMPLE_RATE})"
    )
    p.add_argument("--duration", type=float, default=2.0, help="seconds rendered (default 2.0)")
    p.add_argument("--note-duration", type=float, default=1.5, help="seconds the key is held (default 1.5)")
    p.add_argument("--midi-notes", type=_midi_notes, default=(48, 60, 72), help="default 48,60,72")
    p.add_argument(
        "--community-dir",
        type=Path,
        action="append",
        metavar="DIR",
        help="breed a share of the examples from the .vital presets here (repeatable)",
    )
    p.add_argument("--community-share", type=float, default=0.3, help="share of bred examples (default 0.3)")
    p.add_argument(
        "--include-test-presets",
        action="store_true",
        help="also breed from the community presets reserved for evaluation",
    )
    p.add_argument(
        "--shard", type=_shard, default=(0, 1), metavar="i/N", help="render shard i of N (default 0/1)"
    )
    p.add_argument("--audio-dtype", choices=("int16", "float16"), default="int16")
    p.add_argument("--stereo", action="store_true", help="store stereo audio (default mono)")
    p.add_argument(
        "--silence-db",
        type=float,
        default=-60.0,
        help="reject renders quieter than this RMS (dBFS, default -60)",
    )
    p.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per example before its worker is replaced"
    )
    p.add_argument("--part-size", type=int, default=256, help="examples per resumable part (default 256)")
    p.add_argument("--overwrite", action="store_true", help="replace an OUTPUT made by a different command")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def _run_merge(args: argparse.Namespace) -> int:
    """Join datasets (e.g. the shards of one generate run, in order) into one file, written atomically.
    Refuses inputs whose schemas differ, and pieces of one generation that overlap.
    """
    from synthmatch.datagen.store import Dataset, merge_datasets

    if args.output.exists() and not args.overwrite:
        print(f"error: {args.output} exists; add --overwrite to replace it", file=sys.stderr)
        return 2
    out = merge_datasets(args.output, args.inputs)
    with Dataset(out) as ds:
        n, rej = len(ds), sum(ds.rejections().values())
    print(f"wrote {out}: {n} examples ({rej} rejections recorded) from {len(args.inputs)} files")
    return 0


def _add_merge(p: argparse.ArgumentParser) -> None:
    p.add_argument("output", type=Path, help="merged .h5 file to write")
    p.add_argument("inputs", type=Path, nargs="+", help="dataset files, in order")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def _run_inspect(args: argparse.Namespace) -> int:
    """Summarise a dataset: counts per source and MIDI note, schema, levels, parameter statistics,
    modulation counts and rejections; or, with --sample IDX, one example's parameters in Vital's display
    text (and its audio with --wav).
    """
    from synthmatch.datagen.inspect import example_info, format_example, format_inspection, inspect_dataset

    if args.sample is not None:
        try:
            info = example_info(args.file, args.sample, wav=args.wav)
        except IndexError as exc:
            print(f"error: {args.file}: {exc}", file=sys.stderr)
            return 2
        text = format_example(info)
    else:
        if args.wav:
            print("error: --wav needs --sample IDX", file=sys.stderr)
            return 2
        info = inspect_dataset(args.file)
        text = format_inspection(info)
    if args.json:
        json.dump(info, sys.stdout, indent=1)
        print()
    else:
        print(text)
    return 0


def _add_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="dataset .h5 file")
    p.add_argument("--sample", type=int, metavar="IDX", help="describe example IDX")
    p.add_argument("--wav", type=Path, metavar="PATH", help="with --sample: write its audio to this WAV file")
    p.add_argument("--json", action="store_true", help="machine-readable output")


# ---------------------------------------------------------------------------------------------------
# eval
def _csv(text: str) -> tuple[str, ...]:
    return tuple(x.strip().replace("-", "_") for x in text.split(",") if x.strip())


def _run_eval(args: argparse.Namespace) -> int:
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


def _add_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--checkpoint",
        type=Path,
        help="model for the model and model_cmaes methods (default: the bundled model; skipped without one)",
    )
    p.add_argument(
        "--test-sets",
        help="comma-separated: in_domain,community,audio (default: in_domain,community, plus audio with --audio-dir)",
    )
    p.add_argument(
        "--audio-dir",
        type=Path,
        help="folder of audio files: the audio test set (a `synthmatch devset` folder brings known notes)",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=4.0,
        help="length of the targets, matched and scored whole (default 4; longer audio is cut)",
    )
    p.add_argument(
        "--tier",
        type=int,
        choices=TIERS,
        help="parameter space of the in-domain targets and of CMA-ES from init (default: the model's, else 2)",
    )
    p.add_argument("-n", type=int, help="in-domain targets (default 50; 3 with --quick)")
    p.add_argument(
        "--budget",
        type=int,
        help="evaluations (renders) of each search method per target (default 100; 24 with --quick)",
    )
    p.add_argument(
        "--methods",
        help="comma-separated subset of init,random,nn,model,cmaes,model_cmaes,random_search (default: all)",
    )
    p.add_argument(
        "--train-data", type=Path, metavar="FILE.h5", help="training dataset for the nearest-neighbour method"
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("out/eval"),
        help="folder for eval.md, eval.json, PNGs (default out/eval)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="CI-sized smoke run: 3 in-domain + 2 community targets of at most 1 s, budget 24",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random baselines and CMA-ES (default 0)")
    p.add_argument("--workers", type=int, help="render threads (default: every core)")


# (name, declare flags, run, one-line help)
# ---------------------------------------------------------------------------------------------------
# devset
def _run_devset(args: argparse.Namespace) -> int:
    """Write a folder of one-shot targets in the format of a producer's samples, with a manifest.

    Every file is 4 s long with the key held for the first 1.5 s, mono, 44.1 kHz, peak-normalised;
    manifest.json records each one's MIDI note (when pitched), key-held time and origin. Kinds:
    soundfont (real instruments of the General MIDI families rendered by fluidsynth from Debian's
    timgm6mb and MuseScore soundfonts, plus the synth patches), synth (small synth patches made with
    NumPy, not Vital) and in_domain (held-out presets of the dataset sampler, rendered by Vital).
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


def _add_devset(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, required=True, help="folder to write (created)")
    p.add_argument(
        "--kind",
        choices=("soundfont", "synth", "in_domain"),
        default="soundfont",
        help="soundfont: real instruments + synth patches (default); synth; in_domain: held-out presets",
    )
    p.add_argument("-n", type=int, default=30, help="in_domain targets (default 30)")
    p.add_argument("--both", action="store_true", help="soundfont: every instrument from both soundfonts")
    p.add_argument("--tier", type=int, choices=TIERS, default=2, help="in_domain presets' tier (default 2)")
    p.add_argument("--limit", type=int, help="at most this many files (a quick check)")
    p.add_argument("--overwrite", action="store_true", help="make every file anew")


_COMMANDS: list[tuple[str, Callable, Callable, str]] = [
    ("params", _add_params, _run_params, "list Vital's parameter space (name, kind, module, range, tier)"),
    ("render", _add_render, _run_render, "render a .vital preset (or 'init') to a WAV file"),
    ("infer", _add_infer, _run_infer, "match a sound (or a folder of sounds) with a Vital preset"),
    ("demo", _add_demo, _run_demo, "serve the web demo: upload or record a note, get a Vital preset"),
    ("precompute-mels", _add_precompute_mels, _run_precompute_mels, "write a dataset's log-mel features"),
    (
        "compute-weights",
        _add_compute_weights,
        _run_compute_weights,
        "measure each parameter's perceptual importance and store it in the dataset",
    ),
    ("train", _add_train, _run_train, "train a model (CPU, GPU, or multi-GPU under torchrun)"),
    ("report", _add_report, _run_report, "draw a training run's curves to PNG"),
    ("ingest", _add_ingest, _run_ingest, "add community .vital presets to a dataset (rendered, same schema)"),
    ("preview", _add_preview, _run_preview, "browse a dataset: examples, parameters, waveform, playback"),
    ("generate", _add_generate, _run_generate, "render a training dataset (parallel, resumable, shardable)"),
    ("merge", _add_merge, _run_merge, "join datasets (e.g. generate shards) into one file"),
    ("inspect", _add_inspect, _run_inspect, "summarise a dataset, or show one example's parameters"),
    ("eval", _add_eval, _run_eval, "benchmark matching methods on held-out targets (tables, JSON, plots)"),
    (
        "devset",
        _add_devset,
        _run_devset,
        "write a target set: real-instrument one-shots, synth patches, presets",
    ),
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
