"""Validation of a model during training.

`evaluate` scores the whole validation set (each DDP rank its share, then summed over ranks);
`spectral_metrics` renders a few fixed validation predictions through Vital and measures them against
the target audio; `log_audio` writes target/prediction WAV pairs of a few fixed examples.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from synthmatch.datagen.store import Dataset
from synthmatch.model.decode import decode_outputs
from synthmatch.model.nets import SynthMatchNet
from synthmatch.training.context import RunContext
from synthmatch.training.data import epoch_batches
from synthmatch.training.loss import MetricSums, ParamLayout, combine_loss, compute_loss

if TYPE_CHECKING:
    from synthmatch.synth.presets import Preset

__all__ = ["validate", "evaluate", "spectral_metrics", "log_audio"]


def validate(model: SynthMatchNet, ctx: RunContext) -> dict[str, float]:
    """Validation metrics (and the rendered spectral ones with --compute-spectral-metrics)."""
    metrics = evaluate(model, ctx)
    if ctx.cfg.compute_spectral_metrics:
        metrics.update(spectral_metrics(model, ctx))
    return metrics


@torch.no_grad()
def evaluate(model: SynthMatchNet, ctx: RunContext) -> dict[str, float]:
    """Validation metrics over the whole validation set (each rank scores its share, then all-reduce)."""
    cfg, dist_info = ctx.cfg, ctx.dist_info
    model.eval()
    sums = MetricSums()
    batches = epoch_batches(
        ctx.val_idx,
        cfg.batch_size,
        cfg.seed,
        0,
        dist_info.rank,
        dist_info.world_size,
        shuffle=False,
        pad_to_equal=False,
    )
    for batch in ctx.loader(batches):
        batch = ctx.to_device(batch)
        out = model(batch["mel"], batch["midi_note"])
        compute_loss(out, batch, ctx.layout, ctx.weights, ctx.param_weights, metrics=sums, detailed=True)
    if dist_info.enabled:
        sums.all_reduce(_metric_names(ctx.layout))
    means = sums.reduce(prefix="val/")
    means["val/loss"] = combine_loss(means, ctx.weights, prefix="val/")
    model.train()
    return means


def spectral_metrics(model: SynthMatchNet, ctx: RunContext) -> dict[str, float]:
    """Render N fixed validation predictions through Vital; multi-scale log-mel distance to the target audio."""
    from synthmatch.audio.distances import multiscale_log_mel_l1
    from synthmatch.synth.render import Renderer

    labels, dist_info = ctx.labels, ctx.dist_info
    subset = _fixed_val_subset(ctx.val_idx, ctx.cfg.spectral_examples)[dist_info.rank :: dist_info.world_size]
    sums = MetricSums()
    if len(subset):
        presets = _predict_presets(model, ctx, subset)
        s = labels.schema
        with Renderer(sample_rate=s.sample_rate) as r, Dataset(labels.path) as ds:
            results = r.render_batch(
                presets, [int(labels.midi_note[i]) for i in subset], s.note_duration_s, s.duration_s
            )
            for i, res in zip(subset, results):
                target = ds.audio(int(i))
                target = target.mean(0) if target.ndim == 2 else target
                if res.ok and res.audio is not None:  # (ok implies audio)
                    sums.add("spectral", multiscale_log_mel_l1(res.audio, target, s.sample_rate), 1)
    if dist_info.enabled:
        sums.all_reduce(["spectral"])
    return sums.reduce(prefix="val/")


def log_audio(model: SynthMatchNet, ctx: RunContext, epoch: int) -> list[tuple[str, Path]]:
    """Write target/prediction WAV pairs for a few fixed validation examples; returns (name, path)s."""
    from synthmatch.audio.io import write_wav
    from synthmatch.synth.render import Renderer

    labels = ctx.labels
    subset = _fixed_val_subset(ctx.val_idx, ctx.cfg.audio_examples)
    presets = _predict_presets(model, ctx, subset)
    s = labels.schema
    folder = ctx.out_dir / "audio" / f"epoch_{epoch:03d}"
    pairs = []
    with Renderer(sample_rate=s.sample_rate) as r, Dataset(labels.path) as ds:
        results = r.render_batch(
            presets, [int(labels.midi_note[i]) for i in subset], s.note_duration_s, s.duration_s
        )
        for i, res in zip(subset, results):
            target = ds.audio(int(i))
            t_path = write_wav(folder / f"example_{i}_target.wav", target, s.sample_rate)
            pairs.append((f"example_{i}_target", t_path))
            if res.ok and res.audio is not None:  # (ok implies audio)
                p_path = write_wav(folder / f"example_{i}_prediction.wav", res.audio, s.sample_rate)
                pairs.append((f"example_{i}_prediction", p_path))
    return pairs


def _metric_names(layout: ParamLayout) -> list[str]:
    names = ["loss_continuous", "loss_categorical", "mse", "acc"]
    names += [f"mse_{g}" for g in sorted(set(layout.cont_group))]
    names += [f"acc_{n}" for n in layout.categorical_names]
    if layout.n_mod_sources:
        names += ["loss_mod_exist", "loss_mod_attr", "mod_precision", "mod_recall"]
    return sorted(names)


def _fixed_val_subset(val_idx: np.ndarray, n: int) -> np.ndarray:
    if len(val_idx) <= n:
        return np.sort(val_idx)
    pick = np.random.default_rng(12345).choice(len(val_idx), size=n, replace=False)
    return np.sort(val_idx[pick])


@torch.no_grad()
def _predict_presets(model: SynthMatchNet, ctx: RunContext, idx: np.ndarray) -> list[Preset]:
    from synthmatch.synth.presets import Preset, base_preset

    batch = ctx.to_device(ctx.batch_dataset([idx])[0])
    model.eval()
    out = model(batch["mel"], batch["midi_note"])
    model.train()
    schema = ctx.labels.schema
    decoded = decode_outputs(out, schema.tier, tuple(schema.categorical_n_options))
    base = base_preset(schema.base_preset)
    return [Preset.from_vector(vec, base=base) for vec, _ in decoded]
