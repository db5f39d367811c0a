"""CUDA paths (run on a GPU machine; skipped elsewhere)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from synthmatch.datagen.mels import precompute_mels
from synthmatch.training.loop import TrainConfig, train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_cuda_training_and_features(tiny_dataset, tmp_path):
    import shutil

    data = tmp_path / "t1.h5"
    shutil.copy(tiny_dataset, data)
    precompute_mels(data, device="cuda")
    summary = train(
        TrainConfig(
            dataset=data,
            output_dir=tmp_path / "run",
            epochs=2,
            batch_size=16,
            model_size="tiny",
            device="cuda",
        )
    )
    assert summary["best"] is not None
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["device"].startswith("cuda")


def test_torchrun_nccl_single_gpu(tiny_dataset, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [
        str(torchrun) if torchrun.exists() else "torchrun",
        "--standalone",
        "--nproc_per_node=1",
        "-m",
        "synthmatch",
        "train",
        "-d",
        str(tiny_dataset),
        "-o",
        str(tmp_path / "ddp"),
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--model-size",
        "tiny",
        "--device",
        "cuda",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "ddp" / "best_model.safetensors").exists()
