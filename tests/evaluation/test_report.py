"""Statistics of a run: bootstrap CIs, paired win rates, the refinement's budget curve, the summary."""

from __future__ import annotations

import numpy as np
import pytest

from synthmatch.evaluation.baselines import embed_features, refine_history
from synthmatch.evaluation.stats import bootstrap_median_ci, summarize, win_rates
from synthmatch.inference.refine import RefineResult
from synthmatch.synth.presets import Preset


@pytest.mark.parametrize("n", [2, 5, 40])
def test_bootstrap_ci_contains_the_median(n):
    x = np.random.default_rng(n).lognormal(size=n)
    s = bootstrap_median_ci(list(x) + [float("nan")], seed=1)  # NaN (e.g. unpitched) is left out
    assert s["n"] == n and s["median"] == pytest.approx(float(np.median(x)))
    assert s["ci_low"] <= s["median"] <= s["ci_high"]
    assert s["ci_low"] >= x.min() and s["ci_high"] <= x.max()
    assert bootstrap_median_ci(list(x), seed=1) == s  # same seed, same interval


def test_bootstrap_ci_narrows_with_more_targets():
    rng = np.random.default_rng(0)
    small, large = bootstrap_median_ci(rng.normal(size=10)), bootstrap_median_ci(rng.normal(size=400))
    assert large["ci_high"] - large["ci_low"] < small["ci_high"] - small["ci_low"]


def test_bootstrap_ci_degenerate_samples():
    assert bootstrap_median_ci([]) == {"median": None, "ci_low": None, "ci_high": None, "n": 0}
    assert bootstrap_median_ci([2.0, float("nan")]) == {"median": 2.0, "ci_low": 2.0, "ci_high": 2.0, "n": 1}


def test_win_rate_bookkeeping():
    scores = {
        "a": {"t1": 1.0, "t2": 2.0, "t3": 3.0, "t4": 1.0, "t5": 0.5},
        "b": {"t1": 2.0, "t2": 2.0, "t3": 1.0, "t4": float("nan"), "t5": 0.7},
        "c": {"t1": 0.0},
    }
    w = win_rates(scores)
    ab = w["a"]["b"]  # t1 and t5 won, t2 tied, t3 lost; t4 unpaired (NaN)
    assert (ab["wins"], ab["ties"], ab["losses"], ab["n"]) == (2, 1, 1, 4)
    assert ab["rate"] == pytest.approx(2.5 / 4)
    assert w["b"]["a"]["rate"] == pytest.approx(1 - ab["rate"])
    assert (w["c"]["a"]["wins"], w["c"]["a"]["n"]) == (1, 1)  # only the target both scored
    assert 0 < ab["p_value"] <= 1
    up = win_rates(scores, higher_is_better=True)["a"]["b"]  # e.g. envelope cosine: bigger wins
    assert (up["wins"], up["losses"]) == (1, 2)


def test_summary_reports_floor_ratio_and_failures():
    recs = [
        {
            "target": f"t{i}",
            "test_set": "in_domain",
            "method": "init",
            "seconds": 0.1,
            "renders": 0,
            "metrics": {"mel_l1": 2.0 + i, "envelope_cos": 0.5},
        }
        for i in range(3)
    ] + [{"target": "t3", "test_set": "in_domain", "method": "init", "error": "boom"}]
    floors = [{"target": f"t{i}", "test_set": "in_domain", "metrics": {"mel_l1": 0.5}} for i in range(3)]
    s = summarize(recs, floors, ["init"], ["in_domain"])["in_domain"]
    assert s["init"]["mel_l1"]["median"] == 3.0 and s["floor"]["mel_l1"]["median"] == 0.5
    assert s["init"]["ratio_to_floor"]["mel_l1"] == pytest.approx(6.0)
    assert "envelope_cos" not in s["init"]["ratio_to_floor"]  # higher is better: no ratio
    assert s["init"]["failed"] == 1


def test_refine_history_counts_evaluations():
    result = RefineResult(Preset.init(), history=[3.0, 2.0, 1.0], history_evals=[1, 5, 9])
    assert refine_history(result) == [(1, 3.0), (5, 2.0), (9, 1.0)]
    assert refine_history(RefineResult(Preset.init())) == []


def test_embedding_shapes():
    feats = np.random.default_rng(0).standard_normal((2, 128, 44)).astype(np.float32)
    e = embed_features(feats)
    assert e.shape == (2, 32 * 8 + 32) and np.isfinite(e).all()
    assert embed_features(feats[:, :, :3]).shape == (2, 32 * 3 + 32)  # fewer frames than segments
