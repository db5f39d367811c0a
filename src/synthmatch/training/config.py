"""`TrainConfig`: the settings of `synthmatch train`, each checked when the config is built."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from synthmatch.errors import ConfigError
from synthmatch.model.nets import MODEL_SIZES

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """Settings of `synthmatch train` (flag names follow the seed document)."""

    dataset: Path
    output_dir: Path = Path("checkpoints")
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.02
    grad_clip: float = 1.0
    gradient_accumulation_steps: int = 1
    label_smoothing: float = 0.0
    dropout: float = 0.1
    model_size: str = "small"
    early_stopping_patience: int = 0
    num_workers: int = 0
    seed: int = 0
    device: str = "auto"
    val_fraction: float = 0.1
    split_seed: int = 0
    init_from: Path | None = None
    freeze: bool = False
    resume: bool = False
    overwrite: bool = False  # replace the run already in output_dir (without it, or --resume, refuse)
    perceptual_weights: bool = False
    categorical_weight: float = 0.2
    modulation_weight: float = 1.0
    compute_spectral_metrics: bool = False
    spectral_examples: int = 16
    log_audio_every: int = 0
    audio_examples: int = 4
    wandb_project: str | None = None
    wandb_mode: str | None = None
    checkpoint_every_minutes: float = 10.0
    max_steps: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ConfigError(f"--epochs must be >= 0, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ConfigError(f"--lr must be positive, got {self.lr}")
        if self.gradient_accumulation_steps < 1:
            raise ConfigError("--gradient-accumulation-steps must be >= 1")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.model_size not in MODEL_SIZES:
            raise ConfigError(
                f"--model-size must be one of {', '.join(MODEL_SIZES)}, got {self.model_size!r}"
            )
        if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith("cuda:"):
            raise ConfigError(f"--device must be auto, cpu, cuda or mps, got {self.device!r}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"--val-fraction must be in (0, 1), got {self.val_fraction}")
        if self.num_workers < 0:
            raise ConfigError("--num-workers must be >= 0")

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
