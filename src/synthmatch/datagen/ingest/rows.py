"""Rendering rows: each projection at every note, checked (non-finite, silent, clipping) into ExampleRows."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from synthmatch.synth.params import ParamSpace
from synthmatch.synth.render import Renderer

from ..store import DatasetSchema, ExampleRow
from .projection import _Item
from .summary import IngestSummary, _skip

log = logging.getLogger("synthmatch.datagen.ingest")


def _rms_db(audio: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(audio, dtype=np.float64))) + 1e-12))


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
            # A file that sounds but whose projection is silent, having lost something to the tier (a
            # connection, a reset control), is the tier's limit, not a broken file: skipped by design. With
            # nothing lost the two are the same preset, and a silent row is render noise at the threshold.
            projected_away = bool(item.reset) or any(r != "bypassed slot" for _, r in item.dropped)
            lost = [
                projected_away and why == "silent" and originals.get((item.file, note), -240.0) >= silence_db
                for note, why, _ in fails
            ]
            if len(fails) == len(notes):
                # Every note failed: one line for the file (the first note's reason says why).
                if len({why for _, why, _ in fails}) == 1:
                    later = ", ".join(str(n) for n, _, _ in fails[1:])
                    text = reasons[0] + (f" (also at note(s) {later})" if later else "")
                else:
                    text = "; ".join(f"note {n}: {r}" for (n, _, _), r in zip(fails, reasons))
                _skip(summary, item.file, text, by_design=all(lost))
            else:
                for (note, _, _), reason, by_design in zip(fails, reasons, lost):
                    log.log(
                        logging.INFO if by_design else logging.WARNING,
                        "skipped %s note %d: %s",
                        item.file,
                        note,
                        reason,
                    )
                    rows_list = summary.skipped_rows_by_design if by_design else summary.skipped_rows
                    rows_list.append((item.file, note, reason))
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
