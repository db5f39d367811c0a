"""`infer -c CKPT`: starting from a model's prediction (a tiny untrained network, saved as a real checkpoint)."""

from __future__ import annotations

import logging

import pytest
import torch

from synthmatch.audio.features import MelSettings
from synthmatch.model.checkpoint import save_checkpoint
from synthmatch.model.nets import MODEL_SIZES, ModelConfig, SynthMatchNet
from synthmatch.synth.params import param_space
from synthmatch.synth.presets import Preset

TIER = 1


def tiny_checkpoint(path, with_ranges: bool = True):
    ts = param_space().tier(TIER)
    mel = MelSettings(sample_rate=44100, n_fft=2048, hop_length=512, n_mels=32)
    duration_s = 1.0
    cfg = ModelConfig(
        n_mels=mel.n_mels,
        n_frames=mel.n_frames(int(duration_s * mel.sample_rate)),
        n_continuous=len(ts.continuous),
        categorical_sizes=tuple(ts.n_options),
        size="tiny",
        **MODEL_SIZES["tiny"],
    )
    torch.manual_seed(0)
    model = SynthMatchNet(cfg)
    meta = {
        "tier": TIER,
        "sample_rate": mel.sample_rate,
        "duration_s": duration_s,
        "note_duration_s": 0.6,
        "base_preset": "basic_shapes",
        "mel": mel.to_dict(),
        "feature_mean": 0.0,
        "feature_std": 1.0,
        "continuous_names": list(ts.continuous),
        "categorical_names": list(ts.categorical),
        "categorical_n_options": list(ts.n_options),
        "model_config": cfg.to_dict(),
    }
    if with_ranges:
        meta["continuous_min"] = ts.cont_min.tolist()
        meta["continuous_max"] = ts.cont_max.tolist()
    return save_checkpoint(path, model.state_dict(), meta)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


def test_infer_from_a_model_with_refinement(known, cli, checkpoint, tmp_path):
    out = tmp_path / "m.vital"
    run = cli(
        "infer", "-c", checkpoint, "-i", known.wav, "-o", out, "--refine", "--refine-evals", "20", "--json"
    )
    assert run.code == 0, run.err
    (r,) = run.json()
    start = r["start"]
    assert start["source"] == "model" and start["tier"] == TIER
    assert set(start["confidence"]) == set(param_space().tier(TIER).categorical)
    assert all(0.0 <= c <= 1.0 for c in start["confidence"].values())
    # an untrained model's start may be too quiet to be a match: then init is matched with what is left
    ref = r["refine"] if "refine" in r else r["first_attempt"]["refine"]
    assert ref["tier"] == TIER and ref["final_loss"] <= ref["aligned_loss"]
    assert r["renders"] <= 20 and not r["silent"]
    Preset.load(out)


def test_model_conflicts_are_one_line_errors(known, cli, checkpoint, tmp_path):
    for extra, message in (
        (("--tier", "2"), "conflicts with the model, which is tier 1"),
        (("--start", "init"), "not both"),
    ):
        run = cli("infer", "-c", checkpoint, "-i", known.wav, "-o", tmp_path / "x", *extra)
        assert run.code == 2 and len(run.error_lines) == 1 and message in run.error_lines[0], run.err
        assert not (tmp_path / "x").exists()


def test_checkpoint_without_ranges_warns_once(known, tmp_path, caplog):
    """The seed report's bug 4: a checkpoint lacking the ranges to denormalise is used with one warning."""
    from synthmatch.inference.predict import Predictor

    path = tiny_checkpoint(tmp_path / "old.safetensors", with_ranges=False)
    with caplog.at_level(logging.WARNING, logger="synthmatch.inference.predict"):
        predictor = Predictor.load(path)
        for _ in range(2):
            prediction = predictor.predict(known.audio, 44100, midi_note=57)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no parameter ranges" in warnings[0].getMessage()
    assert prediction.preset.to_vital_json()  # still exports real control values
