"""What an ingestion did: `IngestSummary` (counts, skips with reasons, dropped connections) and its text."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field

log = logging.getLogger("synthmatch.datagen.ingest")


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
    # (file, reason) left out on purpose: presets split.json declares unusable as one-note targets, and
    # files that sound but whose tier projection is silent at every note (what made them sound was lost)
    skipped_by_design: list[tuple[str, str]] = field(default_factory=list)
    skipped_rows: list[tuple[str, int, str]] = field(default_factory=list)  # (file, note, reason)
    skipped_rows_by_design: list[tuple[str, int, str]] = field(default_factory=list)  # projection silent
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
        """True when nothing failed: no file or row was skipped except by design (presets split.json
        declares unusable, evaluation presets left out); duplicates are not skips either (their content
        is in the file)."""
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
        if self.skipped_rows_by_design:
            count = len(self.skipped_rows_by_design)
            lines.append(f"{count} row(s) skipped by design (other notes of the preset kept):")
            lines += [f"  {f} note {n}: {reason}" for f, n, reason in self.skipped_rows_by_design]
        if self.skipped_by_design:
            lines.append(f"{len(self.skipped_by_design)} file(s) skipped by design:")
            lines += [f"  {f}: {reason}" for f, reason in self.skipped_by_design]
        if self.skipped_files:
            lines.append(f"{len(self.skipped_files)} file(s) skipped:")
            lines += [f"  {f}: {reason}" for f, reason in self.skipped_files]
        if not self.ok:
            lines.append("some presets or rows were skipped (see above): exit status 1")
        return "\n".join(lines)


def _skip(summary: IngestSummary, file: str, reason: str, by_design: bool = False) -> None:
    """Record a skipped file; one skipped `by_design` is an INFO line and does not fail the run."""
    if by_design:
        log.info("skipped %s: %s", file, reason)
        summary.skipped_by_design.append((file, reason))
        return
    log.warning("skipped %s: %s", file, reason)
    summary.skipped_files.append((file, reason))
