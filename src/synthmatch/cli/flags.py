"""Flags that several commands share, declared once (names, types, help)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["checkpoint", "refine_timeout", "workers"]


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
