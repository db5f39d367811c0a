"""Errors a user can cause and fix: the CLI prints their message (no traceback) and exits non-zero."""

from __future__ import annotations

__all__ = ["SynthmatchError", "ConfigError"]


class SynthmatchError(Exception):
    """Base class of every error whose message is meant for the user."""


class ConfigError(SynthmatchError, ValueError):
    """A setting outside its accepted range; the message says how to fix it."""
