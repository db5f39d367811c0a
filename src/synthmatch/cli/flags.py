"""Flags that several commands share, declared once (names, types, help)."""

from __future__ import annotations

import argparse
from pathlib import Path

from synthmatch.defaults import SEARCH_TIER
from synthmatch.synth.params import TIERS

__all__ = ["checkpoint", "refine_timeout", "tier", "workers"]


def checkpoint(p: argparse.ArgumentParser, what: str) -> None:
    """-c/--checkpoint: a model file or run folder (a `.pt` name finds its `.safetensors`)."""
    p.add_argument("-c", "--checkpoint", type=Path, help=f"{what} (default: the bundled model, if any)")


def refine_timeout(p: argparse.ArgumentParser, default: float = 60.0) -> None:
    p.add_argument(
        "--refine-timeout",
        type=float,
        default=default,
        help="refinement time limit in seconds (default %(default)s)",
    )


def workers(p: argparse.ArgumentParser, what: str = "render threads") -> None:
    p.add_argument("--workers", type=int, help=f"{what} (default: every core)")


def tier(p: argparse.ArgumentParser, what: str, default: int | None = None, when_unset: str = "") -> None:
    """--tier: one of `synth.params.TIERS`; `when_unset` says what an unset --tier means."""
    shown = "%(default)s" if default is not None else when_unset
    p.add_argument("--tier", type=int, choices=TIERS, default=default, help=f"{what} (default {shown})")


def search_tier(p: argparse.ArgumentParser, what: str) -> None:
    """--tier of the commands that match: the space searched without a model."""
    tier(p, what, when_unset=f"{SEARCH_TIER}; a model brings its own")
