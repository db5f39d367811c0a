"""Training commands: `precompute-mels`, `compute-weights`, `train`, `report`."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

log = logging.getLogger("synthmatch")


def run_precompute_mels(args: argparse.Namespace) -> int:
    from synthmatch.audio.features import MelSettings
    from synthmatch.datagen.mels import precompute_mels
    from synthmatch.datagen.store import Dataset

    with Dataset(args.dataset) as ds:
        sr = ds.schema.sample_rate
    settings = MelSettings(sample_rate=sr, n_fft=args.n_fft, hop_length=args.hop_length, n_mels=args.n_mels)
    out = precompute_mels(args.dataset, settings, device=args.device, batch_size=args.batch_size)
    print(f"wrote {out}")
    return 0


def add_precompute_mels(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--dataset", type=Path, required=True, help="dataset .h5 file")
    p.add_argument("--device", default="cpu", help="cpu, cuda or mps (default %(default)s)")
    p.add_argument("--n-mels", type=int, default=128, help="mel bands (default %(default)s)")
    p.add_argument("--n-fft", type=int, default=2048, help="FFT size in samples (default %(default)s)")
    p.add_argument("--hop-length", type=int, default=512, help="hop in samples (default %(default)s)")
    p.add_argument(
        "--batch-size", type=int, default=64, help="examples per feature batch (default %(default)s)"
    )


def run_compute_weights(args: argparse.Namespace) -> int:
    from synthmatch.training.weights import compute_param_weights

    w = compute_param_weights(args.dataset, n_base=args.n_base, delta=args.delta, seed=args.seed)
    print(f"stored {len(w)} weights in {args.dataset} (min {w.min():.3g}, max {w.max():.3g})")
    return 0


def add_compute_weights(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-d", "--dataset", type=Path, required=True, help="dataset .h5 file (weights are stored in it)"
    )
    p.add_argument("--n-base", type=int, default=8, help="base presets to average over (default %(default)s)")
    p.add_argument(
        "--delta", type=float, default=0.15, help="normalized step of each parameter (default %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the base presets (default %(default)s)")


def run_train(args: argparse.Namespace) -> int:
    from synthmatch.training.loop import TrainConfig, train

    cfg = TrainConfig(
        dataset=args.dataset,
        output_dir=args.output_dir,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs,
        grad_clip=args.grad_clip,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        label_smoothing=args.label_smoothing,
        dropout=args.dropout,
        model_size=args.model_size,
        early_stopping_patience=args.early_stopping_patience,
        num_workers=args.num_workers,
        seed=args.seed,
        device=args.device,
        val_fraction=args.val_fraction,
        init_from=args.init_from,
        freeze=args.freeze,
        resume=args.resume,
        overwrite=args.overwrite,
        perceptual_weights=args.perceptual_weights,
        categorical_weight=args.categorical_weight,
        compute_spectral_metrics=args.compute_spectral_metrics,
        spectral_examples=args.spectral_examples,
        log_audio_every=args.log_audio_every,
        wandb_project=args.wandb_project,
        wandb_mode=args.wandb_mode,
        max_steps=args.max_steps,
        threads=args.threads,
        checkpoint_every_minutes=args.checkpoint_every_minutes,
    )
    summary = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in summary.items() if k != "metrics"}, indent=1))
    return 0


def add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--dataset", type=Path, required=True, help="dataset .h5 (precompute-mels first)")
    p.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=Path("checkpoints"),
        help="run folder: checkpoints, metrics.jsonl, config.json (default: %(default)s)",
    )
    p.add_argument("--epochs", type=int, default=30, help="passes over the data (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="per process (default %(default)s)")
    p.add_argument(
        "--lr",
        type=float,
        default=1e-3,
        help="peak learning rate (AdamW). Not scaled with the number of DDP processes: "
        "under torchrun the effective batch is batch-size x processes x accumulation; scale --lr "
        "yourself if you want to (default %(default)s)",
    )
    p.add_argument(
        "--weight-decay", type=float, default=0.01, help="AdamW weight decay (default %(default)s)"
    )
    p.add_argument(
        "--warmup-epochs",
        type=float,
        default=1.0,
        help="linear warm-up, then cosine decay (default %(default)s)",
    )
    p.add_argument(
        "--grad-clip", type=float, default=1.0, help="gradient norm clip (default %(default)s; 0: off)"
    )
    p.add_argument(
        "--gradient-accumulation-steps",
        type=int,
        default=1,
        help="batches per optimizer step (default %(default)s)",
    )
    p.add_argument(
        "--label-smoothing",
        type=float,
        default=0.0,
        help="of the categorical losses (default %(default)s)",
    )
    p.add_argument("--dropout", type=float, default=0.1, help="dropout rate (default %(default)s)")
    p.add_argument("--model-size", default="small", help="tiny, small, base or large (default %(default)s)")
    p.add_argument(
        "--early-stopping-patience",
        type=int,
        default=0,
        help="epochs without improvement (default %(default)s; 0: off)",
    )
    p.add_argument(
        "--num-workers",
        type=int,
        default=0,
        help="data loader processes (default %(default)s: in the main process)",
    )
    p.add_argument("--seed", type=int, default=0, help="training seed (default %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default %(default)s)")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="share of presets held out for validation (default %(default)s)",
    )
    p.add_argument(
        "--init-from",
        type=Path,
        help="start from an earlier checkpoint (e.g. a tier-1 model; default: new weights)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--freeze", dest="freeze", action="store_true", help="freeze the early backbone layers")
    g.add_argument("--no-freeze", dest="freeze", action="store_false", help="train every layer (default)")
    p.set_defaults(freeze=False)
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/latest.safetensors")
    p.add_argument(
        "--overwrite", action="store_true", help="replace the run already in OUTPUT_DIR (default: refuse)"
    )
    p.add_argument(
        "--perceptual-weights",
        action="store_true",
        help="weight the continuous loss by the dataset's compute-weights",
    )
    p.add_argument(
        "--categorical-weight",
        type=float,
        default=0.2,
        help="weight of the categorical losses (default %(default)s)",
    )
    p.add_argument(
        "--compute-spectral-metrics",
        action="store_true",
        help="render validation predictions through Vital and score them each epoch",
    )
    p.add_argument(
        "--spectral-examples",
        type=int,
        default=16,
        help="validation examples rendered for the spectral metrics (default %(default)s)",
    )
    p.add_argument(
        "--log-audio-every",
        type=int,
        default=0,
        help="write target/prediction WAVs every K epochs (default %(default)s: never)",
    )
    p.add_argument("--wandb-project", help="also log to Weights & Biases (default: no W&B logging)")
    p.add_argument(
        "--wandb-mode",
        choices=("online", "offline", "disabled"),
        help="W&B mode (default: $WANDB_MODE, else online)",
    )
    p.add_argument(
        "--checkpoint-every-minutes",
        type=float,
        default=10.0,
        help="also save latest.safetensors mid-epoch this often (resume continues mid-epoch; "
        "default %(default)s)",
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=0,
        help="stop after this many optimizer steps (debug; default %(default)s: no limit)",
    )
    p.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (default %(default)s: torch's default)"
    )


def run_report(args: argparse.Namespace) -> int:
    from synthmatch.training.logging import plot_report

    print(f"wrote {plot_report(args.run_dir, args.output)}")
    return 0


def add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, help="a training run folder (holds metrics.jsonl)")
    p.add_argument("-o", "--output", type=Path, help="PNG to write (default RUN_DIR/curves.png)")
