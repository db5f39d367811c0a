"""A tiny real training set and model for the evaluation tests: rendered by vita, trained in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthmatch.datagen.mels import precompute_mels
from synthmatch.training.loop import TrainConfig, train
from tests.training.helpers import make_dataset


@pytest.fixture(scope="session")
def eval_train_data(tmp_path_factory) -> Path:
    """48 tier-1 examples (22.05 kHz, 0.5 s) with their precomputed log-mel sidecar."""
    path = make_dataset(tmp_path_factory.mktemp("eval_data") / "t1.h5", tier=1, n=48, seed=11)
    precompute_mels(path)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(eval_train_data, tmp_path_factory) -> Path:
    """A tiny tier-1 model trained for two epochs on `eval_train_data` (real, if not good)."""
    run = tmp_path_factory.mktemp("eval_run")
    summary = train(
        TrainConfig(
            dataset=eval_train_data, output_dir=run, epochs=2, batch_size=16, model_size="tiny", threads=2
        )
    )
    return Path(summary["best"] or summary["latest"])
