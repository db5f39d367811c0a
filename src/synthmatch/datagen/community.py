"""The community preset set and its fixed train/test split.

`presets/community/split.json` names the presets reserved for evaluation (chosen once by a hash of their
names, see the file). Training data never includes them unless asked: `load_community(..., include_test=False)`
is what `generate --community-dir` and `ingest` use.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["COMMUNITY_DIR", "test_preset_names", "unusable_preset_names", "is_test_preset", "community_files"]

COMMUNITY_DIR = Path(__file__).resolve().parents[3] / "presets" / "community"
_SPLIT_FILE = "split.json"


@functools.lru_cache(maxsize=8)
def _split(folder: str) -> dict:
    path = Path(folder) / _SPLIT_FILE
    if not path.exists():
        return {"test": [], "unusable": {}}
    return json.loads(path.read_text())


def _split_for(path: Path) -> dict:
    # The split of the bundled set applies to its files wherever they are; other folders may carry their own.
    own = path.parent / _SPLIT_FILE
    return _split(str(path.parent if own.exists() else COMMUNITY_DIR))


def test_preset_names(folder: str | os.PathLike = COMMUNITY_DIR) -> list[str]:
    """Names (file stems) of the presets reserved for evaluation."""
    return list(_split(str(folder)).get("test", []))


def unusable_preset_names(folder: str | os.PathLike = COMMUNITY_DIR) -> dict[str, str]:
    """Presets that make no sense as one-note targets, with the reason."""
    return dict(_split(str(folder)).get("unusable", {}))


def is_test_preset(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.stem in _split_for(p).get("test", [])


def community_files(paths: Iterable[str | os.PathLike], include_test: bool = False) -> list[Path]:
    """.vital files under the given files/folders (recursively, sorted), without test-only presets by default."""
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.rglob("*.vital")) if p.is_dir() else [p])
    if include_test:
        return files
    kept = [f for f in files if not is_test_preset(f)]
    if len(kept) < len(files):
        log.info(
            "left out %d test-only community presets (see presets/community/split.json; "
            "--include-test-presets keeps them)",
            len(files) - len(kept),
        )
    return kept
