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
render, but deterministically: a render of such a preset can land either side of the silence threshold.

Real files go wrong in many ways. A file that is not a `.vital`, malformed JSON, a preset from a newer
Vital, a non-numeric control, a preset vita refuses, or one whose render is silent is skipped with one
warning line naming the file and the reason, and the run goes on; `IngestSummary.ok` (the CLI's exit
code) says whether anything was skipped. Settings this Vital build does not know are ignored with a
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
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from synthmatch.atomic import atomic_path
from synthmatch.defaults import DEFAULT_SAMPLE_RATE
from synthmatch.errors import ConfigError, SynthmatchError
from synthmatch.synth.params import N_MOD_SLOTS, TIERS, ParamSpace, TierSpace, param_space
from synthmatch.synth.presets import Modulation, Preset, PresetError, base_preset
from synthmatch.synth.render import Renderer

from .community import COMMUNITY_DIR, is_test_preset, unusable_preset_names
from .store import ASSET_KINDS, Dataset, DatasetSchema, DatasetWriter, ExampleRow

log = logging.getLogger(__name__)

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

# Same defaults as `generate`, so ingested and generated data merge.
DEFAULT_TIER = 3
DEFAULT_MIDI_NOTES = (48, 60, 72)
DEFAULT_DURATION_S = 2.0
DEFAULT_NOTE_DURATION_S = 1.5
# A render whose RMS is below this is silent (the dataset generator's threshold).
SILENCE_DB = -60.0
# Larger files are not presets (the biggest community preset, with a 257-frame wavetable, is 3 MB).
MAX_FILE_BYTES = 64 * 1024 * 1024
PRESET_SUFFIX = ".vital"


class IngestError(SynthmatchError, ValueError):
    """Ingestion that cannot start or produced nothing (no presets found, every file skipped...)."""


@dataclass(frozen=True)
class IngestConfig:
    """What `synthmatch ingest` does.

    Settings left at None come from the existing file with `append`, and otherwise take `generate`'s
    defaults (tier 3, notes 48/60/72, 44100 Hz, 2.0 s renders with the key held 1.5 s, mono).

    Args:
        inputs: .vital files and folders (searched recursively for *.vital).
        output: the dataset file to write (or extend with `append`).
        tier: 1, 2 or 3.
        midi_notes: notes each preset is rendered at (one row each).
        sample_rate, duration_s, note_duration_s: the render; must match the file when appending.
        append: add rows to an existing dataset (its schema must match).
        overwrite: replace an existing output file.
        workers: render threads (default: every core).
        silence_db: rows whose render RMS is below this are skipped as silent.
        stereo: store stereo audio (new files only).
        batch_size: presets read and rendered together (bounds memory on large folders).
        progress: show a progress bar.
        include_test_presets: also ingest the community presets reserved for evaluation
            (presets/community/split.json); left out by default so they never reach training data.
    """

    inputs: tuple[Path, ...]
    output: Path
    tier: int | None = None
    midi_notes: tuple[int, ...] | None = None
    sample_rate: int | None = None
    duration_s: float | None = None
    note_duration_s: float | None = None
    append: bool = False
    overwrite: bool = False
    workers: int | None = None
    silence_db: float = SILENCE_DB
    stereo: bool = False
    batch_size: int = 16
    progress: bool = True
    include_test_presets: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(Path(p) for p in self.inputs))
        object.__setattr__(self, "output", Path(self.output))
        if not self.inputs:
            raise ConfigError("ingest needs at least one .vital file or folder")
        if self.tier is not None and self.tier not in TIERS:
            raise ConfigError(f"--tier must be 1, 2 or 3, got {self.tier}")
        if self.midi_notes is not None:
            notes = tuple(int(n) for n in self.midi_notes)
            if not notes or any(not 0 <= n <= 127 for n in notes) or len(set(notes)) != len(notes):
                raise ConfigError(
                    f"--midi-notes must be distinct MIDI notes in 0..127, e.g. 48,60,72; got {self.midi_notes}"
                )
            object.__setattr__(self, "midi_notes", notes)
        if self.sample_rate is not None and not 8000 <= self.sample_rate <= 192000:
            raise ConfigError(f"--sample-rate must be in 8000..192000 Hz, got {self.sample_rate}")
        if self.duration_s is not None and not 0 < self.duration_s <= 60:
            raise ConfigError(f"--duration must be in (0, 60] seconds, got {self.duration_s}")
        if self.note_duration_s is not None and self.note_duration_s < 0:
            raise ConfigError(f"--note-duration must be >= 0 seconds, got {self.note_duration_s}")
        if self.append and self.overwrite:
            raise ConfigError("--append and --overwrite exclude each other")
        if self.append and self.stereo:
            raise ConfigError("--stereo applies to new files; an appended file keeps its own channels")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if not math.isfinite(self.silence_db):
            raise ConfigError(f"--silence-db must be a number of dBFS, got {self.silence_db}")


