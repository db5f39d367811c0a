"""The one import of `vita` and the facts about it that every other module relies on.

Everything that touches the Vital bindings goes through `synthmatch.synth`; this file is where the
import happens, so a machine without `vita` gets one clear error instead of a scattered ImportError.
The facts about vita the code relies on, with how they were measured, are in docs/VITA.md.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from synthmatch.errors import SynthmatchError

__all__ = [
    "VitaUnavailable",
    "import_vita",
    "require_vita",
    "vita_available",
    "new_synth",
    "init_preset_json",
    "modulation_sources",
    "modulation_destinations",
    "vita_version",
    "VITAL_SYNTH_VERSION",
]


class VitaUnavailable(SynthmatchError, RuntimeError):
    """Raised when the `vita` package (Python bindings for Vital) cannot be imported."""


@functools.lru_cache(maxsize=1)
def import_vita() -> Any:
    """Import and return the `vita` module, or raise VitaUnavailable with the install command."""
    try:
        import vita  # noqa: PLC0415
    except Exception as exc:  # ImportError, or an OSError from the shared library
        raise VitaUnavailable(
            f"the Vital bindings could not be imported ({exc}); install them with `pip install vita`"
        ) from exc
    return vita


def require_vita() -> None:
    """Raise VitaUnavailable, with the install command, unless `vita` imports on this machine."""
    import_vita()


def vita_available() -> bool:
    """True when `vita` imports on this machine."""
    try:
        import_vita()
    except VitaUnavailable:
        return False
    return True


def new_synth(sample_rate: float | None = None) -> Any:
    """A fresh `vita.Synth` (63 ms, holds the GIL: build one per worker and reuse it)."""
    synth = import_vita().Synth()
    if sample_rate is not None:
        synth.set_sample_rate(float(sample_rate))
    return synth


@functools.lru_cache(maxsize=1)
def _reference_synth() -> Any:
    # A Synth that is never rendered: it only answers questions (control details, init JSON).
    return new_synth()


def reference_synth() -> Any:
    """A process-wide Synth used only for introspection. Never render with it."""
    return _reference_synth()


@functools.lru_cache(maxsize=1)
def _init_json_text() -> str:
    synth = new_synth()
    synth.load_init_preset()
    doc = json.loads(synth.to_json())
    sample = doc.get("settings", {}).get("sample")
    if isinstance(sample, dict) and sample.get("name") == "White Noise":
        sample["samples"] = _white_noise(int(sample.get("length", 44100)))
    return json.dumps(doc)


def _white_noise(n: int) -> str:
    """Vital's init sample is one second of white noise drawn from a process-wide generator, so its
    samples depend on how many Synths the process built before (docs/VITA.md, "The init preset's
    noise"): presets would hash, and rebuild, differently from one process to the next. The same noise
    (uniform, peak 0.9, 16-bit, base64), drawn from a fixed seed, replaces it."""
    import base64

    import numpy as np

    noise = np.random.default_rng(0).uniform(-1.0, 1.0, n) * 29490
    return base64.b64encode(np.round(noise).astype("<i2").tobytes()).decode("ascii")


def init_preset_json() -> dict:
    """Vital's init preset as a fresh JSON dict (a deep copy each call)."""
    return json.loads(_init_json_text())


@functools.lru_cache(maxsize=1)
def modulation_sources() -> tuple[str, ...]:
    """The 32 modulation sources vita accepts. Connecting any other name poisons the Synth."""
    return tuple(import_vita().get_modulation_sources())


@functools.lru_cache(maxsize=1)
def modulation_destinations() -> tuple[str, ...]:
    """The 428 modulation destinations vita accepts."""
    return tuple(import_vita().get_modulation_destinations())


def vita_version() -> str:
    """The installed vita package version."""
    vita = import_vita()
    version = getattr(vita, "__version__", None)
    if version is None:
        version = getattr(getattr(vita, "version", None), "__version__", "unknown")
    return str(version)


# The synth_version string vita writes into its own JSON; load_json refuses presets newer than it.
VITAL_SYNTH_VERSION = "99999.9.9"
