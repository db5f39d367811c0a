"""The plots of an evaluation run (PNG bytes): `budget_png` (best-so-far search objective against
evaluations), `per_target_png` (mel_l1 of every method on every target) and `spectrogram_grid_png`
(targets and their matches, log-mel, one colour scale per row)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from synthmatch.evaluation.baselines import METHOD_LABELS, method_label
from synthmatch.evaluation.stats import FLOOR, PRIMARY, method_scores

__all__ = ["budget_png", "per_target_png", "spectrogram_grid_png"]


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
                ax.plot(grid, med, color=colors[m], label=method_label(m, budget))
                ax.fill_between(grid, q1, q3, color=colors[m], alpha=0.15, linewidth=0)
            else:
                stat = run.summary[s][m].get(PRIMARY)
                if stat and stat["median"] is not None:
                    ax.axhline(stat["median"], color=colors[m], linestyle=":", label=method_label(m, budget))
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
        vals = {m: method_scores(run.records, [m], s, PRIMARY)[m] for m in run.methods}
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
