"""synthmatch: turn a one-shot sound into a Vital preset.

The small public API is loaded lazily so `import synthmatch` stays light:

    from synthmatch import Preset, Renderer, param_space
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "ParamSpace": "synthmatch.synth.params",
    "TierSpace": "synthmatch.synth.params",
    "param_space": "synthmatch.synth.params",
    "Preset": "synthmatch.synth.presets",
    "Modulation": "synthmatch.synth.presets",
    "Renderer": "synthmatch.synth.render",
    "load_audio": "synthmatch.audio.io",
    "log_mel": "synthmatch.audio.features",
    "MelSettings": "synthmatch.audio.features",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'synthmatch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
