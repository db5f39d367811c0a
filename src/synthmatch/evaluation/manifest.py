"""A target set's manifest: what is known of each file (its note, key-held time and where it came from).

    items = read_manifest("data/devset")   # file name -> DevItem ({} without a manifest)

Written by `evaluation.devset` (`synthmatch devset`), read by the test sets and the benchmarks.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from synthmatch.errors import ConfigError

__all__ = ["MANIFEST", "DURATION_S", "NOTE_DURATION_S", "DevItem", "read_manifest"]

MANIFEST = "manifest.json"
# The format of a producer's one-shot: 4 s long, the key held 1.5 s.
DURATION_S = 4.0
NOTE_DURATION_S = 1.5


@dataclass(frozen=True)
class DevItem:
    """One file of a set, as the manifest records it."""

    file: str
    name: str
    kind: str
    family: str
    source: str  # soundfont name, "numpy" or "vital"
    midi_note: int | None  # None: unpitched
    note_duration_s: float = NOTE_DURATION_S
    duration_s: float = DURATION_S


def read_manifest(folder: str | os.PathLike) -> dict[str, DevItem]:
    """file name -> DevItem of a set's manifest ({} when the folder has none)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
        items = [DevItem(**item) for item in doc["items"]]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a synthmatch target-set manifest ({exc})") from None
    return {item.file: item for item in items}
