"""Checkpoints without pickle: safetensors weights with the JSON metadata in the file's header.

One file holds everything: the model weights (and, for training checkpoints, the optimizer state as
extra tensors) plus a JSON document with what inference needs (parameter names and ranges, option counts,
tier, sample rate, mel settings, model config, modulation names, base preset, feature normalisation) and
the training config and progress. Loading parses JSON and raw tensors only; nothing is unpickled.

`-c checkpoints/best_model.pt` (the seed document's name) resolves to `best_model.safetensors` beside
it when no such .pt file exists.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from synthmatch.atomic import atomic_path
from synthmatch.errors import SynthmatchError

log = logging.getLogger(__name__)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "resolve_checkpoint_path",
    "CHECKPOINT_FORMAT",
]

CHECKPOINT_FORMAT = "synthmatch-checkpoint-v1"
_META_KEY = "synthmatch"


class CheckpointError(SynthmatchError, ValueError):
    """A checkpoint that is missing, unreadable, or not a synthmatch checkpoint."""


@dataclass
class Checkpoint:
    """Weights and metadata of a saved model."""

    model_state: dict[str, torch.Tensor]
    meta: dict
    extra_tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # optimizer state etc.
    path: Path | None = None


def resolve_checkpoint_path(path: str | os.PathLike) -> Path:
    """The checkpoint file for a user-given path (accepts the seed's `.pt` name for a .safetensors file)."""
    p = Path(path)
    if p.is_dir():
        for name in ("best_model.safetensors", "latest.safetensors"):
            if (p / name).exists():
                return p / name
        raise CheckpointError(f"{p}: directory holds no best_model.safetensors or latest.safetensors")
    if p.exists():
        return p
    alt = p.with_suffix(".safetensors")
    if p.suffix != ".safetensors" and alt.exists():
        log.info("checkpoints are stored as safetensors: using %s for %s", alt, p)
        return alt
    raise CheckpointError(f"{p}: no such checkpoint")


def save_checkpoint(
    path: str | os.PathLike,
    model_state: dict[str, torch.Tensor],
    meta: dict,
    extra_tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write a checkpoint atomically. Tensors are stored under `model.` and `extra.` prefixes."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model_state.items()}
    for k, v in (extra_tensors or {}).items():
        tensors[f"extra.{k}"] = v.detach().cpu().contiguous()
    header = {_META_KEY: json.dumps({"format": CHECKPOINT_FORMAT, **meta}, sort_keys=True)}
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return Path(path)


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu", with_extra: bool = False
) -> Checkpoint:
    """Read a checkpoint (never unpickles)."""
    p = resolve_checkpoint_path(path)
    try:
        with safe_open(str(p), framework="pt", device=str(device)) as f:
            header = f.metadata() or {}
            if _META_KEY not in header:
                raise CheckpointError(
                    f"{p}: a safetensors file but not a synthmatch checkpoint (no metadata)"
                )
            meta = json.loads(header[_META_KEY])
            model_state, extra = {}, {}
            for key in f.keys():
                if key.startswith("model."):
                    model_state[key[6:]] = f.get_tensor(key)
                elif with_extra and key.startswith("extra."):
                    extra[key[6:]] = f.get_tensor(key)
    except (SafetensorError, OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{p}: not a readable synthmatch checkpoint ({exc})") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{p}: unsupported checkpoint format {meta.get('format')!r}")
    return Checkpoint(model_state=model_state, meta=meta, extra_tensors=extra, path=p)
