"""The statistics of an evaluation run.

- `bootstrap_median_ci`: median with a percentile-bootstrap confidence interval (resampling targets).
- `win_rates`: paired comparison of two methods on the same targets: the share of targets where A
  scores better than B, ties counting half, with a two-sided sign-test p-value over the untied targets.
- `summarize`: per test set and method, every metric's median and 95% CI; the noise floor (two renders
  of the true preset) likewise, and each distance's ratio to it (median of the method / median of the
  floor).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from synthmatch.evaluation.metrics import HIGHER_IS_BETTER

__all__ = [
    "TABLE_METRICS",
    "FLOOR_METRICS",
    "PRIMARY",
    "FLOOR",
    "bootstrap_median_ci",
    "win_rates",
    "win_rates_for",
    "summarize",
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


def method_scores(records: list[dict], methods: Sequence[str], test_set: str, metric: str) -> dict[str, dict]:
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
        scores = method_scores(records, methods, test_set, metric)
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
