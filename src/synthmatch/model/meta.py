"""What a model checkpoint says about itself: one type, written by training and read by the Predictor.

    meta = CheckpointMeta.from_dict(checkpoint.meta)   # raises CheckpointError on a missing key
    meta.tier, meta.sample_rate, meta.continuous_ranges

The keys and their defaults live here only. A key without a default must be in every checkpoint; the
defaults are for checkpoints written before the key existed, and say what those checkpoints meant.
`to_dict()` is what is stored (JSON in the safetensors header, never pickled).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from synthmatch.errors import SynthmatchError

__all__ = ["CheckpointMeta", "MetaError"]


class MetaError(SynthmatchError, ValueError):
    """The checkpoint's metadata lacks a key every model checkpoint has."""


@dataclass(frozen=True)
class CheckpointMeta:
    """Everything inference needs to rebuild the model and interpret its outputs.

    Attributes:
        tier, sample_rate, duration_s, note_duration_s, velocity, base_preset: the training data's render
            settings (the dataset schema's); the model's window is `duration_s` long.
        mel: `audio.features.MelSettings.to_dict()`; loudness_db, feature_mean, feature_std: how the
            features were normalised.
        continuous_names / _min / _max / _integer, categorical_names / _n_options / _min: the parameter
            layout and the ranges the outputs are in (None: a checkpoint from before ranges were stored:
            the seed report's bug 4; the Predictor warns once and uses the installed vita's).
        mod_sources, mod_destinations: tier 3's modulation vocabulary.
        model_config, train_config: `ModelConfig.to_dict()`, `TrainConfig.to_dict()`.
        dataset_fingerprint, vita_version, synthmatch_version: provenance.
    """

    tier: int
    sample_rate: int
    duration_s: float
    mel: dict
    continuous_names: tuple[str, ...]
    categorical_names: tuple[str, ...]
    categorical_n_options: tuple[int, ...]
    model_config: dict
    note_duration_s: float | None = None  # None: 3/4 of the window (`key_held_s`)
    velocity: float | None = None
    base_preset: str = "basic_shapes"  # the dataset schema's default
    loudness_db: float | None = None
    feature_mean: float = 0.0
    feature_std: float = 1.0
    continuous_min: tuple[float, ...] | None = None
    continuous_max: tuple[float, ...] | None = None
    continuous_integer: tuple[bool, ...] | None = None
    categorical_min: tuple[float, ...] | None = None
    mod_sources: tuple[str, ...] = ()
    mod_destinations: tuple[str, ...] = ()
    train_config: dict = field(default_factory=dict)
    dataset_fingerprint: str | None = None
    vita_version: str = "unknown"
    synthmatch_version: str = "unknown"

    @property
    def key_held_s(self) -> float:
        return float(self.note_duration_s if self.note_duration_s is not None else 0.75 * self.duration_s)

    @property
    def has_ranges(self) -> bool:
        return self.continuous_min is not None and self.continuous_max is not None

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, meta: dict) -> CheckpointMeta:
        """The metadata of a stored checkpoint; other keys (the resume state, the format) are ignored."""
        kw: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in meta or meta[f.name] is None:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise MetaError(f"metadata lacks {f.name!r}; not a synthmatch model checkpoint")
                continue
            value = meta[f.name]
            kw[f.name] = tuple(value) if isinstance(value, list) else value
        kw["tier"], kw["sample_rate"] = int(kw["tier"]), int(kw["sample_rate"])
        kw["duration_s"] = float(kw["duration_s"])
        kw["categorical_n_options"] = tuple(int(x) for x in kw["categorical_n_options"])
        return cls(**kw)
