"""`synthmatch eval` end to end: a tiny real model and training set, the quick run through the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from synthmatch.datagen.mels import mel_sidecar_path
from synthmatch.datagen.store import Dataset
from synthmatch.errors import ConfigError
from synthmatch.evaluation.baselines import METHODS, SEARCH_METHODS, NearestNeighbour
from synthmatch.evaluation.benchmark import EvalConfig, run_eval
from tests.helpers import EXAMPLES_DIR, REPO


@pytest.mark.parametrize("sidecar", [True, False])
def test_nearest_neighbour_finds_a_training_example_itself(eval_train_data, tmp_path, sidecar):
    path = eval_train_data
    if not sidecar:  # a copy without its precomputed features: embedded from the audio
        path = tmp_path / "copy.h5"
        shutil.copy(eval_train_data, path)
    nn = NearestNeighbour(path)
    assert nn.source == ("sidecar" if sidecar else "audio") and len(nn) == 48
    with Dataset(eval_train_data) as ds:
        for i in (0, 17, 41):
            row, dist = nn.query(ds.audio(i), ds.schema.sample_rate)
            assert row == i and dist < 0.5
    assert nn.preset(17).values == Dataset(eval_train_data).preset(17).values
    nn.close()


def test_missing_inputs_skip_methods(tmp_path):
    run = run_eval(
        EvalConfig(
            test_sets=("in_domain",), n=1, budget=4, methods=("init", "nn"), output=tmp_path, quick=True
        )
    )
    assert run.methods == ["init"] and "--train-data" in run.skipped["nn"]
    doc = json.loads((tmp_path / "eval.json").read_text())
    assert doc["skipped"] == run.skipped and doc["summary"]["in_domain"]["init"]["mel_l1"]["n"] == 1
    assert "Skipped: `nn`" in (tmp_path / "eval.md").read_text()


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="--methods"):
        EvalConfig(methods=("init", "genetic"))
    with pytest.raises(ConfigError, match="--audio-dir"):
        EvalConfig(test_sets=("audio",))
    with pytest.raises(ConfigError, match="--test-sets"):
        EvalConfig(test_sets=("in-domain-typo",))
    with pytest.raises(ConfigError, match="no such dataset"):
        EvalConfig(train_data=tmp_path / "missing.h5")
    with pytest.raises(ConfigError, match="no such checkpoint"):
        EvalConfig(checkpoint=tmp_path / "best_model.pt")


def test_eval_finds_a_checkpoint_as_infer_does(tiny_checkpoint):
    """`eval -c run/best_model.pt` and `-c run/` find run/best_model.safetensors, as `infer -c` does."""
    assert tiny_checkpoint.suffix == ".safetensors"
    for given in (tiny_checkpoint.with_suffix(".pt"), tiny_checkpoint.parent):
        assert EvalConfig(checkpoint=given).checkpoint_path() == tiny_checkpoint


@pytest.mark.slow
def test_quick_eval_cli_end_to_end(tiny_checkpoint, eval_train_data, tmp_path):
    assert mel_sidecar_path(eval_train_data).exists()
    audio_dir = tmp_path / "sounds"
    audio_dir.mkdir()
    shutil.copy(EXAMPLES_DIR / "vital_pluck_C4.wav", audio_dir)
    out = tmp_path / "eval"
    args = ["eval", "--quick", "-c", str(tiny_checkpoint), "--train-data", str(eval_train_data)]
    args += ["--test-sets", "in_domain,community,audio", "--audio-dir", str(audio_dir), "-o", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "synthmatch", *args, "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    table = (out / "eval.md").read_text()
    assert table in proc.stdout  # the printed table is the file's (pasted into docs/BENCHMARKS.md)
    for heading in ("### in_domain: 3 targets", "### community: 2 targets", "### audio: 1 target"):
        assert heading in table
    for label in (
        "Vital init preset",
        "random preset",
        "nearest neighbour",
        "model only",
        "model + CMA-ES (B=24)",
    ):
        assert label in table
    assert "noise floor" in table and "× floor" in table and "row beats column" in table

    doc = json.loads((out / "eval.json").read_text())
    ran = [m for m in METHODS if m != "candidates"]  # candidates need a budget of at least 100
    assert doc["methods"] == ran and list(doc["skipped"]) == ["candidates"]
    assert doc["config"]["budget"] == 24 and doc["setup"]["tier"] == 1  # the model's tier
    assert doc["setup"]["train_data"]["features"] == "sidecar"
    assert doc["targets"]["audio"] == ["vital_pluck_C4"]
    recs = doc["records"]
    assert len(recs) == len(ran) * 6 and not any("error" in r for r in recs)
    for r in recs:
        m = r["metrics"]
        assert np.isfinite(m["mel_l1"]) and r["seconds"] >= 0
        assert ("param_mae" in m) == (r["test_set"] != "audio")  # ground truth only for renders
        if r["method"] in SEARCH_METHODS:
            # a match that falls back to init (a silent start) spends its finishing renders on top
            limit = 24 + (16 if r["info"].get("fallback") else 0)
            assert 1 <= r["renders"] <= limit and r["history"][-1][0] <= 24
            losses = [loss for _, loss in r["history"]]
            assert losses == sorted(losses, reverse=True)  # best so far never rises
        elif r["method"] in ("init", "random"):
            assert r["renders"] == 0
        else:  # model, nn: matched without search (pitch alignment, tuning, level): a few renders
            assert 1 <= r["renders"] <= 30  # twice that when a silent start falls back to init
        assert m["level_error_db"] >= 0 and m["silent"] in (0.0, 1.0)
    assert {r["renders"] for r in recs if r["method"] == "random_search"} == {24}
    assert len(doc["floors"]) == 5  # in-domain and community targets have a true preset
    s = doc["summary"]["in_domain"]
    assert s["floor"]["mel_l1"]["n"] == 3 and s["model"]["ratio_to_floor"]["mel_l1"] > 0
    for stat in (s[m]["mel_l1"] for m in ran):
        assert stat["ci_low"] <= stat["median"] <= stat["ci_high"]
    wr = doc["win_rates"]["community"]["mel_l1"]
    assert wr["init"]["model"]["rate"] + wr["model"]["init"]["rate"] == pytest.approx(1.0)

    for png in (
        "budget",
        "per_target",
        "spectrograms_in_domain",
        "spectrograms_community",
        "spectrograms_audio",
    ):
        data = (out / f"{png}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


@pytest.mark.slow
def test_candidates_method_spends_the_budget_of_the_single_start(tiny_checkpoint, tmp_path):
    """`candidates` and `model_cmaes` get the same budget; below 100 renders the method is skipped."""
    cfg = dict(checkpoint=tiny_checkpoint, test_sets=("in_domain",), n=1, max_seconds=1.0, output=tmp_path)
    run = run_eval(EvalConfig(budget=100, methods=("model_cmaes", "candidates"), workers=2, **cfg))
    assert run.methods == ["model_cmaes", "candidates"] and run.skipped == {}
    by = {r["method"]: r for r in run.records}
    assert 1 <= by["candidates"]["renders"] <= 100 and 1 <= by["model_cmaes"]["renders"] <= 100
    assert by["candidates"]["info"]["candidates"] >= 1
    assert np.isfinite(by["candidates"]["metrics"]["mel_l1"])
    assert "model + candidates (B=100)" in run.markdown
    with pytest.raises(ConfigError, match="candidates: the budget \\(24\\) is below 100"):
        run_eval(EvalConfig(budget=24, methods=("candidates",), **{**cfg, "output": tmp_path / "s"}))
