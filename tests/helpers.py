"""Plain helpers the tests share (fixtures live in the conftest files, which import from here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
COMMUNITY_DIR = REPO / "presets" / "community"
EXAMPLES_DIR = REPO / "examples"


def community_presets() -> list[Path]:
    return sorted(COMMUNITY_DIR.glob("*.vital"))


def rms_db(audio: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(audio, dtype=np.float64))) + 1e-12))


def within_noise(subject: np.ndarray, fresh: list[np.ndarray], sr: int = 44100, slack: float = 1.5) -> tuple:
    """Is `subject` one more render of what made `fresh`? Random phase makes every render differ, so the
    floor is the largest difference among the fresh renders (at least 5, 10 pairs: with 3 the largest of
    3 pairs was below a true fresh render's median distance in about one run in five), and the subject's
    median distance to them must sit within `slack` times that floor. Measured on the pluck of
    tests/synth/test_render.py: a clean reused render reached 1.16 times the floor at worst in 25 trials, one
    that followed a pad without the flush 2.2 to 3.6 times, so the slack hides nothing it looks for. Returns
    (ok, median, floor) for the assertion message."""
    import itertools

    from synthmatch.audio.distances import match_distance

    assert len(fresh) >= 5, "the floor needs at least 5 fresh renders"
    floor = max(match_distance(a, b, sr) for a, b in itertools.combinations(fresh, 2))
    median = float(np.median([match_distance(subject, f, sr) for f in fresh]))
    return median <= slack * max(floor, 1e-3), median, floor
