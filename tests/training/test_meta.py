"""CheckpointMeta: one set of keys and defaults for what training writes and the Predictor reads."""

from __future__ import annotations

import pytest

from synthmatch.model.checkpoint import load_checkpoint
from synthmatch.model.meta import CheckpointMeta, MetaError


def test_a_trained_checkpoint_round_trips_through_the_type(tiny_dataset, tmp_path):
    from synthmatch.training.loop import TrainConfig, train

    summary = train(TrainConfig(dataset=tiny_dataset, output_dir=tmp_path, epochs=1, model_size="tiny"))
    stored = load_checkpoint(summary["best"] or summary["latest"]).meta
    meta = CheckpointMeta.from_dict(stored)
    assert meta.has_ranges and meta.tier == 1 and meta.base_preset == stored["base_preset"]
    # everything the type holds is what was stored (the resume state and format are the checkpoint's own)
    assert {k: v for k, v in stored.items() if k in meta.to_dict()} == meta.to_dict()


def test_old_checkpoints_get_the_write_sides_defaults_and_a_missing_key_is_named():
    minimal = {
        "tier": 2, "sample_rate": 44100, "duration_s": 2.0, "mel": {}, "continuous_names": ["a"],
        "categorical_names": [], "categorical_n_options": [], "model_config": {},
    }  # fmt: skip
    meta = CheckpointMeta.from_dict(minimal)
    assert meta.base_preset == "basic_shapes" and meta.key_held_s == 1.5 and not meta.has_ranges
    with pytest.raises(MetaError, match="model_config"):
        CheckpointMeta.from_dict({k: v for k, v in minimal.items() if k != "model_config"})
