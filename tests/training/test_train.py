"""Training end to end on tiny real datasets: learning, checkpoints, resume, DDP, logging, prediction."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from synthmatch.audio.features import model_features
from synthmatch.datagen.mels import MelReader, mel_sidecar_path, precompute_mels
from synthmatch.datagen.store import Dataset, DatasetError
from synthmatch.model.checkpoint import (
    CheckpointError,
    load_checkpoint,
    resolve_checkpoint_path,
    save_checkpoint,
)
from synthmatch.training.data import epoch_batches, split_by_preset
from synthmatch.training.loop import TrainConfig, train

REPO = Path(__file__).resolve().parents[2]


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def mels_dataset(tiny_dataset, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mels") / "t1.h5"
    shutil.copy(tiny_dataset, path)
    precompute_mels(path)
    return path


def test_precompute_mels_matches_feature_function(mels_dataset):
    reader = MelReader(mel_sidecar_path(mels_dataset))
    with Dataset(mels_dataset) as ds:
        expected = model_features(ds.audio(3), reader.settings)
    got = reader.read([3])[0].astype(np.float32)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=0.02)  # float16 storage
    with h5py.File(mel_sidecar_path(mels_dataset)) as f:
        assert f["mels"].chunks == (1, *f["mels"].shape[1:]) and f["mels"].compression is None
        assert f["mels"].dtype == np.float16 and f.attrs["n_mels"] == 128


def test_stale_features_are_refused(mels_dataset):
    with pytest.raises(DatasetError, match="precompute-mels"):
        MelReader(mel_sidecar_path(mels_dataset), expected_fingerprint="something else")


def test_split_keeps_presets_together():
    hashes = np.array([b"a", b"a", b"b", b"c", b"c", b"c", b"d"] * 20)
    train_idx, val_idx = split_by_preset(hashes, 0.3, seed=1)
    assert set(hashes[train_idx]).isdisjoint(set(hashes[val_idx]))
    assert len(train_idx) + len(val_idx) == len(hashes)
    again = split_by_preset(hashes, 0.3, seed=1)
    assert np.array_equal(again[0], train_idx)


def test_split_never_leaves_validation_empty():
    """Whatever the hashes draw, a small dataset asked for a validation split gets one preset there."""
    hashes = np.array([bytes([i]) for i in range(12) for _ in range(2)])
    for seed in range(30):
        train_idx, val_idx = split_by_preset(hashes, 0.01, seed=seed)
        assert len(val_idx) >= 2 and len(train_idx) == len(hashes) - len(val_idx)
        assert len(set(hashes[val_idx])) == 1
    assert len(split_by_preset(hashes, 0.0)[1]) == 0


def test_epoch_batches_shard_the_epoch():
    idx = np.arange(10)
    ranks = [
        np.concatenate(
            epoch_batches(idx, 3, seed=0, epoch=1, rank=r, world_size=2, shuffle=True, pad_to_equal=False)
        )
        for r in range(2)
    ]
    assert sorted(np.concatenate(ranks).tolist()) == list(range(10))
    assert epoch_batches(idx, 3, 0, 1)[0].tolist() != epoch_batches(idx, 3, 0, 2)[0].tolist()


def test_training_lowers_validation_loss(mels_dataset, tmp_path):
    summary = train(
        TrainConfig(
            dataset=mels_dataset,
            output_dir=tmp_path,
            epochs=8,
            batch_size=16,
            model_size="tiny",
            lr=3e-3,
            warmup_epochs=0.5,
            threads=2,
        )
    )
    records = _metrics(tmp_path)
    assert len(records) == 8
    assert records[-1]["val/loss"] < records[0]["val/loss"]
    assert min(r["val/loss"] for r in records) == pytest.approx(summary["best_val_loss"])
    for key in ("train/loss", "val/acc", "val/mse", "val/mse_filter_1", "val/acc_filter_1_model", "lr"):
        assert key in records[-1], key
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["batch_size"] == 16 and config["model_size"] == "tiny"
    assert (tmp_path / "best_model.safetensors").exists() and (tmp_path / "latest.safetensors").exists()


def test_checkpoint_round_trip_without_pickle(tmp_path):
    state = {"w": torch.randn(3, 4), "b": torch.arange(5)}
    meta = {"tier": 2, "names": ["a", "b"], "nested": {"x": 1.5}}
    path = save_checkpoint(tmp_path / "c.safetensors", state, meta, {"opt.0.exp_avg": torch.ones(2)})
    head = path.read_bytes()[:16]
    assert not head.startswith(b"\x80")  # not a pickle stream
    ck = load_checkpoint(path, with_extra=True)
    assert ck.meta["tier"] == 2 and ck.meta["nested"] == {"x": 1.5}
    assert torch.equal(ck.model_state["w"], state["w"]) and torch.equal(ck.model_state["b"], state["b"])
    assert torch.equal(ck.extra_tensors["opt.0.exp_avg"], torch.ones(2))
    # the seed document's `-c checkpoints/best_model.pt` finds best_model.safetensors
    best = save_checkpoint(tmp_path / "best_model.safetensors", state, meta)
    assert resolve_checkpoint_path(tmp_path / "best_model.pt") == best
    bad = tmp_path / "pickled.pt"
    torch.save({"w": torch.ones(1)}, bad)
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)


def _final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "latest.safetensors").model_state


def _train_cmd(dataset: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "synthmatch",
        "-q",
        "train",
        "-d",
        str(dataset),
        "-o",
        str(out),
        "--epochs",
        "6",
        "--batch-size",
        "8",
        "--model-size",
        "tiny",
        "--lr",
        "3e-3",
        "--threads",
        "1",
        "--seed",
        "3",
        *extra,
    ]


@pytest.mark.slow
def test_kill_and_resume_equals_uninterrupted_run(mels_dataset, tmp_path):
    reference = tmp_path / "reference"
    subprocess.run(_train_cmd(mels_dataset, reference), check=True, capture_output=True, timeout=600)
    # a finished run is not replaced by accident: --resume continues it, --overwrite replaces it
    again = subprocess.run(_train_cmd(mels_dataset, reference), capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "pass --resume to continue it or --overwrite" in again.stderr
    resumed = tmp_path / "resumed"
    # Checkpoint after every optimizer step so the kill lands mid-epoch, then SIGKILL.
    cmd = _train_cmd(mels_dataset, resumed, "--checkpoint-every-minutes", "0.0001")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    latest = resumed / "latest.safetensors"
    deadline = time.time() + 300
    while time.time() < deadline and not latest.exists():
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(latest).meta["resume"]["state"]
    assert killed_at["epoch"] < 6, "the run finished before it could be killed"
    subprocess.run(cmd + ["--resume"], check=True, capture_output=True, timeout=600)
    a, b = _final_weights(reference), _final_weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ra, rb = _metrics(reference), _metrics(resumed)
    assert [r["epoch"] for r in rb] == [1, 2, 3, 4, 5, 6]
    for x, y in zip(ra, rb):
        assert x["val/loss"] == pytest.approx(y["val/loss"], rel=1e-9)
        assert x["train/loss"] == pytest.approx(y["train/loss"], rel=1e-9)


# A third of the presets in validation, so that every parameter group has a preset there to be scored on.
VAL_FRACTION = "0.3"


@pytest.mark.slow
def test_ddp_two_processes_report_the_same_validation_metrics(mels_dataset, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    trained = tmp_path / "trained"
    # Train with 2 processes (gloo) ...
    subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "synthmatch",
            "-q",
            "train",
            "-d",
            str(mels_dataset),
            "-o",
            str(trained),
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--model-size",
            "tiny",
            "--threads",
            "1",
            "--device",
            "cpu",
            "--val-fraction",
            VAL_FRACTION,
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    ddp_records = _metrics(trained)
    assert len(ddp_records) == 2
    ckpt = trained / "best_model.safetensors"
    # ... then validate that checkpoint with 1 and with 2 processes.
    single, double = tmp_path / "single", tmp_path / "double"
    base = [
        "-m",
        "synthmatch",
        "-q",
        "train",
        "-d",
        str(mels_dataset),
        "--epochs",
        "0",
        "--init-from",
        str(ckpt),
        "--batch-size",
        "5",
        "--model-size",
        "tiny",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--val-fraction",
        VAL_FRACTION,
    ]
    subprocess.run([sys.executable, *base, "-o", str(single)], check=True, capture_output=True, timeout=600)
    subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", *base, "-o", str(double)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    m1, m2 = _metrics(single)[-1], _metrics(double)[-1]
    keys = [k for k in m1 if k.startswith("val/")]
    assert "val/loss" in keys and "val/acc_filter_1_model" in keys and "val/mse_osc_1" in keys
    for k in keys:
        assert m2[k] == pytest.approx(m1[k], rel=1e-5, abs=1e-7), k


def test_gradient_accumulation_logs_unscaled_loss(mels_dataset, tmp_path):
    a = tmp_path / "a"
    b = tmp_path / "b"
    common = dict(
        dataset=mels_dataset,
        epochs=1,
        batch_size=8,
        model_size="tiny",
        lr=1e-9,
        warmup_epochs=0,
        threads=2,
        dropout=0.0,
    )
    train(TrainConfig(output_dir=a, **common))
    train(TrainConfig(output_dir=b, gradient_accumulation_steps=4, **common))
    la, lb = _metrics(a)[0]["train/loss"], _metrics(b)[0]["train/loss"]
    assert lb == pytest.approx(la, rel=0.05)  # would be 4x smaller if the scaled loss were logged


def test_spectral_metrics_audio_logging_report_and_wandb_offline(mels_dataset, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    train(
        TrainConfig(
            dataset=mels_dataset,
            output_dir=tmp_path / "run",
            epochs=2,
            batch_size=16,
            model_size="tiny",
            compute_spectral_metrics=True,
            spectral_examples=3,
            log_audio_every=2,
            audio_examples=2,
            wandb_project="synthmatch-test",
            wandb_mode="offline",
            threads=2,
        )
    )
    rec = _metrics(tmp_path / "run")[-1]
    assert rec["val/spectral"] > 0
    wavs = sorted((tmp_path / "run" / "audio" / "epoch_002").glob("*.wav"))
    assert len(wavs) == 4 and any("prediction" in w.name for w in wavs)
    assert list((tmp_path / "run").rglob("offline-run-*")), "W&B offline run folder missing"
    proc = subprocess.run(
        [sys.executable, "-m", "synthmatch", "report", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    png = tmp_path / "run" / "curves.png"
    assert png.exists() and png.read_bytes()[:4] == b"\x89PNG"


def test_tier3_training_with_modulation_head(tiny_dataset_t3, tmp_path):
    summary = train(
        TrainConfig(
            dataset=tiny_dataset_t3, output_dir=tmp_path, epochs=2, batch_size=8, model_size="tiny", threads=2
        )
    )
    rec = _metrics(tmp_path)[-1]
    assert "val/loss_mod_exist" in rec and "val/mod_recall" in rec
    assert np.isfinite(summary["best_val_loss"])


def test_init_from_and_freeze(mels_dataset, tiny_dataset_t3, tmp_path):
    first = tmp_path / "t1"
    train(
        TrainConfig(
            dataset=mels_dataset, output_dir=first, epochs=1, batch_size=16, model_size="tiny", threads=2
        )
    )
    second = tmp_path / "t3"
    train(
        TrainConfig(
            dataset=tiny_dataset_t3,
            output_dir=second,
            epochs=1,
            batch_size=8,
            model_size="tiny",
            init_from=first / "best_model.safetensors",
            freeze=True,
            threads=2,
        )
    )
    a = load_checkpoint(first / "best_model.safetensors").model_state
    b = load_checkpoint(second / "latest.safetensors").model_state
    # the frozen first layer is unchanged; the encoder started from the tier-1 model
    assert torch.equal(a["encoder.0.weight"], b["encoder.0.weight"])


def test_predictor_on_a_trained_checkpoint(mels_dataset, tmp_path):
    from synthmatch.inference.predict import Predictor

    train(
        TrainConfig(
            dataset=mels_dataset, output_dir=tmp_path, epochs=1, batch_size=16, model_size="tiny", threads=2
        )
    )
    predictor = Predictor.load(tmp_path / "best_model.pt")  # the seed's name resolves to .safetensors
    with Dataset(mels_dataset) as ds:
        audio = ds.audio(0)
    t0 = time.perf_counter()
    pred = predictor.predict(audio, 22050, midi_note=60)
    assert time.perf_counter() - t0 < 5  # sanity only; speed is measured in benchmarks/train.py
    assert pred.tier == 1 and set(pred.confidence) == set(predictor.categorical_names)
    assert all(0 < c <= 1 for c in pred.confidence.values())
    assert pred.preset.values["osc_1_on"] in (0.0, 1.0)
    assert len(pred.vector.continuous) == len(predictor.continuous_names)


def test_bad_training_inputs(tmp_path):
    with pytest.raises(Exception, match="no such dataset"):
        train(TrainConfig(dataset=tmp_path / "missing.h5", output_dir=tmp_path))
    with pytest.raises(ValueError, match="--batch-size"):
        TrainConfig(dataset=tmp_path / "x.h5", batch_size=0)
    proc = subprocess.run(
        [sys.executable, "-m", "synthmatch", "train", "-d", str(tmp_path / "missing.h5")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "missing.h5" in proc.stderr


def test_a_kill_between_the_two_saves_leaves_a_resumable_run(mels_dataset, tmp_path):
    """The latest checkpoint is written before the best: killed between them, --resume writes the best
    from the latest, and temporaries left by a killed save are removed."""
    run = tmp_path / "run"
    subprocess.run(
        _train_cmd(mels_dataset, run, "--epochs", "2"), check=True, capture_output=True, timeout=600
    )
    meta = load_checkpoint(run / "latest.safetensors").meta
    if meta["resume"]["state"]["bad_epochs"] != 0:
        pytest.skip("the last epoch did not improve: nothing to lose between the saves")
    (run / "best_model.safetensors").unlink()  # as if killed after the latest was written
    stale = run / ".latest.abc123.tmp.safetensors"
    stale.write_bytes(b"")
    subprocess.run(
        _train_cmd(mels_dataset, run, "--epochs", "2", "--resume"),
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert load_checkpoint(run / "best_model.safetensors").meta["epoch"] == 2
    assert not stale.exists()
