"""Projecting a preset onto the tier: what it keeps, drops and resets; duplicates are caught here."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from synthmatch.synth.params import ParamSpace, TierSpace
from synthmatch.synth.presets import Modulation, Preset, PresetError

from .files import _read_preset, _unusable_reason
from .summary import IngestSummary, _skip

log = logging.getLogger("synthmatch.datagen.ingest")


@dataclass
class _Item:
    """One preset file on its way to rows."""

    file: str
    preset: Preset  # as read
    projection: Preset  # what the tier represents; rendered and stored
    name: str
    dropped: list[tuple[Modulation | tuple[str, str], str]]
    reset: list[str]


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
        _skip(summary, file, f"declared unusable as a one-note target in split.json: {why}", by_design=True)
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
