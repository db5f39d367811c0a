"""Statistics, tables and plots of an evaluation run.

- `bootstrap_median_ci`: median with a percentile-bootstrap confidence interval (resampling targets).
- `win_rates`: paired comparison of two methods on the same targets: the share of targets where A
  scores better than B, ties counting half, with a two-sided sign-test p-value over the untied targets.
- `summarize`: per test set and method, every metric's median and 95% CI; the noise floor (two renders
  of the true preset) likewise, and each distance's ratio to it (median of the method / median of the
  floor).
- `write_outputs`: `eval.md` (the table `synthmatch eval` prints), `eval.json` (config, machine, every
  per-target record, summary, win rates), and PNGs: `budget.png` (best-so-far search objective against
  evaluations), `per_target.png` (mel_l1 of every method on every target) and `spectrograms_<set>.png`
  (targets and their matches, log-mel, one colour scale per row).
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synthmatch.atomic import atomic_write_bytes, atomic_write_text
from synthmatch.evaluation.baselines import METHOD_LABELS, SEARCH_METHODS
from synthmatch.evaluation.metrics import HIGHER_IS_BETTER

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

# (key, column header) in table order; HIGHER_IS_BETTER says which way is better.
TABLE_METRICS = (
    ("mel_l1", "mel_l1"),
    ("mfcc", "MFCC dist."),
    ("spectral_convergence", "spectral conv."),
    ("envelope_cos", "envelope cos ↑"),
    ("pitch_error", "pitch err. (st)"),
    ("level_error_db", "level err. (dB)"),
    ("param_mae", "param MAE"),
    ("cat_accuracy", "categorical acc. ↑"),
)
FLOOR_METRICS = ("mel_l1", "mfcc", "spectral_convergence", "envelope_cos", "pitch_error")
PRIMARY = "mel_l1"
FLOOR = "floor"


# ---------------------------------------------------------------------------------------------------
# statistics
def bootstrap_median_ci(
    values: Sequence[float | None], level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> dict[str, float | int | None]:
    """Median of the finite values and its percentile-bootstrap confidence interval.

    Returns:
        {"median", "ci_low", "ci_high", "n"}; None for an empty sample (CI of one value is that value).
    """
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
    n = len(x)
    if n == 0:
        return {"median": None, "ci_low": None, "ci_high": None, "n": 0}
    med = float(np.median(x))
    if n == 1:
        return {"median": med, "ci_low": med, "ci_high": med, "n": 1}
    rng = np.random.default_rng(seed)
    boots = np.median(x[rng.integers(0, n, size=(n_boot, n))], axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(boots, [alpha, 1 - alpha])
    return {"median": med, "ci_low": float(lo), "ci_high": float(hi), "n": n}


def _sign_test_p(wins: int, losses: int) -> float | None:
    n = wins + losses
    if n == 0:
        return None
    from scipy.stats import binomtest

    return float(binomtest(wins, n, 0.5).pvalue)


def win_rates(
    scores: dict[str, dict[str, float]], higher_is_better: bool = False
) -> dict[str, dict[str, dict[str, Any]]]:
    """Paired win rates between methods.

    Args:
        scores: method -> {target -> metric value}; only targets both methods scored (finite) are compared.
        higher_is_better: the metric's direction.
    Returns:
        rates[a][b] = {"rate": share of the paired targets where a beats b (ties count half), "wins",
        "ties", "losses", "n", "p_value": two-sided sign test over the untied targets}.
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for a, sa in scores.items():
        out[a] = {}
        for b, sb in scores.items():
            if a == b:
                continue
            common = [
                t
                for t in sa
                if t in sb
                and sa[t] is not None
                and sb[t] is not None
                and math.isfinite(sa[t])
                and math.isfinite(sb[t])
            ]
            diff = np.array([sa[t] - sb[t] for t in common], np.float64)
            if higher_is_better:
                diff = -diff
            wins, losses = int(np.sum(diff < 0)), int(np.sum(diff > 0))
            ties = len(common) - wins - losses
            n = len(common)
            out[a][b] = {
                "rate": (wins + 0.5 * ties) / n if n else None,
                "wins": wins,
                "ties": ties,
                "losses": losses,
                "n": n,
                "p_value": _sign_test_p(wins, losses),
            }
    return out


def _scores(records: list[dict], methods: Sequence[str], test_set: str, metric: str) -> dict[str, dict]:
    scores: dict[str, dict[str, float]] = {m: {} for m in methods}
    for r in records:
        if r["test_set"] == test_set and r["method"] in scores and "metrics" in r:
            v = r["metrics"].get(metric)
            if v is not None:
                scores[r["method"]][r["target"]] = float(v)
    return scores


