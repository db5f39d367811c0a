"""The report of an evaluation run: the Markdown table and the files.

- `markdown_report`: the table `synthmatch eval` prints and writes as `eval.md`;
- `write_outputs`: `eval.md`, `eval.json` (config, machine, every per-target record, summary, win rates)
  and the PNGs of `evaluation.plots`: `budget.png`, `per_target.png`, `spectrograms_<set>.png`.
Statistics are in `evaluation.stats` (re-exported here for callers of the older names).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from synthmatch.atomic import atomic_write_bytes, atomic_write_text
from synthmatch.evaluation.baselines import method_label
from synthmatch.evaluation.plots import budget_png, per_target_png, spectrogram_grid_png
from synthmatch.evaluation.stats import (
    FLOOR,
    PRIMARY,
    TABLE_METRICS,
    bootstrap_median_ci,
    summarize,
    win_rates,
    win_rates_for,
)

__all__ = [
    "TABLE_METRICS",
    "bootstrap_median_ci",
    "win_rates",
    "win_rates_for",
    "summarize",
    "markdown_report",
    "write_outputs",
    "machine_info",
]


# ---------------------------------------------------------------------------------------------------
# Markdown
def _num(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 0.01 or a == 0:
        return f"{x:.3f}" if a < 1 else f"{x:.2f}"
    return f"{x:.1e}"


def _cell(stat: dict | None) -> str:
    if not stat or stat.get("median") is None:
        return "–"
    if stat["n"] == 1:
        return _num(stat["median"])
    return f"{_num(stat['median'])} [{_num(stat['ci_low'])}, {_num(stat['ci_high'])}]"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def markdown_report(run) -> str:
    """The run's tables: per test set, every method's medians [95% CI]; then mel_l1 win rates."""
    cfg, setup = run.config, run.setup
    budget = int(cfg["budget"])
    lines = [
        "## synthmatch eval",
        "",
        f"Command: `{cfg.get('command') or 'synthmatch eval'}`  ",
        f"Date: {setup.get('date', '')}; machine: {setup['machine']['summary']}  ",
        f"Model: {setup.get('model') or 'none'}; tier {setup['tier']}; targets {setup['sample_rate']} Hz, "
        f"{setup['duration_s']:g} s with the key held {setup['note_duration_s']:g} s; budget B = {budget} "
        f"evaluations per search; seed {cfg['seed']}; wall time {setup['seconds']:.0f} s.",
        "",
        "Medians over targets with bootstrap 95% confidence intervals. Lower is better except ↑. "
        "`× floor`: the method's median mel_l1 over the noise floor's (two renders of the true preset). "
        "`evals`: renders spent choosing the preset; `s/target`: seconds to choose it.",
    ]
    if run.skipped:
        lines += ["", "Skipped: " + "; ".join(f"`{m}` ({why})" for m, why in run.skipped.items()) + "."]
    for s, set_summary in run.summary.items():
        n = len(run.targets.get(s, []))
        lines += ["", f"### {s}: {n} targets", ""]
        has_floor = FLOOR in set_summary
        present = [
            (k, h)
            for k, h in TABLE_METRICS
            if any(k in set_summary[m] for m in run.methods if m in set_summary)
        ]
        headers = ["method", "evals"] + [h for _, h in present[:1]]
        headers += ["× floor"] if has_floor else []
        headers += [h for _, h in present[1:]] + ["s/target"]
        rows = []
        if has_floor:
            f = set_summary[FLOOR]
            row = ["noise floor (truth rendered twice)", "–", _cell(f.get(PRIMARY)), "1"]
            row += [_cell(f.get(k)) if k in f else "–" for k, _ in present[1:]] + ["–"]
            rows.append(row)
        for m in run.methods:
            d = set_summary[m]
            evals = d["renders"]["median"]
            row = [
                method_label(m, budget),
                "–" if evals is None else f"{evals:.0f}",
                _cell(d.get(present[0][0])),
            ]
            if has_floor:
                ratio = d.get("ratio_to_floor", {}).get(PRIMARY)
                row.append("–" if ratio is None else f"{ratio:.1f}")
            row += [_cell(d.get(k)) for k, _ in present[1:]]
            row.append(_num(d["seconds"]["median"]))
            if d["failed"]:
                row[0] += f" ({d['failed']} failed)"
            if d.get("silent"):
                row[0] += f" ({d['silent']} silent)"
            rows.append(row)
        lines += _table(headers, rows)
        wr = run.win_rates.get(s, {}).get(PRIMARY)
        if wr and len(run.methods) > 1:
            lines += [
                "",
                f"Paired win rates on mel_l1 ({s}): share of targets where the row's match is closer than "
                "the column's (ties count half).",
                "",
            ]
            rows = []
            for a in run.methods:
                cells = []
                for b in run.methods:
                    e = wr.get(a, {}).get(b)
                    cells.append("–" if a == b or not e or e["rate"] is None else f"{100 * e['rate']:.0f}%")
                rows.append([method_label(a, budget), *cells])
            lines += _table(["row beats column", *run.methods], rows)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------
# files
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown CPU" elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def machine_info() -> dict:
    cpu = cpu_model()
    import torch

    from synthmatch import __version__
    from synthmatch.synth import vita_available, vita_version

    vita = vita_version() if vita_available() else ""

    summary = f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, torch {torch.__version__}"
    return {
        "summary": summary,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "vita": vita,
        "synthmatch": __version__,
        "platform": platform.platform(),
    }


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Path):
        return str(x)
    return x


def write_outputs(run, folder: Path, grid: dict[str, list[dict]], sample_rate: int) -> dict[str, Path]:
    """Write eval.md, eval.json and the PNGs into `folder`; returns their paths by kind."""
    folder.mkdir(parents=True, exist_ok=True)
    run.setup.setdefault("date", _dt.datetime.now().astimezone().isoformat(timespec="seconds"))
    run.markdown = markdown_report(run)
    paths = {"markdown": folder / "eval.md", "json": folder / "eval.json"}
    atomic_write_text(paths["markdown"], run.markdown)
    doc = {
        "config": run.config,
        "setup": run.setup,
        "methods": run.methods,
        "skipped": run.skipped,
        "targets": run.targets,
        "summary": run.summary,
        "win_rates": run.win_rates,
        "floors": run.floors,
        "records": run.records,
    }
    atomic_write_text(paths["json"], json.dumps(_jsonable(doc), indent=1) + "\n")
    paths["budget_png"] = atomic_write_bytes(folder / "budget.png", budget_png(run))
    paths["per_target_png"] = atomic_write_bytes(folder / "per_target.png", per_target_png(run))
    for s, rows in grid.items():
        if rows:
            png = spectrogram_grid_png(rows, run.methods, sample_rate, f"{s}: targets and matches (log-mel)")
            paths[f"spectrograms_{s}"] = atomic_write_bytes(folder / f"spectrograms_{s}.png", png)
    return paths
