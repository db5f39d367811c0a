"""Training state: what changes as a run goes, and how it is saved and resumed.

`Progress` holds the counters (epoch, batch, step, best loss...) and `TrainState` the model, optimizer
and scheduler around them. `new_state` builds them (warm start from --init-from, --freeze), `save_latest`
and `restore_latest` write and read the latest checkpoint (optimizer tensors, scheduler, counters, RNG)
so that a resumed run equals an uninterrupted one, and `checkpoint_meta` is what every checkpoint carries.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from synthmatch import __version__
from synthmatch.audio.features import FEATURE_LOUDNESS_DB, MelSettings
from synthmatch.datagen.mels import MelStats
from synthmatch.errors import ConfigError, SynthmatchError
from synthmatch.model.checkpoint import load_checkpoint, resolve_checkpoint_path, save_checkpoint
from synthmatch.model.meta import CheckpointMeta
from synthmatch.model.nets import MODEL_SIZES, ModelConfig, SynthMatchNet
from synthmatch.training.config import TrainConfig
from synthmatch.training.context import RunContext
from synthmatch.training.data import DatasetLabels, epoch_batches

log = logging.getLogger(__name__)

__all__ = ["Progress", "TrainState", "new_state", "save_latest", "restore_latest", "checkpoint_meta"]


@dataclass
class Progress:
    """Where training stands; saved as a checkpoint's `resume.state` (the field names are that format)."""

    epoch: int = 0  # epochs completed
    batch_in_epoch: int = 0  # batches of the current epoch already trained on (resume mid-epoch)
    global_step: int = 0  # optimizer steps
    best_val_loss: float = float("inf")
    bad_epochs: int = 0  # epochs since val/loss last improved
    train_loss_sum: float = 0.0  # the current epoch's, for its mean training loss
    train_batches: int = 0
    train_examples: int = 0
    train_seconds: float = 0.0

    def end_epoch(self, epoch: int, val_loss: float) -> bool:
        """Count epoch `epoch` (1-based) as done; returns whether `val_loss` is a new best."""
        improved = val_loss < self.best_val_loss
        self.epoch, self.batch_in_epoch = epoch, 0
        self.train_loss_sum, self.train_batches, self.train_examples, self.train_seconds = 0.0, 0, 0, 0.0
        if improved:
            self.best_val_loss, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
        return improved

    def load(self, saved: dict[str, Any]) -> None:
        """Take the counters of a checkpoint's `resume.state` (missing ones keep their value)."""
        for f in fields(self):
            if f.name in saved:
                setattr(self, f.name, saved[f.name])


@dataclass
class TrainState:
    """The model being trained, its optimizer and schedule, and the progress counters."""

    model: SynthMatchNet
    ddp_model: torch.nn.Module  # `model`, wrapped in DistributedDataParallel when distributed
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    params: list[torch.nn.Parameter]  # the trainable ones (not those --freeze fixed)
    meta: dict  # `checkpoint_meta` of this run
    progress: Progress
    last_save_s: float = 0.0  # time.monotonic() of the last save of the latest checkpoint


def checkpoint_meta(
    labels: DatasetLabels, mel: MelSettings, stats: MelStats, model_cfg: ModelConfig, cfg: TrainConfig
) -> dict:
    """Everything inference needs to rebuild the model and interpret its outputs (`CheckpointMeta`)."""
    s = labels.schema
    return CheckpointMeta(
        tier=s.tier,
        sample_rate=s.sample_rate,
        duration_s=s.duration_s,
        note_duration_s=s.note_duration_s,
        velocity=s.velocity,
        base_preset=s.base_preset,
        mel=mel.to_dict(),
        loudness_db=FEATURE_LOUDNESS_DB,
        feature_mean=stats.mean,
        feature_std=stats.std,
        continuous_names=tuple(s.continuous_names),
        continuous_min=tuple(s.continuous_min),
        continuous_max=tuple(s.continuous_max),
        continuous_integer=tuple(s.continuous_integer),
        categorical_names=tuple(s.categorical_names),
        categorical_n_options=tuple(s.categorical_n_options),
        categorical_min=tuple(s.categorical_min),
        mod_sources=tuple(s.mod_sources),
        mod_destinations=tuple(s.mod_destinations),
        model_config=model_cfg.to_dict(),
        train_config=cfg.to_dict(),
        dataset_fingerprint=labels.fingerprint,
        vita_version=s.vita_version,
        synthmatch_version=__version__,
    ).to_dict()


