"""Community presets into the dataset: `.vital` files -> tier vectors + renders, in generate's schema.

Each preset file is read into a `Preset`, projected onto the tier (`Preset.to_vector`, then back over the
preset's own wavetables, LFO shapes and sample), rendered at every requested MIDI note with the threaded
`Renderer`, and written as rows with source "community", its name and file, and seed_index -1. What is
rendered is the projection, not the original file, so the stored audio is exactly what
`Dataset.preset(i)` plays: the labels describe the sound. What the projection loses is reported:

- modulation connections: bypassed slots are skipped; connections the tier cannot represent (blocked or
  unknown source or destination, modulation of another modulation's amount, any connection below tier 3)
  are dropped, each logged at INFO with the preset name and the connection, and counted by reason;
- controls outside the tier (the host tempo, portamento...) are reset to their defaults, counted by name.

Presets that split.json declares unusable as one-note targets (NierBassLayerTwo: near -67 dBFS, its
volume raised only by an LFO synced to the host transport) are skipped with that reason, like a silent
render, but deterministically (a render of such a preset can land either side of the silence threshold)
and by design: they are listed apart and do not fail the run.

A preset whose file sounds but whose tier projection is silent at every note (what made it sound is
outside the tier: a dropped connection, a reset control) is skipped by design too: the tier cannot
represent it, and nothing is wrong with the file.

Real files go wrong in many ways. A file that is not a `.vital`, malformed JSON, a preset from a newer
Vital, a non-numeric control, a preset vita refuses, or one whose render is silent is skipped with one
warning line naming the file and the reason, and the run goes on; `IngestSummary.ok` (the CLI's exit
code) says whether anything was skipped other than by design. Settings this Vital build does not know are ignored with a
warning (presets.py) and the preset is kept. Content-identical presets (same tier projection, which
includes every identical file) are ingested once, also across `--append` runs. Clipping renders (peak
above full scale) are kept and reported: they are real presets, and int16 storage clips them.

Wavetables, LFO shapes and samples stay in the file as data: the store keeps each distinct combination
once in /preset_data, and `Dataset.asset_catalog()` lists the unique items by content hash. The summary
counts the unique items, and how many are not Vital's init ones.

The community presets reserved for evaluation (presets/community/split.json, see `community`) are left
out unless `include_test_presets` is set, so they never reach training data; the summary counts them.

Writing is atomic: a new file through `DatasetWriter(atomic=True)`; `append` copies the existing file to a
temporary one beside it, appends there, and renames it over the original only when everything succeeded.

One module per job: `config` (IngestConfig, defaults), `summary` (IngestSummary), `files` (finding and
reading .vital files), `projection` (the tier's view of a preset), `rows` (rendering and checking rows);
`ingest` here runs them.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from synthmatch.atomic import atomic_path
from synthmatch.defaults import DEFAULT_SAMPLE_RATE
from synthmatch.synth.params import param_space
from synthmatch.synth.presets import Preset, base_preset
from synthmatch.synth.render import Renderer

from ..community import is_test_preset
from ..store import ASSET_KINDS, Dataset, DatasetSchema, DatasetWriter
from .config import (
    DEFAULT_DURATION_S,
    DEFAULT_MIDI_NOTES,
    DEFAULT_NOTE_DURATION_S,
    DEFAULT_TIER,
    SILENCE_DB,
    IngestConfig,
    IngestError,
)
from .files import find_preset_files
from .projection import _Item, _prepare
from .rows import _render_rows
from .summary import IngestSummary, _skip

log = logging.getLogger("synthmatch.datagen.ingest")

__all__ = [
    "IngestConfig",
    "IngestSummary",
    "IngestError",
    "ingest",
    "find_preset_files",
    "SILENCE_DB",
    "DEFAULT_TIER",
    "DEFAULT_MIDI_NOTES",
]


def _resolve_schema(cfg: IngestConfig) -> DatasetSchema:
    if not cfg.append:
        return DatasetSchema.for_tier(
            cfg.tier or DEFAULT_TIER,
            sample_rate=cfg.sample_rate or DEFAULT_SAMPLE_RATE,
            duration_s=cfg.duration_s or DEFAULT_DURATION_S,
            note_duration_s=DEFAULT_NOTE_DURATION_S if cfg.note_duration_s is None else cfg.note_duration_s,
            midi_notes=cfg.midi_notes or DEFAULT_MIDI_NOTES,
            channels=2 if cfg.stereo else 1,
        )
    with Dataset(cfg.output) as ds:
        old = ds.schema
    notes = cfg.midi_notes or old.midi_notes
    # Rows are built for the file's settings; the writer refuses the append if anything differs
    # (parameter names, ranges, vita version, or a setting given on the command line).
    return DatasetSchema.for_tier(
        cfg.tier or old.tier,
        sample_rate=cfg.sample_rate or old.sample_rate,
        duration_s=cfg.duration_s or old.duration_s,
        note_duration_s=old.note_duration_s if cfg.note_duration_s is None else cfg.note_duration_s,
        midi_notes=notes,
        velocity=old.velocity,
        base_preset=old.base_preset,
        audio_dtype=old.audio_dtype,
        channels=old.channels,
    )


def ingest(cfg: IngestConfig) -> IngestSummary:
    """Ingest community presets into a dataset file (new, or appended to with `cfg.append`).

    Returns:
        The summary; `summary.ok` is False when a file or row was skipped.
    Raises:
        IngestError: no .vital file found, the output exists (without --append/--overwrite), or no
            row could be written.
        DatasetError: --append to a missing file or one whose schema differs.
    """
    t0 = time.perf_counter()
    if cfg.output.exists() and not (cfg.append or cfg.overwrite):
        raise IngestError(
            f"{cfg.output} exists: use --append to add the presets to it, or --overwrite to replace it"
        )
    if cfg.append and not cfg.output.exists():
        raise IngestError(f"{cfg.output}: no such dataset to append to (leave out --append to create it)")
    files, rejected = find_preset_files(cfg.inputs)
    if not files and not rejected:
        raise IngestError(
            f"no .vital files found in {', '.join(str(p) for p in cfg.inputs)} (folders are searched recursively)"
        )
    left_out = [] if cfg.include_test_presets else [f for f in files if is_test_preset(f)]
    if left_out:
        dropped_out = set(left_out)
        files = [f for f in files if f not in dropped_out]
        log.info(
            "left out %d community preset(s) reserved for evaluation (presets/community/split.json; "
            "--include-test-presets keeps them)",
            len(left_out),
        )
        if not files and not rejected:
            raise IngestError(
                f"every preset found ({len(left_out)}) is reserved for evaluation "
                "(presets/community/split.json); pass --include-test-presets to ingest them anyway"
            )
    schema = _resolve_schema(cfg)
    summary = IngestSummary(
        output=str(cfg.output),
        tier=schema.tier,
        midi_notes=schema.midi_notes,
        sample_rate=schema.sample_rate,
        files_found=len(files) + len(rejected),
        left_out_test=[str(f) for f in left_out],
    )
    for f, reason in rejected:
        _skip(summary, f, reason)
    if not files:
        raise IngestError(f"nothing to ingest: every input was skipped ({len(rejected)} input(s))")

    try:
        if cfg.append:
            with atomic_path(cfg.output, suffix=".h5") as tmp:
                shutil.copyfile(cfg.output, tmp)
                writer = DatasetWriter(tmp, schema, mode="a")
                try:
                    _run(cfg, schema, files, writer, summary, _known_hashes(writer))
                    notes = sorted(set(writer.schema.midi_notes) | set(schema.midi_notes))
                    writer.set_attrs(midi_notes=np.array(notes, np.int64))
                    summary.rows_in_file = len(writer)
                finally:
                    writer.close()
                if summary.rows_written == 0:
                    raise _NothingWritten  # atomic_path drops the copy: the original is untouched
        else:
            with DatasetWriter(cfg.output, schema, mode="w", atomic=True) as writer:
                _run(cfg, schema, files, writer, summary, {})
                summary.rows_in_file = len(writer)
                if summary.rows_written == 0:
                    raise _NothingWritten  # the writer aborts: no file is created
    except _NothingWritten:
        raise IngestError(
            f"no rows were written: all {summary.files_found} preset file(s) were skipped or are already "
            f"in the file ({'the file is unchanged' if cfg.append else 'no file was created'})"
        ) from None
    summary.seconds = time.perf_counter() - t0
    return summary


class _NothingWritten(Exception):
    """Unwinds the writers so they discard their temporary files."""


def _known_hashes(writer: DatasetWriter) -> dict[str, str]:
    h = writer.h5
    if len(writer) == 0:
        return {}
    hashes = h["preset_hash"][:]
    files = h["file"][:]
    return {
        hx.decode(): (f.decode() if isinstance(f, bytes) else str(f)) or "an existing row"
        for hx, f in zip(hashes, files)
    }


def _run(
    cfg: IngestConfig,
    schema: DatasetSchema,
    files: Sequence[Path],
    writer: DatasetWriter,
    summary: IngestSummary,
    known: dict[str, str],
) -> None:
    ps = param_space()
    ts = ps.tier(schema.tier)
    base = base_preset(schema.base_preset)
    init_items = {k: set(v) for k, v in Preset.init().data.item_hashes().items()}
    assets: dict[str, set[str]] = {k: set() for k in ASSET_KINDS}
    seen: dict[str, str] = dict(known)  # projection hash -> file it came from
    seen_original: dict[str, str] = {}
    progress = _progress(len(files), cfg.progress)
    with Renderer(sample_rate=schema.sample_rate, n_threads=cfg.workers) as renderer:
        for start in range(0, len(files), cfg.batch_size):
            batch: list[_Item] = []
            for path in files[start : start + cfg.batch_size]:
                item = _prepare(path, ts, base, ps, summary, seen, seen_original)
                if item is not None:
                    batch.append(item)
            rows = _render_rows(batch, schema, renderer, cfg.silence_db, summary, ps)
            writer.append(rows)
            summary.rows_written += len(rows)
            written = {r.file for r in rows}
            for item in batch:
                if item.file in written:
                    summary.presets_ingested += 1
                    for kind, hashes in item.preset.data.item_hashes().items():
                        assets[kind].update(hashes)
            progress.update(min(cfg.batch_size, len(files) - start))
    progress.close()
    summary.unique_assets = {k: len(v) for k, v in assets.items()}
    summary.custom_assets = {k: len(v - init_items.get(k, set())) for k, v in assets.items()}


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(total=total, unit="preset", desc="ingest", leave=False)
