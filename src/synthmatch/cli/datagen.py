"""Dataset commands: `generate`, `merge`, `inspect`, `ingest`, `preview`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from synthmatch.cli import flags
from synthmatch.defaults import DATASET_TIER, DEFAULT_SAMPLE_RATE

log = logging.getLogger("synthmatch")


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shard like 0/4 (shard i of N), got {text!r}") from None
    return i, n


def run_generate(args: argparse.Namespace) -> int:
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


def add_generate(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, required=True, help="dataset .h5 file to write")
    p.add_argument("-n", type=int, required=True, help="generator indices of the whole dataset (all shards)")
    flags.tier(p, "parameter tier", default=DATASET_TIER)
    flags.workers(p, "worker processes")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default %(default)s)")
    p.add_argument(
        "--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE, help=f"Hz (default {DEFAULT_SAMPLE_RATE})"
    )
    p.add_argument("--duration", type=float, default=2.0, help="seconds rendered (default %(default)s)")
    p.add_argument(
        "--note-duration", type=float, default=1.5, help="seconds the key is held (default %(default)s)"
    )
    p.add_argument("--midi-notes", type=_midi_notes, default=(48, 60, 72), help="default 48,60,72")
    p.add_argument(
        "--community-dir",
        type=Path,
        action="append",
        metavar="DIR",
        help="breed a share of the examples from the .vital presets here (repeatable; default: none, "
        "every example sampled)",
    )
    p.add_argument(
        "--community-share", type=float, default=0.3, help="share of bred examples (default %(default)s)"
    )
    p.add_argument(
        "--include-test-presets",
        action="store_true",
        help="also breed from the community presets reserved for evaluation",
    )
    p.add_argument(
        "--shard", type=_shard, default=(0, 1), metavar="i/N", help="render shard i of N (default 0/1)"
    )
    p.add_argument(
        "--audio-dtype",
        choices=("int16", "float16"),
        default="int16",
        help="how audio is stored (default %(default)s)",
    )
    p.add_argument("--stereo", action="store_true", help="store stereo audio (default mono)")
    p.add_argument(
        "--silence-db",
        type=float,
        default=-60.0,
        help="reject renders quieter than this RMS (dBFS, default -60)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds per example before its worker is replaced (default %(default)s)",
    )
    p.add_argument(
        "--part-size", type=int, default=256, help="examples per resumable part (default %(default)s)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an OUTPUT made by a different command")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def run_merge(args: argparse.Namespace) -> int:
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


def add_merge(p: argparse.ArgumentParser) -> None:
    p.add_argument("output", type=Path, help="merged .h5 file to write")
    p.add_argument("inputs", type=Path, nargs="+", help="dataset files, in order")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def run_inspect(args: argparse.Namespace) -> int:
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


def add_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="dataset .h5 file")
    p.add_argument(
        "--sample", type=int, metavar="IDX", help="describe example IDX (default: summarise the dataset)"
    )
    p.add_argument(
        "--wav",
        type=Path,
        metavar="PATH",
        help="with --sample: write its audio to this WAV file (default: no WAV)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _midi_notes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIDI notes like 48,60,72, got {text!r}") from None


def run_ingest(args: argparse.Namespace) -> int:
    """Read Vital presets (.vital files, folders searched recursively), render each at the requested
    notes and write them as dataset rows (source "community") in the same schema as `generate`.

    Exit status: 0 when every preset was ingested or left out by design (the evaluation presets, and
    those split.json declares unusable as one-note targets), 1 when any other file or row was skipped
    (each skip is a warning line naming the file and the reason, and is listed in the summary), 2 on an
    error.
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


def add_ingest(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", type=Path, nargs="+", metavar="DIR_OR_FILES", help=".vital files and/or folders")
    p.add_argument("-o", "--output", type=Path, required=True, help="dataset .h5 file to write")
    flags.tier(p, "parameter tier", when_unset=f"{DATASET_TIER}, or the file's")
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
    flags.workers(p)
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


def run_preview(args: argparse.Namespace) -> int:
    """Browse a dataset: a table of examples, each one's parameters in Vital's display text, its
    waveform and spectrogram, and playback at the dataset's sample rate (or export to WAV where there
    is no audio device). PATH is a .h5 file, or a folder: one dataset in it opens directly, several
    are listed to pick from. Needs the tui extra: pip install 'synthmatch[tui]'.
    """
    from synthmatch.datagen.preview import run_preview  # raises TuiUnavailable with the install command

    run_preview(args.path, export_dir=args.export_dir, page_size=args.page_size)
    return 0


def add_preview(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "path",
        type=Path,
        nargs="?",
        default=Path("."),
        help="a dataset .h5 file or a folder (default %(default)s)",
    )
    p.add_argument(
        "--export-dir", type=Path, default=Path("."), help="where `w` writes WAV files (default %(default)s)"
    )
    p.add_argument(
        "--page-size", type=int, default=200, help="table rows read at a time (default %(default)s)"
    )
