"""What the user hears: run `synthmatch infer` on target sets, then score every exported .vital afresh.

    python benchmarks/match_quality.py run --targets data/devset --out runs/mq/new_model
    python benchmarks/match_quality.py run --targets data/devset --out runs/mq/new_cmaes --refine --evals 300
    python benchmarks/match_quality.py run --targets data/devset --out runs/mq/old_cmaes --refine --evals 300 \\
        --synthmatch "env PYTHONPATH=/tmp/oldmain/src .venv/bin/python -m synthmatch"
    python benchmarks/match_quality.py run --targets data/devset data/community --per-set 20 ...
    python benchmarks/match_quality.py compare runs/mq/old_cmaes runs/mq/new_cmaes [--baseline runs/mq/new_model]

`run` drives any version of the CLI (`--synthmatch`, default this checkout's) with the same command:
`infer -i TARGETS -o OUT/presets --json [--refine --refine-evals N --refine-timeout 3600]`, so the budget,
not the clock, ends each refinement. It then scores each exported preset the same way whatever made it,
as a user hears it: a fresh render (a Synth built for it, random phase as saved) of the .vital at the
target's true MIDI note (from the set's manifest; unpitched targets at the note infer chose) with the key
held for the target's true time, over the whole target, against the target. Scores (per target):
- distance: `audio.distances.match_distance` (multi-scale log-mel L1 at equal loudness: eval's mel_l1);
- init_ratio: distance over that of Vital's init preset rendered the same way;
- pitch_error_st: |f0 target - f0 match| in semitones (`audio.pitch`), where both are pitched;
- level_db: RMS of the match minus RMS of the target (level_db_infer_key: the same with the key held for
  the time infer estimated, which shows what the estimate of the key-held time costs);
- silent: the match renders below -60 dBFS RMS;
- peak: the match's peak sample.

`compare` prints one table: medians, shares (level within 1.5 dB, pitch within 0.5 semitone), silent
counts, and paired win rates of the runs against the first one (and, with --baseline, the share of
targets where each run is not worse than the baseline: e.g. model + CMA-ES against the model alone).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine_line, print_table  # noqa: E402

NOT_WORSE_TOLERANCE = 0.02  # distances closer than this count as a tie (fresh renders differ a little)


def _infer(
    cmd: str, inputs: list[Path], out: Path, refine: bool, evals: int, extra: str
) -> tuple[list, float]:
    args = shlex.split(cmd) + ["infer", "-i", *map(str, inputs), "-o", str(out / "presets"), "--json"]
    if refine:
        args += ["--refine", "--refine-evals", str(evals), "--refine-timeout", "3600"]
    args += shlex.split(extra)
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    (out / "infer_stderr.txt").write_text(proc.stderr)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"infer failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout), seconds


def _selection(targets: Path, per_set: int | None, take: int | None = None) -> list[str] | None:
    """`per_set` files of a set, evenly spaced over its sorted manifest, the first `take` of them (None:
    all of them): a run with --take is on a subset of the same targets as one without."""
    from synthmatch.evaluation.manifest import read_manifest

    files = sorted(read_manifest(targets))
    if per_set is not None and per_set < len(files):
        files = [files[int(i * len(files) / per_set)] for i in range(per_set)]
    elif take is None:
        return None
    return files[:take] if take is not None else files


def _score(targets: Path, results: list, only: list[str] | None = None) -> list[dict]:
    import soundfile as sf

    from synthmatch.audio.distances import match_distance
    from synthmatch.audio.pitch import estimate_pitch
    from synthmatch.evaluation.manifest import read_manifest
    from synthmatch.inference.scoring import rms_db
    from synthmatch.synth.presets import Preset
    from synthmatch.synth.render import Renderer

    manifest = read_manifest(targets)
    by_name = {Path(r["input"]).name: r for r in results}
    rows = []
    with Renderer(sample_rate=44100) as renderer:
        init = Preset.init()
        for file, item in sorted(manifest.items()):
            if only is not None and file not in only:
                continue
            target, sr = sf.read(str(targets / file), dtype="float32")
            row: dict = {"target": file, "family": item.family, "kind": item.kind}
            res = by_name.get(file)
            if res is None or res.get("error") or not res.get("preset"):
                row["error"] = (res or {}).get("error") or "no result"
                rows.append(row)
                continue
            note = item.midi_note if item.midi_note is not None else int(res.get("midi_note") or 60)
            note_s = item.note_duration_s
            duration = len(target) / sr
            preset = Preset.load(res["preset"])
            match, ref = (
                r.audio for r in renderer.render_batch([preset, init], note, note_s, duration, fresh=True)
            )
            infer_key = float(res.get("note_duration_s") or note_s)
            own = renderer.render(preset, note, min(infer_key, duration), duration, fresh=True)
            tp, mp = estimate_pitch(target, sr), estimate_pitch(match, sr)
            d = match_distance(target, match, sr)
            row.update(
                note=note,
                distance=round(float(d), 5),
                init_distance=round(float(match_distance(target, ref, sr)), 5),
                pitch_error_st=(
                    round(abs(12 * np.log2(tp.f0_hz / mp.f0_hz)), 3) if tp.pitched and mp.pitched else None
                ),
                level_db=round(rms_db(match) - rms_db(target), 2),
                level_db_infer_key=round(rms_db(own) - rms_db(target), 2),
                infer_key_s=round(infer_key, 3),
                silent=bool(rms_db(match) < -60),
                peak=round(float(np.max(np.abs(match))), 4),
                infer_distance=res.get("match_distance"),
                renders=res.get("renders") or (res.get("refine") or {}).get("n_evals"),
            )
            row["init_ratio"] = round(row["distance"] / max(row["init_distance"], 1e-9), 4)
            rows.append(row)
    return rows


def cmd_run(a: argparse.Namespace) -> None:
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    all_rows = []
    total_s = 0.0
    for targets in a.targets:
        t = Path(targets)
        sub = out / t.name
        sub.mkdir(parents=True, exist_ok=True)
        only = _selection(t, a.per_set, a.take)
        inputs = [t] if only is None else [t / f for f in only]
        results, seconds = _infer(a.synthmatch, inputs, sub, a.refine, a.evals, a.infer_args)
        total_s += seconds
        (sub / "infer.json").write_text(json.dumps(results, indent=1))
        rows = _score(t, results, only)
        for r in rows:
            r["set"] = t.name
        all_rows += rows
    doc = {
        "command": " ".join(sys.argv),
        "synthmatch": a.synthmatch,
        "refine": a.refine,
        "evals": a.evals if a.refine else None,
        "infer_seconds": round(total_s, 1),
        "machine": machine_line(),
        "rows": all_rows,
    }
    (out / "scores.json").write_text(json.dumps(doc, indent=1))
    print(f"{len(all_rows)} targets scored in {out / 'scores.json'} (infer took {total_s:.0f} s)")


def _load(path: str) -> dict:
    p = Path(path)
    return json.loads((p / "scores.json" if p.is_dir() else p).read_text())


def _stats(rows: list[dict]) -> dict:
    ok = [r for r in rows if "distance" in r]
    d = np.array([r["distance"] for r in ok])
    ratio = np.array([r["init_ratio"] for r in ok])
    pe = np.array([r["pitch_error_st"] for r in ok if r.get("pitch_error_st") is not None])
    lv = np.array([r["level_db"] for r in ok])
    return {
        "n": len(ok),
        "failed": len(rows) - len(ok),
        "median distance": float(np.median(d)) if len(d) else float("nan"),
        "mean distance": float(np.mean(d)) if len(d) else float("nan"),
        "median / init": float(np.median(ratio)) if len(ratio) else float("nan"),
        "median pitch error (st)": float(np.median(pe)) if len(pe) else float("nan"),
        "pitch within 0.5 st": f"{np.mean(pe <= 0.5):.0%}" if len(pe) else "-",
        "median |level| dB": float(np.median(np.abs(lv))) if len(lv) else float("nan"),
        "level within 1.5 dB": f"{np.mean(np.abs(lv) <= 1.5):.0%}" if len(lv) else "-",
        "same, key held as infer estimated": (
            f"{np.mean([abs(r['level_db_infer_key']) <= 1.5 for r in ok]):.0%}"
            if ok and all("level_db_infer_key" in r for r in ok)
            else "-"
        ),
        "silent": int(sum(r.get("silent", False) for r in ok)),
        "clipped (peak > 1)": int(sum(r.get("peak", 0) > 1.0 for r in ok)),
    }


def cmd_compare(a: argparse.Namespace) -> None:
    runs = [_load(p) for p in a.runs]
    names = [Path(p).name for p in a.runs]
    base = _load(a.baseline) if a.baseline else None
    sets = sorted({r["set"] for run in runs for r in run["rows"]})
    print(machine_line())
    for s in [*sets, "all"]:
        headers = ["run", *(_stats([]).keys()), f"wins vs {names[0]}", f"median d / {names[0]}'s (paired)"]
        if base is not None:
            headers.append(f"not worse than {Path(a.baseline).name}")
        table = []
        first = {r["target"]: r for r in runs[0]["rows"] if "distance" in r and s in ("all", r["set"])}
        base_rows = (
            {r["target"]: r for r in base["rows"] if "distance" in r and s in ("all", r["set"])}
            if base
            else {}
        )
        for name, run in zip(names, runs):
            rows = [r for r in run["rows"] if s in ("all", r["set"])]
            st = _stats(rows)
            paired = [
                (r["distance"], first[r["target"]]["distance"])
                for r in rows
                if r["target"] in first and "distance" in r
            ]
            wins = sum(x < y for x, y in paired)
            ties = sum(x == y for x, y in paired)
            line = [name, *(f"{v:.3f}" if isinstance(v, float) else v for v in st.values())]
            line.append(f"{wins}/{len(paired) - ties}" if name != names[0] else "-")
            ratios = [x / y for x, y in paired if y > 0]
            line.append(f"{np.median(ratios):.3f}" if ratios and name != names[0] else "-")
            if base is not None:
                pb = [
                    (r["distance"], base_rows[r["target"]]["distance"])
                    for r in rows
                    if r["target"] in base_rows and "distance" in r
                ]
                nw = sum(x <= y + NOT_WORSE_TOLERANCE for x, y in pb)
                line.append(f"{nw}/{len(pb)} ({nw / max(1, len(pb)):.0%})")
            table.append(line)
        print_table(headers, table, title=f"set: {s}")
    for name, run in zip(names, runs):
        print(f"{name}: {run['command']} (infer {run['infer_seconds']} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--targets", nargs="+", required=True, help="target-set folders (with manifest.json)")
    r.add_argument("--out", required=True)
    r.add_argument("--synthmatch", default=f"{sys.executable} -m synthmatch", help="the CLI to run")
    r.add_argument("--refine", action="store_true")
    r.add_argument("--evals", type=int, default=300)
    r.add_argument("--infer-args", default="", help="more infer flags, e.g. '--workers 2'")
    r.add_argument(
        "--per-set", type=int, help="at most this many targets of each set, evenly spaced over its files"
    )
    r.add_argument(
        "--take", type=int, help="only the first N of each set's selection (a subset of the same run)"
    )
    r.set_defaults(fn=cmd_run)
    c = sub.add_parser("compare")
    c.add_argument("runs", nargs="+")
    c.add_argument("--baseline")
    c.set_defaults(fn=cmd_compare)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