def win_rates_for(records: list[dict], methods: Sequence[str], test_set: str) -> dict[str, dict]:
    """Win rates of one test set for every metric that was measured."""
    out = {}
    for metric, _ in TABLE_METRICS:
        scores = _scores(records, methods, test_set, metric)
        if any(scores.values()):
            out[metric] = win_rates(scores, metric in HIGHER_IS_BETTER)
    return out


def summarize(
    records: list[dict], floors: list[dict], methods: Sequence[str], test_sets: Sequence[str]
) -> dict[str, dict]:
    """summary[test_set][method or "floor"][metric] = bootstrap_median_ci(...) plus seconds, renders,
    failures and, for sets with a floor, "ratio_to_floor"[metric]."""
    out: dict[str, dict] = {}
    for s in test_sets:
        set_out: dict[str, dict] = {}
        floor_recs = [f for f in floors if f["test_set"] == s]
        if floor_recs:
            set_out[FLOOR] = {
                m: bootstrap_median_ci([f["metrics"].get(m) for f in floor_recs]) for m in FLOOR_METRICS
            }
        for method in methods:
            recs = [r for r in records if r["test_set"] == s and r["method"] == method]
            ok = [r for r in recs if "metrics" in r]
            d: dict[str, Any] = {
                m: bootstrap_median_ci([r["metrics"].get(m) for r in ok])
                for m, _ in TABLE_METRICS
                if any(m in r["metrics"] for r in ok)
            }
            d["seconds"] = bootstrap_median_ci([r.get("seconds") for r in recs if "seconds" in r])
            d["renders"] = bootstrap_median_ci([r.get("renders") for r in recs if "renders" in r])
            d["failed"] = len(recs) - len(ok)
            d["silent"] = int(sum(r["metrics"].get("silent", 0.0) for r in ok))
            if FLOOR in set_out:
                ratios = {}
                for m in FLOOR_METRICS:
                    if m in HIGHER_IS_BETTER or m not in d:
                        continue
                    fm, mm = set_out[FLOOR][m]["median"], d[m]["median"]
                    ratios[m] = mm / fm if fm and mm is not None else None
                d["ratio_to_floor"] = ratios
            set_out[method] = d
        out[s] = set_out
    return out


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


def _label(method: str, budget: int) -> str:
    label = METHOD_LABELS.get(method, method)
    return f"{label} (B={budget})" if method in SEARCH_METHODS else label


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
            row = [_label(m, budget), "–" if evals is None else f"{evals:.0f}", _cell(d.get(present[0][0]))]
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
                rows.append([_label(a, budget), *cells])
            lines += _table(["row beats column", *run.methods], rows)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------
# plots
def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    return Figure(figsize=(width, height), dpi=100)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _colors(methods: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    from synthmatch.evaluation.baselines import METHODS

    return {m: cmap(METHODS.index(m) if m in METHODS else i) for i, m in enumerate(methods)}


def budget_png(run) -> bytes:
    """Median best-so-far search objective against evaluations (IQR shaded), one panel per test set;
    the other methods' median mel_l1 and the noise floor as horizontal lines."""
    sets = list(run.summary)
    budget = int(run.config["budget"])
    colors = _colors(run.methods)
    fig = _figure(max(7.0, 5.5 * len(sets)), 5.0)
    axes = np.atleast_1d(fig.subplots(1, len(sets), squeeze=False)[0])
    grid = np.arange(1, budget + 1)
    for ax, s in zip(axes, sets):
        for m in run.methods:
            hist = [
                r["history"]
                for r in run.records
                if r["test_set"] == s and r["method"] == m and r.get("history")
            ]
            if hist:
                curves = []
                for h in hist:
                    e = np.array([p[0] for p in h])
                    v = np.array([p[1] for p in h])
                    idx = np.searchsorted(e, grid, side="right") - 1  # best so far after each evaluation
                    curves.append(np.where(idx >= 0, v[np.clip(idx, 0, None)], np.nan))
                c = np.array(curves)
                with np.errstate(all="ignore"):
                    med = np.nanmedian(c, axis=0)
                    q1, q3 = np.nanpercentile(c, 25, axis=0), np.nanpercentile(c, 75, axis=0)
                ax.plot(grid, med, color=colors[m], label=_label(m, budget))
                ax.fill_between(grid, q1, q3, color=colors[m], alpha=0.15, linewidth=0)
            else:
                stat = run.summary[s][m].get(PRIMARY)
                if stat and stat["median"] is not None:
                    ax.axhline(stat["median"], color=colors[m], linestyle=":", label=_label(m, budget))
        floor = run.summary[s].get(FLOOR, {}).get(PRIMARY)
        if floor and floor["median"] is not None:
            ax.axhline(floor["median"], color="black", linestyle="--", label="noise floor")
        ax.set_xscale("log")
        ax.set_xlabel("evaluations (renders)")
        ax.set_ylabel("mel_l1 (best so far)")
        ax.set_title(f"{s}: median over {len(run.targets.get(s, []))} targets", fontsize=10)
        ax.grid(alpha=0.3)
    _shared_legend(fig, axes)
    fig.suptitle(
        "Search objective (fixed phase) against budget; dotted: methods without search (scored render)",
        fontsize=9,
    )
    return _png(fig)


def _shared_legend(fig, axes, top: bool = False) -> None:
    """One legend for all panels: below them (budget plot) or above them (per-target plot)."""
    handles, labels = {}, []
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = h
                labels.append(label)
    if not labels:
        return
    rows = (len(labels) + 3) // 4
    kw = {"ncol": min(4, len(labels)), "fontsize": 7}
    if top:
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.06 * rows))
        fig.legend([handles[k] for k in labels], labels, loc="upper center", **kw)
    else:
        fig.legend([handles[k] for k in labels], labels, loc="lower center", **kw)
        fig.subplots_adjust(bottom=0.14 + 0.05 * rows, top=0.88, wspace=0.25)


