"""The trainer: `train(TrainConfig) -> summary`, on CPU, one GPU, or many GPUs under torchrun.

AdamW with linear warm-up then cosine decay, gradient clipping and accumulation, early stopping,
exact resume (model, optimizer, scheduler, epoch and batch position, RNG), DDP with metrics reduced over
every rank, and checkpoints (best and latest) as safetensors plus JSON metadata. This file is the loop;
the run's inputs are in `training.context`, its state and checkpoints in `training.state`, validation
in `training.validate`.

Under gradient accumulation the logged training loss is the plain per-batch loss, not the loss divided
by the accumulation steps used for backward (the seed report's bug 1, a false alarm: README, "The seed
report's six fixes").
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import cast

import torch
from tqdm import tqdm

from synthmatch.model.checkpoint import save_checkpoint
from synthmatch.training.config import TrainConfig
from synthmatch.training.context import BEST_NAME, LATEST_NAME, RunContext, load_context
from synthmatch.training.data import epoch_batches
from synthmatch.training.distributed import (
    DistInfo,
    all_reduce_sum,
    init_distributed,
    shutdown_distributed,
)
from synthmatch.training.logging import RunLogger
from synthmatch.training.loss import compute_loss
from synthmatch.training.state import (
    Progress,
    TrainState,
    checkpoint_meta,
    new_state,
    restore_latest,
    save_latest,
)
from synthmatch.training.validate import log_audio, validate

log = logging.getLogger(__name__)

__all__ = ["TrainConfig", "train", "checkpoint_meta"]


def train(cfg: TrainConfig) -> dict:
    """Train a model; returns a summary (best validation loss, epochs run, checkpoint paths, last metrics)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device_type = (
        "cuda"
        if cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())
        else "cpu"
    )
    dist_info = init_distributed(device_type)
    try:
        return _train(cfg, dist_info)
    finally:
        if dist_info.enabled:
            shutdown_distributed()


def _train(cfg: TrainConfig, dist_info: DistInfo) -> dict:
    ctx = load_context(cfg, dist_info)
    state = _start(ctx)
    logger = _open_logger(ctx, state)
    state.last_save_s = time.monotonic()
    p = state.progress
    val_metrics: dict = {}
    stopped_early = False
    for epoch in range(p.epoch, cfg.epochs):
        _train_epoch(state, ctx, epoch)
        val_metrics = _end_epoch(state, ctx, logger, epoch)
        if _max_steps_reached(cfg, p):
            break
        if cfg.early_stopping_patience and p.bad_epochs >= cfg.early_stopping_patience:
            stopped_early = True
            if dist_info.is_main:
                log.info("early stopping: no improvement for %d epochs", p.bad_epochs)
            break
    if cfg.epochs == 0:  # validation only (e.g. of --init-from)
        val_metrics = validate(state.model, ctx)
        if dist_info.is_main:
            logger.log({"epoch": 0, **val_metrics})
    logger.close()
    return {
        "best_val_loss": p.best_val_loss,
        "epochs": p.epoch,
        "stopped_early": stopped_early,
        "best": str(ctx.best_path) if ctx.best_path.exists() else None,
        "latest": str(ctx.latest_path),
        "metrics": val_metrics,
        "run_dir": str(ctx.out_dir),
    }


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Checkpoint temporaries a killed run left behind (`synthmatch.atomic` names them .NAME.*.tmp.*)."""
    for name in (BEST_NAME, LATEST_NAME):
        stem = Path(name).stem
        for tmp in out_dir.glob(f".{stem}.*.tmp*"):
            log.info("removing %s, left by an interrupted save", tmp)
            tmp.unlink(missing_ok=True)


def _start(ctx: RunContext) -> TrainState:
    """The model and optimizer: new, or resumed from the latest checkpoint; wrapped in DDP if distributed."""
    state = new_state(ctx)
    if ctx.dist_info.is_main:
        _remove_stale_temporaries(ctx.out_dir)
    if ctx.cfg.resume:
        restore_latest(state, ctx)
    else:
        torch.manual_seed(ctx.cfg.seed + 1000 * ctx.dist_info.rank)  # dropout differs per rank, init does not
    if ctx.dist_info.enabled:
        device = ctx.device
        state.ddp_model = torch.nn.parallel.DistributedDataParallel(
            state.model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=False,
        )
    return state


def _open_logger(ctx: RunContext, state: TrainState) -> RunLogger:
    """The run's metrics log (rank 0 writes it), with the resolved config beside it."""
    cfg, dist_info = ctx.cfg, ctx.dist_info
    logger = RunLogger(
        ctx.out_dir,
        {
            **cfg.to_dict(),
            "model_config": state.model.config.to_dict(),
            "mel": ctx.mel.to_dict(),
            "n_train": int(len(ctx.train_idx)),
            "n_val": int(len(ctx.val_idx)),
            "world_size": dist_info.world_size,
            "device": str(ctx.device),
        },
        enabled=dist_info.is_main,
        wandb_project=cfg.wandb_project,
        wandb_mode=cfg.wandb_mode,
        resume=cfg.resume,
    )
    if cfg.resume:
        logger.truncate_after(state.progress.epoch)
    if dist_info.is_main:
        n_params = sum(p.numel() for p in state.model.parameters())
        log.info(
            "training %s model (%.2fM parameters) on %d examples, validating on %d; device %s x%d",
            cfg.model_size,
            n_params / 1e6,
            len(ctx.train_idx),
            len(ctx.val_idx),
            ctx.device,
            dist_info.world_size,
        )
    return logger


