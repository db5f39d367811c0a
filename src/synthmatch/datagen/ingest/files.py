"""Finding and reading preset files: the .vital files of the inputs, each read into a `Preset` or refused."""

from __future__ import annotations

import logging
import os
import stat
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from synthmatch.synth.params import N_MOD_SLOTS, param_space
from synthmatch.synth.presets import Preset, PresetError, parse_json

from ..community import COMMUNITY_DIR, unusable_preset_names

log = logging.getLogger("synthmatch.datagen.ingest")


# Larger files are not presets (the biggest community preset, with a 257-frame wavetable, is 3 MB).
MAX_FILE_BYTES = 64 * 1024 * 1024
PRESET_SUFFIX = ".vital"


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
    try:
        st = path.stat()
    except OSError as exc:
        raise PresetError(f"cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise PresetError("not a regular file (a pipe, socket or device), expected a .vital file")
    size = st.st_size
    if size > MAX_FILE_BYTES:
        raise PresetError(f"{size / 1e6:.0f} MB: too large for a Vital preset")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PresetError("not a Vital preset (binary file, expected .vital JSON)") from None
    try:
        doc = parse_json(text, origin)
    except PresetError as exc:
        raise PresetError(_strip_origin(str(exc), origin)) from None
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