def per_target_png(run) -> bytes:
    """mel_l1 of every method on every target (log scale), targets ordered by the floor or the best method."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    sets = list(run.summary)
    colors = _colors(run.methods)
    widths = [max(4.0, 0.25 * len(run.targets.get(s, [])) + 2) for s in sets]
    fig = _figure(max(7.0, sum(widths)), 5.5)
    axes = np.atleast_1d(fig.subplots(1, len(sets), squeeze=False, gridspec_kw={"width_ratios": widths})[0])
    markers = "os^vD<>P*X"
    for ax, s in zip(axes, sets):
        names = run.targets.get(s, [])
        floor = {f["target"]: f["metrics"].get(PRIMARY) for f in run.floors if f["test_set"] == s}
        vals = {m: _scores(run.records, [m], s, PRIMARY)[m] for m in run.methods}
        best = {t: np.nanmin([vals[m].get(t, np.nan) for m in run.methods] or [np.nan]) for t in names}
        order = sorted(names, key=lambda t: floor.get(t, np.inf) if floor else best[t])
        x = np.arange(len(order))
        for k, m in enumerate(run.methods):
            y = [vals[m].get(t, np.nan) for t in order]
            ax.scatter(
                x, y, s=18, marker=markers[k % len(markers)], color=colors[m], label=METHOD_LABELS.get(m, m)
            )
        if floor:
            ax.plot(x, [floor.get(t, np.nan) for t in order], color="black", linewidth=1, label="noise floor")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(x)
        ax.set_xticklabels(order, rotation=90, fontsize=6)
        ax.set_ylabel("mel_l1")
        ax.set_title(f"{s}: per target", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    _shared_legend(fig, axes, top=True)
    return _png(fig)


def spectrogram_grid_png(rows: list[dict], methods: Sequence[str], sample_rate: int, title: str) -> bytes:
    """Targets (rows) and each method's match (columns) as log-mel spectrograms at equal loudness."""
    from synthmatch.audio.features import MelSettings, log_mel, normalize_loudness

    cols = ["target", *methods]
    fig = _figure(1.9 * len(cols) + 0.5, 1.6 * len(rows) + 0.8)
    axes = fig.subplots(len(rows), len(cols), squeeze=False)
    settings = MelSettings(sample_rate=int(sample_rate), n_fft=2048, hop_length=512, n_mels=96)
    for i, row in enumerate(rows):
        target = np.asarray(row["target"], np.float32).reshape(-1)
        sounds = [target] + [row["matches"].get(m) for m in methods]
        specs = [None if a is None else log_mel(normalize_loudness(a.reshape(-1)), settings) for a in sounds]
        target_spec = specs[0]
        assert target_spec is not None  # the target is always there
        vmax = float(target_spec.max())
        for j, (ax, spec) in enumerate(zip(axes[i], specs)):
            ax.set_xticks([])
            ax.set_yticks([])
            if spec is not None:
                ax.imshow(spec, origin="lower", aspect="auto", vmin=vmax - 12.0, vmax=vmax, cmap="magma")
            else:
                ax.text(0.5, 0.5, "failed", ha="center", va="center", transform=ax.transAxes, fontsize=8)
            if i == 0:
                ax.set_title(METHOD_LABELS.get(cols[j], cols[j]), fontsize=8)
            if j == 0:
                ax.set_ylabel(row["name"], fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _png(fig)


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