def new_state(ctx: RunContext) -> TrainState:
    """A freshly initialised model (seeded by --seed), AdamW and a warm-up + cosine schedule."""
    cfg, schema = ctx.cfg, ctx.labels.schema
    torch.manual_seed(cfg.seed)
    model_cfg = ModelConfig(
        n_mels=ctx.mel.n_mels,
        n_frames=ctx.mel.n_frames(schema.n_samples),
        n_continuous=len(schema.continuous_names),
        categorical_sizes=tuple(schema.categorical_n_options),
        n_mod_sources=len(schema.mod_sources),
        n_mod_destinations=len(schema.mod_destinations),
        dropout=cfg.dropout,
        size=cfg.model_size,
        **MODEL_SIZES[cfg.model_size],
    )
    model = SynthMatchNet(model_cfg)
    if cfg.init_from is not None and not cfg.resume:
        _init_from(model, cfg.init_from)
    if cfg.freeze:
        if cfg.init_from is None:
            raise ConfigError("--freeze needs --init-from CKPT (it freezes the pretrained early layers)")
        for p in model.early_parameters():
            p.requires_grad_(False)
    model.to(ctx.device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    rank, world_size = ctx.dist_info.rank, ctx.dist_info.world_size
    n_batches = len(epoch_batches(ctx.train_idx, cfg.batch_size, cfg.seed, 0, rank, world_size))
    steps_per_epoch = math.ceil(n_batches / cfg.gradient_accumulation_steps)
    total_steps = max(1, steps_per_epoch * max(cfg.epochs, 1))
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(total_steps, warmup, cfg.min_lr_ratio))
    return TrainState(
        model=model,
        ddp_model=model,
        optimizer=opt,
        scheduler=sched,
        params=params,
        meta=checkpoint_meta(ctx.labels, ctx.mel, ctx.stats, model_cfg, cfg),
        progress=Progress(),
    )


def save_latest(state: TrainState, ctx: RunContext, meta: dict) -> None:
    """Write the latest checkpoint: weights, `meta`, and all a resume needs (optimizer, counters, RNG)."""
    opt_tensors, opt_meta = _optimizer_to_tensors(state.optimizer)
    extra = {**opt_tensors, "rng.torch": torch.get_rng_state()}
    if ctx.device.type == "cuda":
        extra["rng.cuda"] = torch.cuda.get_rng_state(ctx.device)
    resume = {
        "state": asdict(state.progress),
        "optimizer": opt_meta,
        "scheduler": state.scheduler.state_dict(),
    }
    save_checkpoint(
        ctx.latest_path,
        state.model.state_dict(),
        {**meta, "resume": json.loads(json.dumps(resume, default=float))},
        extra,
    )


def restore_latest(state: TrainState, ctx: RunContext) -> None:
    """Load the latest checkpoint into `state` and restore the RNG (--resume)."""
    path = ctx.latest_path
    ck = load_checkpoint(path, device=str(ctx.device), with_extra=True)
    if ck.meta.get("dataset_fingerprint") != ctx.labels.fingerprint:
        raise ConfigError(f"--resume: {path} was trained on a different dataset")
    state.model.load_state_dict(ck.model_state)
    resume = ck.meta["resume"]
    state.optimizer.load_state_dict(_optimizer_from_tensors(ck.extra_tensors, resume["optimizer"]))
    state.scheduler.load_state_dict(resume["scheduler"])
    state.progress.load(resume["state"])
    torch.set_rng_state(ck.extra_tensors["rng.torch"].cpu())
    if ctx.device.type == "cuda" and "rng.cuda" in ck.extra_tensors:
        torch.cuda.set_rng_state(ck.extra_tensors["rng.cuda"].cpu())
    if ctx.dist_info.is_main:
        log.info(
            "resuming from %s at epoch %d, batch %d",
            path,
            state.progress.epoch + 1,
            state.progress.batch_in_epoch,
        )
    p = state.progress
    if p.epoch > 0 and p.batch_in_epoch == 0 and p.bad_epochs == 0 and ctx.dist_info.is_main:
        # the latest epoch was the best: killed between the two saves, the best may lag behind it
        best_epoch = None
        if ctx.best_path.exists():
            best_epoch = load_checkpoint(ctx.best_path).meta.get("epoch")
        if best_epoch is None or best_epoch < p.epoch:
            meta = {k: v for k, v in ck.meta.items() if k not in ("resume", "format")}
            save_checkpoint(ctx.best_path, state.model.state_dict(), meta)
            log.info(
                "wrote %s from %s (epoch %d): the run was stopped before it was saved",
                ctx.best_path.name,
                path.name,
                p.epoch,
            )


def _lr_lambda(total_steps: int, warmup_steps: int, min_ratio: float) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return f


def _optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"opt.{pid}.{k}"] = v if isinstance(v, torch.Tensor) else torch.tensor(v)
    return tensors, {"param_groups": sd["param_groups"]}


def _optimizer_from_tensors(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def _init_from(model: SynthMatchNet, path: Path) -> None:
    ck = load_checkpoint(resolve_checkpoint_path(path))
    own = model.state_dict()
    loaded = {k: v for k, v in ck.model_state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(loaded, strict=False)
    skipped = sorted(set(own) - set(loaded))
    log.info(
        "initialised %d tensors from %s%s",
        len(loaded),
        path,
        f"; {len(skipped)} new or reshaped (e.g. heads of another tier)" if skipped else "",
    )
    if not loaded:
        raise SynthmatchError(
            f"{path}: no tensor matches this model's shapes (different mel settings or size?)"
        )
