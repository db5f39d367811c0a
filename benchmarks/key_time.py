"""How well the key-held time is estimated (`audio.pitch.estimate_timing`) on target sets with a manifest.

    python benchmarks/key_time.py --targets data/devset data/in_domain
    PYTHONPATH=<older checkout>/src python benchmarks/key_time.py ...     # the same for another version

Every file's estimate against the key-held time its manifest records (`synthmatch devset` writes 1.5 s).
Shares: within 0.25 s; no release seen (held to the end: right for plucks and drums that die away on
their own, for which the match's release is then made to ring on); too early; too late (released
later than the truth but before the end: the costly kind, the match fits a note held too long).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine_line, print_table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=Path, nargs="+", required=True, help="folders with a manifest.json")
    ap.add_argument("--tolerance", type=float, default=0.25, help="seconds counted as right (default 0.25)")
    ap.add_argument("--list", action="store_true", help="also print every file's estimate")
    a = ap.parse_args()
    from synthmatch.audio.io import load_audio
    from synthmatch.audio.pitch import estimate_timing

    try:
        from synthmatch.evaluation.manifest import read_manifest
    except ImportError:  # checkouts before the manifest had a module of its own
        from synthmatch.evaluation.devset import read_manifest

    rows, per_file = [], []
    for folder in a.targets:
        items = read_manifest(folder)
        if not items:
            raise SystemExit(f"{folder}: no manifest.json (make one with `synthmatch devset`)")
        counts = {"right": 0, "held": 0, "early": 0, "late": 0}
        errors = []
        for name, item in sorted(items.items()):
            audio, sr = load_audio(folder / name)
            t = estimate_timing(audio, sr)
            err = t.note_duration_s - item.note_duration_s
            if abs(err) <= a.tolerance:
                kind = "right"
            elif t.held_to_end or t.note_duration_s >= t.duration_s - 0.05:
                kind = "held"
            else:
                kind = "early" if err < 0 else "late"
            counts[kind] += 1
            errors.append(abs(err))
            per_file.append(
                [f"{folder.name}/{name}", item.note_duration_s, round(t.note_duration_s, 3), kind]
            )
        n = len(items)
        rows.append(
            [
                folder.name,
                n,
                f"{counts['right']} ({counts['right'] / n:.0%})",
                counts["held"],
                counts["early"],
            ]
            + [counts["late"], round(float(np.median(errors)), 3)]
        )
    headers = [
        "set",
        "n",
        f"within {a.tolerance:g} s",
        "no release seen",
        "too early",
        "too late",
        "median |error| s",
    ]
    print_table(headers, rows, title="Key-held time estimated against the manifest's")
    if a.list:
        print_table(["file", "true s", "estimated s", "kind"], per_file)
    print(f"\n{machine_line()}")


if __name__ == "__main__":
    main()