@dataclass
class IngestSummary:
    """What an ingestion did: rows, skips with reasons, dropped connections, unique structured data."""

    output: str
    tier: int
    midi_notes: tuple[int, ...]
    sample_rate: int
    files_found: int = 0
    presets_ingested: int = 0
    rows_written: int = 0
    rows_in_file: int = 0
    skipped_files: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    skipped_rows: list[tuple[str, int, str]] = field(default_factory=list)  # (file, note, reason)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (file, what it duplicates)
    connections_total: int = 0
    connections_kept: int = 0
    dropped_connections: Counter = field(default_factory=Counter)  # reason -> count
    reset_controls: Counter = field(default_factory=Counter)  # control outside the tier -> presets
    clipped_rows: list[tuple[str, int, float]] = field(default_factory=list)  # (file, note, peak)
    ignored_settings: list[tuple[str, list[str]]] = field(default_factory=list)  # (file, names)
    unique_assets: dict[str, int] = field(default_factory=dict)  # kind -> unique items
    custom_assets: dict[str, int] = field(default_factory=dict)  # kind -> unique items not in init
    left_out_test: list[str] = field(default_factory=list)  # evaluation presets not ingested
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing was skipped (duplicates are not skips: their content is in the file)."""
        return not self.skipped_files and not self.skipped_rows

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dropped_connections"] = dict(self.dropped_connections.most_common())
        d["reset_controls"] = dict(self.reset_controls.most_common())
        d["ok"] = self.ok
        return d

    def format(self) -> str:
        """The human-readable end-of-run summary."""
        notes = ",".join(str(n) for n in self.midi_notes)
        lines = [
            f"ingested {self.presets_ingested} of {self.files_found} preset file(s) into {self.output}: "
            f"{self.rows_written} rows (tier {self.tier}, notes {notes}, {self.sample_rate} Hz; "
            f"{self.rows_in_file} rows in the file) in {self.seconds:.1f} s",
        ]
        dropped = sum(self.dropped_connections.values())
        lines.append(
            f"modulation: {self.connections_total} connection(s) read, {self.connections_kept} kept, "
            f"{dropped} dropped"
        )
        for reason, n in self.dropped_connections.most_common():
            lines.append(f"  {n:5d}  {reason}")
        if self.reset_controls:
            shown = ", ".join(f"{k} ({n})" for k, n in self.reset_controls.most_common(8))
            more = len(self.reset_controls) - 8
            lines.append(
                f"controls outside tier {self.tier} reset to their defaults (presets): {shown}"
                + (f" and {more} more" if more > 0 else "")
            )
        kinds = {"wavetables": "wavetables", "lfos": "LFO shapes", "sample": "samples"}
        lines.append(
            "unique structured data: "
            + ", ".join(
                f"{self.unique_assets.get(k, 0)} {label} ({self.custom_assets.get(k, 0)} not Vital's init)"
                for k, label in kinds.items()
            )
        )
        if self.left_out_test:
            lines.append(
                f"{len(self.left_out_test)} preset(s) reserved for evaluation left out "
                "(presets/community/split.json; --include-test-presets keeps them)"
            )
        if self.duplicates:
            lines.append(f"{len(self.duplicates)} duplicate(s) ingested once:")
            lines += [f"  {f}: {what}" for f, what in self.duplicates]
        if self.clipped_rows:
            lines.append(f"{len(self.clipped_rows)} row(s) clip (peak above full scale), kept:")
            lines += [f"  {f} note {n}: peak {p:.2f}" for f, n, p in self.clipped_rows]
        if self.ignored_settings:
            lines.append(f"{len(self.ignored_settings)} preset(s) with settings this Vital build ignores:")
            lines += [f"  {f}: {', '.join(names)}" for f, names in self.ignored_settings]
        if self.skipped_rows:
            lines.append(f"{len(self.skipped_rows)} row(s) skipped (other notes of the preset kept):")
            lines += [f"  {f} note {n}: {reason}" for f, n, reason in self.skipped_rows]
        if self.skipped_files:
            lines.append(f"{len(self.skipped_files)} file(s) skipped:")
            lines += [f"  {f}: {reason}" for f, reason in self.skipped_files]
        if not self.ok:
            lines.append("some presets or rows were skipped (see above): exit status 1")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# finding and reading files
def find_preset_files(inputs: Iterable[str | os.PathLike]) -> tuple[list[Path], list[tuple[str, str]]]:
    """The .vital files named by `inputs` (folders searched recursively), and the inputs rejected.

    Files inside folders that are not .vital are ignored (folders hold READMEs, licences, banks);
    a file named explicitly that is not a .vital is rejected with the reason.

    Returns:
        (files in input order, folders sorted; duplicates removed), [(input, reason), ...]
    """
    files: list[Path] = []
    rejected: list[tuple[str, str]] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            files.append(p)

    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix.lower() == PRESET_SUFFIX and q.is_file())
            ignored = sum(1 for q in p.rglob("*") if q.is_file() and q.suffix.lower() != PRESET_SUFFIX)
            if ignored:
                log.info("%s: %d file(s) that are not .vital ignored", p, ignored)
            for q in found:
                add(q)
        elif not p.exists():
            rejected.append((str(p), "no such file or folder"))
        elif p.suffix.lower() == ".vitalbank":
            rejected.append((str(p), "a .vitalbank (zip archive of presets): unzip it and ingest the folder"))
        elif p.suffix.lower() != PRESET_SUFFIX:
            rejected.append(
                (str(p), f"not a .vital file (suffix {p.suffix or 'none'!r}); expected Vital presets")
            )
        else:
            add(p)
    return files, rejected


@dataclass
class _Item:
    """One preset file on its way to rows."""

    file: str
    preset: Preset  # as read
    projection: Preset  # what the tier represents; rendered and stored
    name: str
    dropped: list[tuple[Modulation | tuple[str, str], str]]
    reset: list[str]


def _unusable_reason(path: Path) -> str | None:
    """Why split.json declares this preset unusable as a one-note target (None if it does not).

    Like the evaluation split, the bundled set's list applies to its files wherever they are, and a
    folder with its own split.json uses that one.
    """
    own = path.parent / "split.json"
    return unusable_preset_names(path.parent if own.exists() else COMMUNITY_DIR).get(path.stem)


def _strip_origin(message: str, origin: str) -> str:
    prefix = f"{origin}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _read_preset(path: Path) -> tuple[Preset, list[tuple[tuple[str, str], str]]]:
    """Read one .vital file. Returns the preset and the connections the reader dropped (unknown names).

    Raises:
        PresetError: with a message that says what is wrong (without the file name).
    """
    origin = str(path)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise PresetError(f"{size / 1e6:.0f} MB: too large for a Vital preset")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PresetError("not a Vital preset (binary file, expected .vital JSON)") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PresetError(f"not a Vital preset (malformed JSON: {exc})") from None
    try:
        preset = Preset.from_json(doc, origin=origin)
    except PresetError as exc:
        raise PresetError(_strip_origin(str(exc), origin)) from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise PresetError(f"not a usable Vital preset ({type(exc).__name__}: {exc})") from None
    if not preset.meta.get("preset_name"):
        preset = preset.with_meta(preset_name=path.stem)
    return preset, _reader_drops(doc, preset)


def _reader_drops(doc: dict, preset: Preset) -> list[tuple[tuple[str, str], str]]:
    """Connections in the file that `Preset.from_json` left out (unknown names, duplicates), with reasons."""
    ps = param_space()
    slots = doc["settings"].get("modulations") or []
    kept = Counter((m.source, m.destination) for m in preset.modulations)
    drops = []
    for slot in slots[:N_MOD_SLOTS] if isinstance(slots, list) else []:
        if not isinstance(slot, dict):
            continue
        src, dst = str(slot.get("source") or ""), str(slot.get("destination") or "")
        if not src and not dst:
            continue
        if kept[(src, dst)] > 0:
            kept[(src, dst)] -= 1
            continue
        if src not in ps.all_mod_sources:
            reason = "unknown modulation source"
        elif dst not in ps.all_mod_destinations:
            reason = "unknown modulation destination"
        else:
            reason = "duplicate connection"
        drops.append(((src, dst), reason))
    return drops


def _project(preset: Preset, ts: TierSpace, base: Preset, ps: ParamSpace) -> tuple[Preset, list[str]]:
    """The preset as the tier represents it (exactly what `Dataset.preset(i)` rebuilds), and the
    controls outside the tier that it resets to their defaults."""
    over = Preset(values=dict(base.values), data=preset.data, meta=dict(preset.meta))
    projection = Preset.from_vector(preset.to_vector(ts, ps), base=over, space=ps)
    reset = [
        k
        for k, v in preset.values.items()
        if not ps.in_tier(k, ts.tier) and ps[k].clamp(v) != ps[k].clamp(base.values.get(k, ps[k].default))
    ]
    return projection, sorted(reset)


def _describe(m: Modulation | tuple[str, str]) -> str:
    if isinstance(m, Modulation):
        return f"{m.source} -> {m.destination} (amount {m.amount:+.3g})"
    return f"{m[0] or '?'} -> {m[1] or '?'}"


def _rms_db(audio: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(audio, dtype=np.float64))) + 1e-12))


# ---------------------------------------------------------------------------------------------------
# the run
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


def _skip(summary: IngestSummary, file: str, reason: str) -> None:
    log.warning("skipped %s: %s", file, reason)
    summary.skipped_files.append((file, reason))


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


def _prepare(
    path: Path,
    ts: TierSpace,
    base: Preset,
    ps: ParamSpace,
    summary: IngestSummary,
    seen: dict[str, str],
    seen_original: dict[str, str],
) -> _Item | None:
    file = str(path)
    if (why := _unusable_reason(path)) is not None:
        # Decided once, not left to a render that may land either side of the silence threshold.
        _skip(summary, file, f"declared unusable as a one-note target in split.json: {why}")
        return None
    try:
        preset, reader_drops = _read_preset(path)
        projection, reset = _project(preset, ts, base, ps)
    except PresetError as exc:
        _skip(summary, file, str(exc))
        return None
    except OSError as exc:
        _skip(summary, file, f"cannot be read ({exc.strerror or exc})")
        return None
    original_hash, key = preset.content_hash(), projection.content_hash()
    if original_hash in seen_original:
        what = f"same content as {seen_original[original_hash]}"
    elif key in seen:
        what = f"same tier-{ts.tier} projection as {seen[key]}"
    else:
        what = None
    if what is not None:
        log.info("%s: duplicate, not ingested again: %s", file, what)
        summary.duplicates.append((file, what))
        return None
    seen_original[original_hash] = file
    seen[key] = file
    name = preset.name
    kept, dropped = preset.routing_for_tier(ts, ps)
    dropped_all: list[tuple[Modulation | tuple[str, str], str]] = [
        (m, "bypassed slot" if m.bypass else reason) for m, reason in dropped
    ]
    dropped_all += reader_drops
    summary.connections_total += len(preset.modulations) + len(reader_drops)
    summary.connections_kept += len(kept)
    for m, reason in dropped_all:
        summary.dropped_connections[reason] += 1
        # Bypassed slots do not sound: dropping them loses nothing.
        level = logging.DEBUG if reason == "bypassed slot" else logging.INFO
        log.log(level, "%s: dropped modulation %s: %s", name, _describe(m), reason)
    summary.reset_controls.update(reset)
    if ignored := preset.meta.get("ignored_settings"):
        summary.ignored_settings.append((file, sorted(ignored)))
    return _Item(file, preset, projection, name, dropped_all, reset)


def _render_rows(
    batch: Sequence[_Item],
    schema: DatasetSchema,
    renderer: Renderer,
    silence_db: float,
    summary: IngestSummary,
    ps: ParamSpace,
) -> list[ExampleRow]:
    if not batch:
        return []
    notes = list(schema.midi_notes)
    jobs = [(item, note) for item in batch for note in notes]
    results = renderer.render_batch(
        [item.projection for item, _ in jobs],
        [note for _, note in jobs],
        schema.note_duration_s,
        schema.duration_s,
        stereo=schema.channels == 2,
    )
    rows: list[ExampleRow] = []
    failures: dict[str, list[tuple[int, str, float | None]]] = {}
    for (item, note), res in zip(jobs, results):
        if not res.ok:
            failures.setdefault(item.file, []).append((note, f"render failed: {res.error}", None))
            continue
        audio = res.audio
        assert audio is not None  # a render without error has audio
        if not np.all(np.isfinite(audio)):
            failures.setdefault(item.file, []).append(
                (note, "the render holds NaN or infinite samples", None)
            )
            continue
        level = _rms_db(audio)
        if level < silence_db:
            failures.setdefault(item.file, []).append((note, "silent", level))
            continue
        peak = float(np.max(np.abs(audio)))
        if peak > 1.0:
            summary.clipped_rows.append((item.file, note, peak))
            log.warning("%s note %d: peak %.2f above full scale; stored clipped", item.file, note, peak)
        rows.append(
            ExampleRow.from_preset(
                item.projection, audio, schema, note, "community", seed_index=-1, file=item.file, space=ps
            )
        )
    if failures:
        originals = _original_levels(batch, failures, schema, renderer)
        for item in batch:
            if item.file not in failures:
                continue
            fails = failures[item.file]
            reasons = [
                _failure_text(item, note, why, level, originals, silence_db, schema.tier)
                for note, why, level in fails
            ]
            if len(fails) == len(notes):
                # Every note failed: one line for the file (the first note's reason says why).
                if len({why for _, why, _ in fails}) == 1:
                    later = ", ".join(str(n) for n, _, _ in fails[1:])
                    _skip(summary, item.file, reasons[0] + (f" (also at note(s) {later})" if later else ""))
                else:
                    _skip(
                        summary,
                        item.file,
                        "; ".join(f"note {n}: {r}" for (n, _, _), r in zip(fails, reasons)),
                    )
            else:
                for (note, _, _), reason in zip(fails, reasons):
                    log.warning("skipped %s note %d: %s", item.file, note, reason)
                    summary.skipped_rows.append((item.file, note, reason))
    return rows


def _original_levels(
    batch: Sequence[_Item],
    failures: dict[str, list[tuple[int, str, float | None]]],
    schema: DatasetSchema,
    renderer: Renderer,
) -> dict[tuple[str, int], float]:
    """RMS of the original file at silent notes, to tell "quiet by design" from "lost in projection"."""
    jobs = [(item, note) for item in batch for note, why, _ in failures.get(item.file, []) if why == "silent"]
    if not jobs:
        return {}
    results = renderer.render_batch(
        [item.preset for item, _ in jobs], [n for _, n in jobs], schema.note_duration_s, schema.duration_s
    )
    return {
        (item.file, note): _rms_db(r.audio)
        for (item, note), r in zip(jobs, results)
        if r.ok and r.audio is not None  # ok implies audio
    }


def _failure_text(
    item: _Item,
    note: int,
    why: str,
    level: float | None,
    originals: dict[tuple[str, int], float],
    silence_db: float,
    tier: int,
) -> str:
    if why != "silent":
        return why
    text = f"renders silent ({level:.1f} dBFS RMS at note {note}, threshold {silence_db:g} dBFS)"
    original = originals.get((item.file, note))
    if original is None:
        return text
    if original < silence_db:
        return f"{text}; the original file renders at {original:.1f} dBFS too: silent as a one-shot note"
    lost = [r for _, r in item.dropped if r != "bypassed slot"]
    parts = []
    if lost:
        parts.append(f"{len(lost)} dropped connection(s)")
    if item.reset:
        parts.append(f"reset {', '.join(item.reset[:3])}{'...' if len(item.reset) > 3 else ''}")
    return (
        f"{text}; the original file renders at {original:.1f} dBFS: its tier-{tier} projection "
        f"loses what makes it sound ({', '.join(parts) or 'controls outside the tier'})"
    )


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
