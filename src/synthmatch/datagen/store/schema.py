"""What a dataset file holds: the schema (root attributes), its constants and the generation attributes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import h5py
import numpy as np

from synthmatch import __version__
from synthmatch.defaults import DEFAULT_SAMPLE_RATE
from synthmatch.errors import SynthmatchError
from synthmatch.synth import vita_available, vita_version
from synthmatch.synth.params import ParamSpace, param_space

FORMAT = "synthmatch-dataset"
SCHEMA_VERSION = 1
SOURCES = ("random", "bred", "community")
REJECTION_REASONS = ("silent", "clipped", "nonfinite", "error", "timeout", "crash")
# Structured items kept per preset: Vital JSON keys of the wavetables, the LFO shapes and the sample.
ASSET_KINDS = ("wavetables", "lfos", "sample")
_STR = h5py.string_dtype("utf-8")
_REJECTED_DTYPE = np.dtype([("seed_index", "<i8"), ("reason", "u1")])


class DatasetError(SynthmatchError, ValueError):
    """A dataset file that cannot be used (missing, wrong format, mismatched schema)."""


@dataclass(frozen=True)
class DatasetSchema:
    """Everything needed to interpret a dataset's rows; stored as root attributes."""

    tier: int
    sample_rate: int
    duration_s: float
    note_duration_s: float
    midi_notes: tuple[int, ...]
    continuous_names: tuple[str, ...]
    continuous_min: tuple[float, ...]
    continuous_max: tuple[float, ...]
    continuous_integer: tuple[bool, ...]
    categorical_names: tuple[str, ...]
    categorical_n_options: tuple[int, ...]
    categorical_min: tuple[float, ...]
    mod_sources: tuple[str, ...] = ()
    mod_destinations: tuple[str, ...] = ()
    velocity: float = 1.0
    base_preset: str = "basic_shapes"
    audio_dtype: str = "int16"
    channels: int = 1
    seed: int = 0
    vita_version: str = ""
    synthmatch_version: str = __version__
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.audio_dtype not in ("int16", "float16"):
            raise DatasetError(f"audio_dtype must be int16 or float16, got {self.audio_dtype!r}")
        if self.channels not in (1, 2):
            raise DatasetError(f"channels must be 1 (mono) or 2 (stereo), got {self.channels}")
        if not self.sample_rate > 0 or not self.duration_s > 0:
            raise DatasetError("sample_rate and duration_s must be positive")

    @classmethod
    def for_tier(
        cls,
        tier: int,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        duration_s: float = 2.0,
        note_duration_s: float = 1.5,
        midi_notes: Sequence[int] = (48, 60, 72),
        space: ParamSpace | None = None,
        **kw,
    ) -> DatasetSchema:
        """The schema of a tier built from the installed vita's parameter space."""
        ps = space or param_space()
        ts = ps.tier(tier)
        return cls(
            tier=tier,
            sample_rate=int(sample_rate),
            duration_s=float(duration_s),
            note_duration_s=float(note_duration_s),
            midi_notes=tuple(int(n) for n in midi_notes),
            continuous_names=ts.continuous,
            continuous_min=tuple(float(x) for x in ts.cont_min),
            continuous_max=tuple(float(x) for x in ts.cont_max),
            continuous_integer=tuple(bool(x) for x in ts.cont_integer),
            categorical_names=ts.categorical,
            categorical_n_options=ts.n_options,
            categorical_min=tuple(float(x) for x in ts.cat_min),
            mod_sources=ts.mod_sources,
            mod_destinations=ts.mod_destinations,
            vita_version=vita_version() if vita_available() else "",
            **kw,
        )

    @property
    def n_samples(self) -> int:
        return int(round(self.duration_s * self.sample_rate))

    @property
    def audio_shape(self) -> tuple[int, ...]:
        return (self.n_samples,) if self.channels == 1 else (2, self.n_samples)

    def to_attrs(self, attrs: h5py.AttributeManager) -> None:
        attrs["format"] = FORMAT
        for k, v in asdict(self).items():
            if isinstance(v, tuple):
                if v and isinstance(v[0], str):
                    attrs[k] = np.array(v, dtype=_STR)
                elif v and isinstance(v[0], bool):
                    attrs[k] = np.array(v, dtype=bool)
                else:
                    attrs[k] = np.array(v, dtype=np.float64 if v and isinstance(v[0], float) else np.int64)
            else:
                attrs[k] = v
        attrs["source_names"] = np.array(SOURCES, dtype=_STR)

    @classmethod
    def from_attrs(cls, attrs: h5py.AttributeManager, origin: str = "<dataset>") -> DatasetSchema:
        if attrs.get("format") != FORMAT:
            raise DatasetError(
                f"{origin}: not a synthmatch dataset (format attribute {attrs.get('format')!r})"
            )
        version = int(attrs.get("schema_version", -1))
        if version != SCHEMA_VERSION:
            raise DatasetError(
                f"{origin}: schema version {version}, this synthmatch reads version {SCHEMA_VERSION}"
            )
        kw = {}
        for name in cls.__dataclass_fields__:
            if name not in attrs:
                continue
            v = attrs[name]
            if isinstance(v, np.ndarray):
                v = tuple(
                    x.decode() if isinstance(x, bytes) else x.item() if hasattr(x, "item") else x for x in v
                )
            elif isinstance(v, bytes):
                v = v.decode()
            elif isinstance(v, np.generic):
                v = v.item()
            kw[name] = v
        kw.setdefault("mod_sources", ())
        kw.setdefault("mod_destinations", ())
        return cls(**kw)

    def differences(self, other: DatasetSchema) -> list[str]:
        """Fields that differ in ways that make rows incompatible (merge refuses these)."""
        ignore = {"seed", "synthmatch_version", "midi_notes"}
        a, b = asdict(self), asdict(other)
        return [
            f"{k}: {a[k]!r} != {b[k]!r}" if not isinstance(a[k], tuple) or len(a[k]) < 8 else f"{k} differ"
            for k in a
            if k not in ignore and a[k] != b[k]
        ]


GENERATION_ATTRS = ("generate_fingerprint", "generate_config", "index_start", "index_stop")


def generation_info(attrs: h5py.AttributeManager) -> dict | None:
    """The generation attributes of a file written by `generate` (None for other files)."""
    if "generate_fingerprint" not in attrs:
        return None
    fp, cfg = attrs["generate_fingerprint"], attrs.get("generate_config", "{}")
    return {
        "fingerprint": fp.decode() if isinstance(fp, bytes) else str(fp),
        "config": json.loads(cfg.decode() if isinstance(cfg, bytes) else str(cfg)),
        "index_start": int(attrs["index_start"]),
        "index_stop": int(attrs["index_stop"]),
    }
