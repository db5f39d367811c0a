"""Reading Vital's file format: a .vital file's text (checked before it is read), its JSON, its version.

    text = read_preset_text(path)       # PresetError naming the file: missing, a pipe, too large, binary
    doc = parse_json(text, origin=str(path))

What a preset's content may hold is checked afterwards (`structure.structure_problem`, `Preset.from_json`).
"""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path
from typing import Any

from synthmatch.errors import SynthmatchError
from synthmatch.synth import _vita

__all__ = [
    "PresetError",
    "InvalidModulationError",
    "MAX_PRESET_BYTES",
    "read_preset_text",
    "parse_json",
    "clean_text",
    "check_version",
]

# A .vital file larger than this is refused before it is read (Vital's own are a few MiB at most: a
# 257-keyframe wavetable is 3 MB).
MAX_PRESET_BYTES = 64 * 2**20
# The newest Vital release whose presets are known to load and sound right here (the community presets
# span 1.0.0 to 1.5.3; 1.5.5 is Vital's last release as of this writing).
NEWEST_KNOWN_VITAL = "1.5.5"

log = logging.getLogger(__name__)


class PresetError(SynthmatchError, ValueError):
    """A preset file or JSON that cannot be used, with a message that names it and says why."""


class InvalidModulationError(PresetError):
    """A modulation connection whose source or destination vita does not know."""


def read_preset_text(p: Path) -> str:
    """The text of a .vital file; PresetError naming it when it is missing, a broken or looping link, a
    directory, a pipe or device (a read would block), over MAX_PRESET_BYTES, or not UTF-8."""
    try:
        st = p.stat()
    except FileNotFoundError:
        broken = p.is_symlink()
        raise PresetError(f"{p}: {'a broken symbolic link' if broken else 'no such file'}") from None
    except OSError as exc:  # a symlink loop, a path through a file, permission denied
        raise PresetError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    if p.is_dir():
        raise PresetError(f"{p}: is a directory, expected a .vital file")
    if not stat.S_ISREG(st.st_mode):
        raise PresetError(f"{p}: not a regular file (a pipe, socket or device), expected a .vital file")
    if st.st_size > MAX_PRESET_BYTES:
        raise PresetError(f"{p}: {st.st_size / 2**20:.0f} MiB, too large for a preset (at most 64 MiB)")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PresetError(f"{p}: not a Vital preset (binary file, expected .vital JSON)") from None
    except OSError as exc:
        raise PresetError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    return text


def parse_json(text: str | bytes, origin: str = "<json>") -> Any:
    """The JSON of a .vital file (a UTF-8 byte-order mark allowed); PresetError naming `origin` when it
    is not JSON, or nested too deeply for Python's parser."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text.removeprefix("\ufeff"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PresetError(f"{origin}: not a Vital preset (invalid JSON: {exc})") from None
    except RecursionError:
        raise PresetError(f"{origin}: not a Vital preset (JSON nested too deeply)") from None


def clean_text(value: Any) -> Any:
    """A name or comment as text files and HDF5 can hold it (no NUL or other control characters)."""
    if not isinstance(value, str):
        return value
    return "".join(ch for ch in value if ch in "\n\t" or ord(ch) >= 32)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for p in str(text).split("."):
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def check_version(version: Any, origin: str) -> None:
    """Refuse what vita refuses (a synth_version above its own placeholder, 99999.9.9), and warn about a
    Vital release newer than NEWEST_KNOWN_VITAL: its settings may be ones this build does not know (each
    unknown setting is reported as the preset is read)."""
    if version is None:
        raise PresetError(f"{origin}: not a Vital preset (no 'synth_version')")
    if _version_tuple(version) > _version_tuple(_vita.VITAL_SYNTH_VERSION):
        raise PresetError(
            f"{origin}: made by Vital {version}, newer than this vita build can load "
            f"({_vita.VITAL_SYNTH_VERSION}); upgrade vita"
        )
    if _version_tuple(version) > _version_tuple(NEWEST_KNOWN_VITAL):
        log.warning(
            "%s: made by Vital %s, newer than the releases this build is known to read (up to %s): "
            "it may sound different",
            origin,
            version,
            NEWEST_KNOWN_VITAL,
        )
