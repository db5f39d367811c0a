"""A match distance a person can read: a 0-100 similarity and a word, calibrated on the synth itself.

`audio.distances.match_distance` is the one distance of the project (multi-scale log-mel L1 at equal
loudness; 0 = identical). Its raw value has no scale a listener knows, so every surface (CLI, JSON, PNG
title, tutorial, demo) shows it with a verdict placed between two measured anchors
(`benchmarks/verdict.py`; docs/EVAL.md, "Reading a score"):

- `INDISTINGUISHABLE`: the median distance between two fresh renders of the same preset (the synth's own
  run-to-run noise: random phase, noise, unison). At or below it a match scores 100, "indistinguishable".
- `UNRELATED`: the median distance between two different random presets at the same note. At or above
  it a match scores 0, "unrelated": no closer than a random preset.

In between the similarity falls linearly in log distance (distances are ratios: halving one is the same
step anywhere on the scale), and the words split that range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["INDISTINGUISHABLE", "UNRELATED", "WORDS", "Verdict", "verdict", "verdict_of"]

# Measured by `python benchmarks/verdict.py` (117 sounding random tier-2 presets of 120, seed 4242;
# docs/EVAL.md, "Reading a score"): the noise floor's median and the unrelated pairs' median.
INDISTINGUISHABLE = 0.088
UNRELATED = 1.735

# (lowest similarity, word), best first; "indistinguishable" is the floor itself, not a band.
WORDS: tuple[tuple[int, str], ...] = (
    (70, "very close"),
    (45, "close"),
    (20, "similar"),
    (1, "distant"),
    (0, "unrelated"),
)


@dataclass(frozen=True)
class Verdict:
    """A distance with its similarity (0-100) and word."""

    distance: float
    similarity: int
    word: str

    @property
    def text(self) -> str:
        """One phrase for every surface: "similarity 62/100 (close), distance 0.214"."""
        return f"similarity {self.similarity}/100 ({self.word}), distance {self.distance:.3f}"

    def as_dict(self) -> dict:
        return {"distance": round(self.distance, 5), "similarity": self.similarity, "verdict": self.word}

    @classmethod
    def from_dict(cls, d: dict) -> Verdict:
        """The inverse of `as_dict` (a --json record's "verdict")."""
        return cls(float(d["distance"]), int(d["similarity"]), str(d["verdict"]))


def verdict(distance: float) -> Verdict:
    """The similarity and word of a `match_distance` (ValueError for a negative or non-finite one)."""
    d = float(distance)
    if not math.isfinite(d) or d < 0:
        raise ValueError(f"a match distance is a finite number >= 0, got {distance!r}")
    if d <= INDISTINGUISHABLE:
        return Verdict(d, 100, "indistinguishable")
    share = math.log(UNRELATED / d) / math.log(UNRELATED / INDISTINGUISHABLE)
    similarity = int(round(100 * min(1.0, max(0.0, share))))
    similarity = min(similarity, 99)  # 100 is kept for what the noise floor cannot tell apart
    word = next(w for lowest, w in WORDS if similarity >= lowest)
    return Verdict(d, similarity, word)


def verdict_of(distance: object) -> Verdict | None:
    """`verdict(distance)`, or None where there is none to give: no distance, or a silent match's
    infinite one."""
    try:
        return verdict(float(distance))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