def _train_epoch(state: TrainState, ctx: RunContext, epoch: int) -> None:
    """Train on this rank's batches of epoch `epoch` (0-based), from `batch_in_epoch` on after a resume."""
    cfg, dist_info, p = ctx.cfg, ctx.dist_info, state.progress
    state.model.train()
    batches = epoch_batches(
        ctx.train_idx, cfg.batch_size, cfg.seed, epoch, dist_info.rank, dist_info.world_size
    )
    start_batch = p.batch_in_epoch
    loader = ctx.loader(batches[start_batch:])
    t0 = time.perf_counter()
    bar = tqdm(
        total=len(batches),
        initial=start_batch,
        desc=f"epoch {epoch + 1}/{cfg.epochs}",
        unit="batch",
        disable=not dist_info.is_main or len(batches) < 5,
        leave=False,
    )
    for k, batch in enumerate(loader, start=start_batch):
        boundary = (k + 1) % cfg.gradient_accumulation_steps == 0 or k + 1 == len(batches)
        loss = _backward(state, ctx, ctx.to_device(batch), sync=boundary)
        if boundary:
            _optimizer_step(state, cfg)
            p.batch_in_epoch = k + 1
            if _checkpoint_due(state, ctx) and k + 1 < len(batches):
                p.train_seconds += time.perf_counter() - t0
                t0 = time.perf_counter()
                save_latest(state, ctx, state.meta)
                state.last_save_s = time.monotonic()
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}")
        if _max_steps_reached(cfg, p):
            break
    bar.close()
    p.train_seconds += time.perf_counter() - t0


def _backward(state: TrainState, ctx: RunContext, batch: dict[str, torch.Tensor], sync: bool) -> float:
    """Forward and backward of one batch; gradients sync over ranks only when `sync`. Returns its loss."""
    accum = ctx.cfg.gradient_accumulation_steps
    no_sync = ctx.dist_info.enabled and not sync
    sync_ctx = (
        cast(torch.nn.parallel.DistributedDataParallel, state.ddp_model).no_sync()  # wrapped when enabled
        if no_sync
        else contextlib.nullcontext()
    )
    with sync_ctx:
        out = state.ddp_model(batch["mel"], batch["midi_note"])
        loss, parts = compute_loss(out, batch, ctx.layout, ctx.weights, ctx.param_weights)
        (loss / accum).backward()
    # Bug 1: log the per-batch loss itself; only the backward pass is scaled.
    p = state.progress
    p.train_loss_sum += parts["loss"]
    p.train_batches += 1
    p.train_examples += int(batch["mel"].shape[0])
    return parts["loss"]


def _optimizer_step(state: TrainState, cfg: TrainConfig) -> None:
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(state.params, cfg.grad_clip)
    state.optimizer.step()
    state.optimizer.zero_grad(set_to_none=True)
    state.scheduler.step()
    state.progress.global_step += 1


def _checkpoint_due(state: TrainState, ctx: RunContext) -> bool:
    """Time for a mid-epoch save of the latest checkpoint (rank 0, every --checkpoint-every-minutes)."""
    minutes = ctx.cfg.checkpoint_every_minutes
    return ctx.dist_info.is_main and minutes > 0 and time.monotonic() - state.last_save_s > 60 * minutes


def _max_steps_reached(cfg: TrainConfig, p: Progress) -> bool:
    return bool(cfg.max_steps) and p.global_step >= cfg.max_steps


def _end_epoch(state: TrainState, ctx: RunContext, logger: RunLogger, epoch: int) -> dict:
    """Validate after epoch `epoch` (0-based), save best and latest, log; returns the validation metrics."""
    p, world_size = state.progress, ctx.dist_info.world_size
    train_loss = _reduce_train_loss(p, ctx.dist_info)
    val_metrics = validate(state.model, ctx)
    record = {
        "epoch": epoch + 1,
        "train/loss": train_loss,
        "lr": float(state.optimizer.param_groups[0]["lr"]),
        "train/examples_per_s": p.train_examples * world_size / max(p.train_seconds, 1e-9),
        "global_step": p.global_step,
        **val_metrics,
    }
    improved = p.end_epoch(epoch + 1, val_metrics["val/loss"])
    if not ctx.dist_info.is_main:
        return val_metrics
    meta_epoch = {
        **state.meta,
        "epoch": epoch + 1,
        "global_step": p.global_step,
        "best_val_loss": p.best_val_loss,
        "metrics": record,
    }
    # latest first: a kill between the two saves leaves a resumable run (the resume writes the best)
    save_latest(state, ctx, meta_epoch)
    if improved:
        save_checkpoint(ctx.best_path, state.model.state_dict(), meta_epoch)
    state.last_save_s = time.monotonic()
    logger.log(record)
    if ctx.cfg.log_audio_every and (epoch + 1) % ctx.cfg.log_audio_every == 0:
        pairs = log_audio(state.model, ctx, epoch + 1)
        logger.log_audio(epoch + 1, pairs, ctx.labels.schema.sample_rate)
    log.info(
        "epoch %d: train/loss %.4f val/loss %.4f val/acc %.3f%s",
        epoch + 1,
        train_loss,
        val_metrics["val/loss"],
        val_metrics.get("val/acc", float("nan")),
        " (best)" if improved else "",
    )
    return val_metrics


def _reduce_train_loss(p: Progress, dist_info: DistInfo) -> float:
    total = torch.tensor([p.train_loss_sum, float(p.train_batches)], dtype=torch.float64)
    if dist_info.enabled:
        total = all_reduce_sum(total)
    return float(total[0] / total[1]) if total[1] > 0 else float("nan")
