"""The web demo, `synthmatch demo`: a Gradio page over the package's public matching API.

`web.demo` (no Gradio) checks and matches one upload; `web.app` builds the Gradio Blocks page and serves
it. Nothing in the core package imports this one. Gradio is the `web` extra: pip install 'synthmatch[web]'.

    from synthmatch.web import DemoConfig, launch
    launch(DemoConfig(port=7860))           # blocks until Ctrl-C
"""

from __future__ import annotations

import importlib
from typing import Any

from synthmatch.errors import SynthmatchError

WEB_INSTALL = "pip install 'synthmatch[web]'"


class WebUnavailable(SynthmatchError, ImportError):
    """The `web` extra (gradio) is not installed."""


_LAZY = {
    "DemoConfig": "synthmatch.web.demo",
    "Demo": "synthmatch.web.demo",
    "DemoResult": "synthmatch.web.demo",
    "DemoInputError": "synthmatch.web.demo",
    "build_app": "synthmatch.web.app",
    "launch": "synthmatch.web.app",
    "RunningDemo": "synthmatch.web.app",
}

__all__ = ["WEB_INSTALL", "WebUnavailable", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'synthmatch.web' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
