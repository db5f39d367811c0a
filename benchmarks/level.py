"""Level matching re-run on the exported matches of a `match_quality.py run`, with and without the limiter.

    python benchmarks/level.py --run runs/mq/k14_cmaes [--targets data]

For every target of the run, its exported `.vital` goes through the finishing level steps again as
`inference.match` runs them (a user render at the estimated key time, `calibrate.match_level` with the
stereo peak, then `calibrate.soft_limit` or not, then the final render's clip check), and the result is
scored as `match_quality.py` scores: a fresh render at the target's true note with the key held 1.5 s,
mono RMS against the target's, and the match distance. Both variants start from the same preset, so the
table isolates the limiter (random phase moves each render's distance by a few hundredths).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine_line, print_table  # noqa: E402
from synthmatch.audio.distances import match_distance  # noqa: E402
from synthmatch.inference.calibrate import PEAK_LIMIT, match_level, soft_limit, volume_db, with_volume_db  # noqa: E402
from synthmatch.inference.scoring import Scorer, rms_db  # noqa: E402
from synthmatch.synth.presets import Preset  # noqa: E402
from synthmatch.synth.render import Renderer  # noqa: E402

KEY_S = 1.5


def finish(
    renderer: Renderer, preset: Preset, target: np.ndarray, sr: int, note: int, key_s: float, limiter: bool
):
    dur = len(target) / sr
    scorer = Scorer(target, sr, note, min(key_s, dur), dur, renderer)
    user = scorer.evaluate([preset], fresh=True, keep_audio=True)[0]
    preset, user, info = match_level(
        scorer, preset, user, max_renders=3, peaks=[user.peak] if user.peak else None
    )
    if limiter:
        preset, user = soft_limit(scorer, preset, user, info)
    peak = float(np.abs(renderer.render(preset, note, min(key_s, dur), dur, stereo=True, fresh=True)).max())
    if peak > 1.0:
        preset = with_volume_db(preset, volume_db(preset) + 20 * np.log10(PEAK_LIMIT / peak))
    return preset, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a match_quality.py run folder (scores.json, SET/presets)")
    ap.add_argument("--targets", default="data", help="folder holding the run's target sets")
    a = ap.parse_args()
    print(f"machine: {machine_line()}")
    print(f"command: python benchmarks/level.py {' '.join(sys.argv[1:])}")
    rows = [r for r in json.loads((Path(a.run) / "scores.json").read_text())["rows"] if "distance" in r]
    results: dict[bool, list[dict]] = {False: [], True: []}
    with Renderer(44100) as renderer:
        for row in rows:
            audio, sr = sf.read(str(Path(a.targets) / row["set"] / row["target"]), dtype="float32")
            mono = audio.reshape(len(audio), -1).mean(axis=1)
            exported = Preset.load(
                Path(a.run) / row["set"] / "presets" / (Path(row["target"]).stem + ".vital")
            )
            for limiter in (False, True):
                preset, info = finish(renderer, exported, mono, sr, row["note"], row["infer_key_s"], limiter)
                match = renderer.render(preset, row["note"], KEY_S, len(mono) / sr, fresh=True)
                results[limiter].append(
                    dict(
                        level=rms_db(match) - rms_db(mono),
                        distance=match_distance(mono, match, sr),
                        peak=float(np.abs(match).max()),
                        drive=info.limiter_drive_db,
                    )
                )
    off, on = results[False], results[True]
    d_off, d_on = np.array([r["distance"] for r in off]), np.array([r["distance"] for r in on])
    table = []
    for name, res, d in (
        ("level steps, no limiter", off, d_off),
        ("level steps + soft-clip limiter", on, d_on),
    ):
        lv = np.array([r["level"] for r in res])
        table.append(
            [
                name,
                len(res),
                f"{int(np.sum(np.abs(lv) <= 1.5))} ({np.mean(np.abs(lv) <= 1.5):.0%})",
                float(np.median(lv)),
                float(np.median(d)),
                sum(r["drive"] is not None for r in res),
                sum(r["peak"] > 1.0 for r in res),
            ]
        )
    print_table(
        [
            "method",
            "targets",
            "level within 1.5 dB",
            "median level dB",
            "median distance",
            "limiter kept",
            "peak > 1",
        ],
        table,
        title=f"Level on fresh renders at the true note, key {KEY_S} s ({a.run})",
    )
    diff = d_on - d_off
    print(
        f"\nlimiter vs none, distance: {int(np.sum(diff < -1e-3))} lower, {int(np.sum(diff > 1e-3))} higher, "
        f"median change {np.median(diff):+.4f}, largest rise {diff.max():+.4f}"
    )


if __name__ == "__main__":
    main()
