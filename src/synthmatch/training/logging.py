"""Run logging: metrics.jsonl and config.json in the run folder, optional Weights & Biases, curves to PNG.

`metrics.jsonl` is always written (one JSON object per epoch, keys like `train/loss`, `val/acc`,
`val/mse_filter_1`). W&B is used only when a project is given; `WANDB_MODE=offline` (or --wandb-mode
offline) logs without network. `synthmatch report RUN_DIR` draws the curves.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, cast

import numpy as np

from synthmatch.atomic import atomic_write_text
from synthmatch.errors import SynthmatchError

log = logging.getLogger(__name__)

__all__ = ["RunLogger", "read_metrics", "plot_report"]


class RunLogger:
    """Writes a run's metrics (rank 0 only) and mirrors them to W&B when configured."""

    def __init__(
        self,
        run_dir: Path,
        config: dict,
        enabled: bool = True,
        wandb_project: str | None = None,
        wandb_mode: str | None = None,
        resume: bool = False,
    ):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.wandb = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            self.run_dir / "config.json", json.dumps(config, indent=1, sort_keys=True, default=str)
        )
        self.metrics_path = self.run_dir / "metrics.jsonl"
        if not resume and self.metrics_path.exists():
            self.metrics_path.unlink()
        if wandb_project:
            try:
                import wandb
            except ImportError:
                raise SynthmatchError(
                    "--wandb-project needs Weights & Biases: pip install 'synthmatch[wandb]'"
                ) from None
            mode = wandb_mode or os.environ.get("WANDB_MODE") or "online"
            self.wandb = wandb.init(
                project=wandb_project,
                config=config,
                dir=str(self.run_dir),
                mode=cast(Any, mode),  # WANDB_MODE may hold any string: wandb.init validates it
                resume="allow" if resume else None,
                name=self.run_dir.name,
            )

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(clean, sort_keys=True) + "\n")
        if self.wandb is not None:
            self.wandb.log(
                {k: v for k, v in clean.items() if isinstance(v, (int, float))},
                step=int(record.get("epoch", 0)),
            )

    def truncate_after(self, epoch: int) -> None:
        """On resume: drop lines of epochs that will be run again."""
        if not self.enabled or not self.metrics_path.exists():
            return
        keep = [r for r in read_metrics(self.run_dir) if r.get("epoch", 0) <= epoch]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in keep))

    def log_audio(self, epoch: int, pairs: list[tuple[str, Path]], sample_rate: int) -> None:
        if self.wandb is not None and pairs:
            import wandb

            self.wandb.log(
                {f"audio/{name}": wandb.Audio(str(path), sample_rate=sample_rate) for name, path in pairs},
                step=epoch,
            )

    def close(self) -> None:
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise SynthmatchError(f"{run_dir}: no metrics.jsonl (is it a training run folder?)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_report(run_dir: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """Draw the training curves of a run to a PNG (default RUN_DIR/curves.png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir)
    if not records:
        raise SynthmatchError(f"{run_dir}: metrics.jsonl is empty")
    epochs = np.array([r.get("epoch", i + 1) for i, r in enumerate(records)])

    def series(key: str) -> np.ndarray:
        return np.array([r.get(key, np.nan) if r.get(key) is not None else np.nan for r in records], float)

    panels = [
        ("loss", ["train/loss", "val/loss"]),
        ("continuous (masked MSE)", ["val/mse", "val/loss_continuous"]),
        ("categorical accuracy", ["val/acc"]),
        ("learning rate", ["lr"]),
    ]
    keys = set().union(*[r.keys() for r in records])
    if "val/mod_precision" in keys:
        panels.append(("modulation", ["val/mod_precision", "val/mod_recall"]))
    if "val/spectral" in keys:
        panels.append(("spectral distance (rendered)", ["val/spectral"]))
    groups = sorted(k for k in keys if k.startswith("val/mse_"))
    if groups:
        panels.append(("MSE per module", groups))
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.6 * len(panels)), sharex=True)
    axes = np.atleast_1d(axes)
    for ax, (title, names) in zip(axes, panels):
        for name in names:
            y = series(name)
            if np.isfinite(y).any():
                ax.plot(
                    epochs,
                    y,
                    marker="o" if len(epochs) < 30 else None,
                    ms=3,
                    label=name.replace("val/mse_", ""),
                )
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if title == "learning rate":
            ax.set_yscale("log")
        ax.legend(fontsize=7, ncol=4 if len(names) > 4 else 1)
    axes[-1].set_xlabel("epoch")
    fig.tight_layout()
    out = Path(output) if output else Path(run_dir) / "curves.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, out)
    return out
