"""`RunContext`: what a training run works on, fixed once its set-up is done.

The dataset's labels and its train/validation split, the feature source (the precomputed sidecar, or
log-mel computed on the fly), the loss settings, the device and DDP rank, and where checkpoints go;
`load_context(cfg, dist_info)` builds it and checks the inputs. The model and optimizer, which change as
training runs, are in `training.state`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from synthmatch.audio.features import MelSettings, model_features
from synthmatch.datagen.mels import MelReader, MelStats, mel_sidecar_path
from synthmatch.datagen.store import Dataset, DatasetError
from synthmatch.errors import ConfigError
from synthmatch.training.config import TrainConfig
from synthmatch.training.data import BatchDataset, DatasetLabels, split_by_preset
from synthmatch.training.distributed import DistInfo
from synthmatch.training.loss import LossWeights, ParamLayout

log = logging.getLogger(__name__)

__all__ = ["RunContext", "load_context", "BEST_NAME", "LATEST_NAME"]

BEST_NAME = "best_model.safetensors"
LATEST_NAME = "latest.safetensors"


@dataclass(frozen=True)
class RunContext:
    """The fixed inputs of a run: data, features, loss settings, device and rank."""

    cfg: TrainConfig
    labels: DatasetLabels
    train_idx: np.ndarray
    val_idx: np.ndarray
    reader: MelReader | None  # None: features computed from the audio on the fly
    mel: MelSettings
    stats: MelStats
    layout: ParamLayout
    weights: LossWeights
    param_weights: torch.Tensor | None  # (Nc,) perceptual weights, on `device`
    device: torch.device
    dist_info: DistInfo

    @property
    def out_dir(self) -> Path:
        return Path(self.cfg.output_dir)

    @property
    def best_path(self) -> Path:
        return self.out_dir / BEST_NAME

    @property
    def latest_path(self) -> Path:
        return self.out_dir / LATEST_NAME

    def batch_dataset(self, batches: list[np.ndarray]) -> BatchDataset:
        """Features and labels, one item per entry of `batches` (each an array of dataset rows)."""
        return BatchDataset(self.labels, batches, self.reader, self.mel, self.stats)

    def loader(self, batches: list[np.ndarray]) -> torch.utils.data.DataLoader:
        """`batch_dataset(batches)`, loaded by --num-workers worker processes."""
        # A private generator: iterating a DataLoader must not consume the global RNG (exact resume).
        return torch.utils.data.DataLoader(
            self.batch_dataset(batches),
            batch_size=None,
            shuffle=False,
            num_workers=self.cfg.num_workers,
            generator=torch.Generator(),
            persistent_workers=False,
            prefetch_factor=4 if self.cfg.num_workers else None,
        )

    def to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}


def load_context(cfg: TrainConfig, dist_info: DistInfo) -> RunContext:
    """Check the inputs, read the labels, split them and find the features."""
    device = _pick_device(cfg.device, dist_info)
    latest_path = Path(cfg.output_dir) / LATEST_NAME
    if cfg.resume and not latest_path.exists():
        raise ConfigError(f"--resume: no {latest_path} to resume from")
    if not cfg.resume and not cfg.overwrite:
        earlier = [p for p in (latest_path, Path(cfg.output_dir) / BEST_NAME) if p.exists()]
        if earlier:
            raise ConfigError(
                f"{cfg.output_dir} holds a training run ({earlier[0].name}); pass --resume to continue it "
                "or --overwrite to replace it"
            )
    if not Path(cfg.dataset).exists():
        raise DatasetError(f"{cfg.dataset}: no such dataset file")

    labels = DatasetLabels(cfg.dataset)
    train_idx, val_idx = split_by_preset(labels.preset_hash, cfg.val_fraction, cfg.split_seed)
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise DatasetError(
            f"{cfg.dataset}: {len(labels)} examples are too few to split into training and "
            f"validation ({len(train_idx)} / {len(val_idx)}); generate more"
        )
    reader, mel, stats = _feature_source(labels, cfg, train_idx)
    param_weights = None
    if cfg.perceptual_weights:
        if labels.param_weights is None:
            raise ConfigError(
                f"--perceptual-weights: {cfg.dataset} has none; run `synthmatch compute-weights` first"
            )
        param_weights = torch.as_tensor(labels.param_weights, device=device)
    return RunContext(
        cfg=cfg,
        labels=labels,
        train_idx=train_idx,
        val_idx=val_idx,
        reader=reader,
        mel=mel,
        stats=stats,
        layout=ParamLayout.from_schema(labels.schema),
        weights=LossWeights(
            categorical=cfg.categorical_weight,
            modulation=cfg.modulation_weight,
            label_smoothing=cfg.label_smoothing,
        ),
        param_weights=param_weights,
        device=device,
        dist_info=dist_info,
    )


def _pick_device(name: str, dist_info: DistInfo | None = None) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda requested but no CUDA device is available")
        if dist_info is not None and dist_info.enabled:
            return torch.device("cuda", dist_info.local_rank)
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps requested but MPS is not available")
    return torch.device(name)


def _feature_source(
    labels: DatasetLabels, cfg: TrainConfig, train_idx: np.ndarray
) -> tuple[MelReader | None, MelSettings, MelStats]:
    sidecar = mel_sidecar_path(labels.path)
    if sidecar.exists():
        reader = MelReader(sidecar, expected_fingerprint=labels.fingerprint)
        return reader, reader.settings, reader.stats
    log.warning(
        "no precomputed features (%s): computing log-mel on the fly, which is much slower; "
        "run `synthmatch precompute-mels -d %s` first",
        sidecar,
        labels.path,
    )
    mel = MelSettings(sample_rate=labels.schema.sample_rate)
    sample = np.sort(
        np.random.default_rng(cfg.seed).choice(train_idx, size=min(256, len(train_idx)), replace=False)
    )
    with Dataset(labels.path) as ds:
        audio = ds.audio_batch(sample)
    feats = model_features(audio.mean(1) if audio.ndim == 3 else audio, mel)
    return None, mel, MelStats(float(feats.mean()), float(feats.std() + 1e-6))
