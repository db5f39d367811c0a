"""The browser's errors: `PreviewError` (a path it cannot open) and `TuiUnavailable` (no `tui` extra)."""

from __future__ import annotations

from synthmatch.errors import SynthmatchError

TUI_INSTALL = "pip install 'synthmatch[tui]'"


class TuiUnavailable(SynthmatchError, ImportError):
    """The `tui` extra (textual) is not installed."""


class PreviewError(SynthmatchError, ValueError):
    """A path the browser cannot open (no datasets in a folder, not a dataset file)."""
