"""The dataset file: a versioned HDF5 schema, a row writer, a reader, and merging.

Layout (schema version 1). N examples, Nc continuous and Nk categorical parameters of the tier:

    /                       attrs: format, schema_version, tier, sample_rate, duration_s, note_duration_s,
                            velocity, midi_notes, base_preset, audio_dtype, channels, seed, vita_version,
                            synthmatch_version, parameter names/ranges/option counts, modulation
                            source/destination names (see DatasetSchema)
    audio          (N, S) or (N, 2, S)  int16 (full scale 32767) or float16; one example per chunk,
                                        byte-shuffle + gzip: about 90 KB per 2 s mono example
    continuous     (N, Nc)   float32    normalized [0, 1] (linear in raw units, see synth.params)
    categorical    (N, Nk)   int16      option index (raw value - control minimum)
    mod_index      (N, 2)    int64      [start, count] of the example's rows in `modulations`
    modulations    (M,)      MOD_DTYPE  source/destination index, amount and power in [0, 1], flags
    midi_note      (N,)      int16
    source         (N,)      uint8      index into attrs["source_names"]: random, bred, community
    preset_hash    (N,)      S16        Preset.content_hash() of the rendered preset
    data_key       (N,)      S40        key of the structured data (wavetables, LFOs, sample) in /preset_data
    seed_index     (N,)      int64      generator index of the example (-1 for ingested presets)
    name           (N,)      str        preset name
    file           (N,)      str        source file of ingested presets ("" otherwise)
    rms_db, peak   (N,)      float32    level of the stored audio
    preset_data/keys (K,) S40, preset_data/json (K,) str   structured data, de-duplicated by content
    rejections                          attrs: count per reason; dataset `rejected` (seed_index, reason)

Files written by `generate` also carry, as root attributes, `generate_fingerprint` (a hash of everything
that decides the rows), `generate_config` (that configuration as JSON) and `index_start`/`index_stop`
(the generator indices the file covers: each one is a row or a rejection). `merge_datasets` keeps them
when its inputs are consecutive pieces of one generation, so merged shards equal a single-machine run.

Files are written by one writer at a time; generation writes small part files atomically and
assembles them (see `generate`), so a killed run never leaves a torn file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np

from synthmatch import __version__
from synthmatch.atomic import atomic_path
from synthmatch.defaults import DEFAULT_SAMPLE_RATE
from synthmatch.errors import SynthmatchError
from synthmatch.synth import vita_available, vita_version
from synthmatch.synth.params import ParamSpace, param_space
from synthmatch.synth.presets import MOD_DTYPE, ParamVector, Preset, PresetData, base_preset

__all__ = [
    "SCHEMA_VERSION",
    "SOURCES",
    "REJECTION_REASONS",
    "ASSET_KINDS",
    "DatasetSchema",
    "ExampleRow",
    "DatasetWriter",
    "Dataset",
    "DatasetError",
    "merge_datasets",
    "generation_info",
    "GENERATION_ATTRS",
    "audio_to_storage",
    "audio_from_storage",
]

FORMAT = "synthmatch-dataset"
SCHEMA_VERSION = 1
SOURCES = ("random", "bred", "community")
REJECTION_REASONS = ("silent", "clipped", "nonfinite", "error", "timeout", "crash")
# Structured items kept per preset: Vital JSON keys of the wavetables, the LFO shapes and the sample.
ASSET_KINDS = ("wavetables", "lfos", "sample")
_STR = h5py.string_dtype("utf-8")
log = logging.getLogger(__name__)
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


@dataclass
class ExampleRow:
    """One example ready to store."""

    audio: np.ndarray  # (S,) or (2, S) float32
    continuous: np.ndarray  # (Nc,) float32 in [0, 1]
    categorical: np.ndarray  # (Nk,) option indices
    midi_note: int
    source: str
    preset_hash: str
    seed_index: int = -1
    modulation: np.ndarray = field(default_factory=lambda: np.zeros(0, MOD_DTYPE))
    name: str = ""
    file: str = ""
    data: PresetData | None = None  # structured data; None means the schema's base preset

    @classmethod
    def from_preset(
        cls,
        preset: Preset,
        audio: np.ndarray,
        schema: DatasetSchema,
        midi_note: int,
        source: str,
        seed_index: int = -1,
        file: str = "",
        space: ParamSpace | None = None,
    ) -> ExampleRow:
        vec = preset.to_vector(schema.tier, space)
        return cls(
            audio=audio,
            continuous=vec.continuous,
            categorical=vec.categorical,
            modulation=vec.modulation,
            midi_note=midi_note,
            source=source,
            preset_hash=preset.content_hash(),
            seed_index=seed_index,
            name=preset.name,
            file=file,
            data=preset.data,
        )


def audio_to_storage(audio: np.ndarray, dtype: str) -> np.ndarray:
    """Float audio -> the stored dtype (int16 full scale 32767, or float16). Stored audio passes through."""
    if isinstance(audio, np.ndarray) and audio.dtype == np.dtype(dtype):
        return audio
    a = np.nan_to_num(np.asarray(audio, np.float32))
    if dtype == "int16":
        return np.round(np.clip(a, -1.0, 1.0) * 32767).astype(np.int16)
    return np.clip(a, -65504, 65504).astype(np.float16)


def audio_from_storage(stored: np.ndarray) -> np.ndarray:
    if stored.dtype == np.int16:
        return stored.astype(np.float32) / 32767.0
    return stored.astype(np.float32)


# One value per row, besides the audio and the modulation index.
_ROW_COLUMNS = (
    "continuous",
    "categorical",
    "midi_note",
    "source",
    "preset_hash",
    "data_key",
    "seed_index",
    "name",
    "file",
    "rms_db",
    "peak",
)


class DatasetWriter:
    """Appends rows to a dataset file (create with mode "w", extend an existing file with mode "a").

    Not crash-safe on its own (HDF5 is not): write to a temporary path and rename, as `generate` and
    `merge_datasets` do, or use `atomic=True` to have the writer do so for a new file. `base_data`
    replaces the base preset's structured data as the first /preset_data entry of a new file.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        schema: DatasetSchema | None = None,
        mode: str = "w",
        atomic: bool = False,
        base_data: PresetData | None = None,
    ):
        self.path = Path(path)
        self._base_data = base_data
        self._atomic_ctx = None
        self._data_keys: set[str] = set()
        target = self.path
        if mode == "w":
            if schema is None:
                raise DatasetError("a new dataset needs a schema")
            if atomic:
                self._atomic_ctx = atomic_path(self.path, suffix=".h5")
                target = self._atomic_ctx.__enter__()
            self.h5 = h5py.File(target, "w")
            self.schema = schema
            schema.to_attrs(self.h5.attrs)
            self._create()
        elif mode == "a":
            if not self.path.exists():
                raise DatasetError(f"{self.path}: no such dataset to append to")
            self.h5 = h5py.File(self.path, "a")
            self.schema = DatasetSchema.from_attrs(self.h5.attrs, str(self.path))
            if schema is not None and (diff := self.schema.differences(schema)):
                self.h5.close()
                raise DatasetError(f"{self.path}: cannot append, schema differs: {'; '.join(diff)}")
        else:
            raise ValueError(f"mode must be 'w' or 'a', got {mode!r}")
        self._data_keys = {k.decode() for k in self.h5["preset_data/keys"][:]}

    def _create(self) -> None:
        s, h = self.schema, self.h5
        nc, nk = len(s.continuous_names), len(s.categorical_names)
        adt = np.int16 if s.audio_dtype == "int16" else np.float16
        h.create_dataset(
            "audio",
            shape=(0, *s.audio_shape),
            maxshape=(None, *s.audio_shape),
            dtype=adt,
            chunks=(1, *s.audio_shape),
            compression="gzip",
            compression_opts=4,
            shuffle=True,
        )
        h.create_dataset(
            "continuous", shape=(0, nc), maxshape=(None, nc), dtype=np.float32, chunks=(256, max(nc, 1))
        )
        h.create_dataset(
            "categorical", shape=(0, nk), maxshape=(None, nk), dtype=np.int16, chunks=(256, max(nk, 1))
        )
        h.create_dataset("mod_index", shape=(0, 2), maxshape=(None, 2), dtype=np.int64, chunks=(1024, 2))
        h.create_dataset("modulations", shape=(0,), maxshape=(None,), dtype=MOD_DTYPE, chunks=(4096,))
        for name, dt in (
            ("midi_note", np.int16),
            ("source", np.uint8),
            ("preset_hash", "S16"),
            ("data_key", "S40"),
            ("seed_index", np.int64),
            ("name", _STR),
            ("file", _STR),
            ("rms_db", np.float32),
            ("peak", np.float32),
        ):
            h.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dt, chunks=(1024,))
        g = h.create_group("preset_data")
        g.create_dataset("keys", shape=(0,), maxshape=(None,), dtype="S40", chunks=(64,))
        g.create_dataset("json", shape=(0,), maxshape=(None,), dtype=_STR, chunks=(1,))
        r = h.create_group("rejections")
        r.create_dataset("rejected", shape=(0,), maxshape=(None,), dtype=_REJECTED_DTYPE, chunks=(1024,))
        for reason in REJECTION_REASONS:
            r.attrs[reason] = 0
        # The first entry: the base preset's data, or the given one (a merge passes its first input's,
        # so the result does not depend on the merging process: vita's init sample is random noise).
        self._store_data(self._base_data or base_preset(s.base_preset).data)

    def __len__(self) -> int:
        return int(self.h5["audio"].shape[0])

    def _store_data(self, data: PresetData) -> str:
        key = data.key
        if key not in self._data_keys:
            g = self.h5["preset_data"]
            n = g["keys"].shape[0]
            g["keys"].resize((n + 1,))
            g["json"].resize((n + 1,))
            g["keys"][n] = key.encode()
            g["json"][n] = json.dumps({k: data.get(k) for k in data.keys()}, separators=(",", ":"))
            self._data_keys.add(key)
        return key

    def append(self, rows: Sequence[ExampleRow]) -> None:
        """Append rows in order."""
        if not rows:
            return
        s, h = self.schema, self.h5
        n0, k = len(self), len(rows)
        audio = np.stack(
            [audio_to_storage(np.asarray(r.audio).reshape(s.audio_shape), s.audio_dtype) for r in rows]
        )
        cont = np.stack([np.asarray(r.continuous, np.float32) for r in rows])
        cat = np.stack([np.asarray(r.categorical, np.int16) for r in rows])
        if cont.shape[1] != len(s.continuous_names) or cat.shape[1] != len(s.categorical_names):
            raise DatasetError(
                f"row has {cont.shape[1]} continuous / {cat.shape[1]} categorical values, "
                f"schema expects {len(s.continuous_names)} / {len(s.categorical_names)}"
            )
        float_audio = audio_from_storage(audio).reshape(k, -1)
        rms = 20 * np.log10(np.sqrt(np.mean(np.square(float_audio, dtype=np.float64), axis=1)) + 1e-12)
        peak = np.abs(float_audio).max(axis=1)
        m0 = h["modulations"].shape[0]
        mods = [np.asarray(r.modulation, MOD_DTYPE) for r in rows]
        counts = np.array([len(m) for m in mods], np.int64)
        starts = m0 + np.concatenate([[0], np.cumsum(counts)[:-1]])
        for name in ("audio", "mod_index", *_ROW_COLUMNS):
            h[name].resize((n0 + k, *h[name].shape[1:]))
        h["audio"][n0:] = audio
        h["continuous"][n0:] = cont
        h["categorical"][n0:] = cat
        h["mod_index"][n0:] = np.stack([starts, counts], 1)
        if counts.sum():
            h["modulations"].resize((m0 + int(counts.sum()),))
            h["modulations"][m0:] = np.concatenate(mods)
        h["midi_note"][n0:] = [int(r.midi_note) for r in rows]
        h["source"][n0:] = [SOURCES.index(r.source) for r in rows]
        h["preset_hash"][n0:] = [r.preset_hash.encode()[:16] for r in rows]
        h["data_key"][n0:] = [
            self._store_data(r.data or base_preset(s.base_preset).data).encode() for r in rows
        ]
        h["seed_index"][n0:] = [int(r.seed_index) for r in rows]
        h["name"][n0:] = [r.name for r in rows]
        h["file"][n0:] = [r.file for r in rows]
        h["rms_db"][n0:] = rms.astype(np.float32)
        h["peak"][n0:] = peak.astype(np.float32)

    def copy_from(self, src: Dataset, chunk: int = 512) -> None:
        """Append every row and rejection of another dataset (same schema), in bulk.

        Compressed audio chunks are copied as stored when both files use the same chunking and
        filters (always the case for files this module wrote), otherwise decoded and re-encoded.
        """
        if diff := self.schema.differences(src.schema):
            raise DatasetError(f"cannot copy {src.path} into {self.path}: schemas differ: {'; '.join(diff)}")
        h, sh = self.h5, src.h5
        raw_audio = _same_storage(sh["audio"], h["audio"])
        columns = _ROW_COLUMNS
        for a in range(0, len(src), chunk):
            b = min(a + chunk, len(src))
            k, n0 = b - a, len(self)
            for key in {x.decode() for x in sh["data_key"][a:b]}:
                self._store_data(src.preset_data(key))
            mi = sh["mod_index"][a:b]
            counts = mi[:, 1].astype(np.int64)
            mods = _gather_modulations(sh["modulations"], mi[:, 0], counts)
            m0 = h["modulations"].shape[0]
            starts = m0 + np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
            for name in ("audio", "mod_index", *columns):
                h[name].resize((n0 + k, *h[name].shape[1:]))
            for name in columns:
                h[name][n0:] = sh[name][a:b]
            h["mod_index"][n0:] = np.stack([starts, counts], 1)
            if len(mods):
                h["modulations"].resize((m0 + len(mods),))
                h["modulations"][m0:] = mods
            if raw_audio:
                src_id, dst_id = sh["audio"].id, h["audio"].id
                zeros = (0,) * (h["audio"].ndim - 1)
                for j in range(k):
                    mask, data = src_id.read_direct_chunk((a + j, *zeros))
                    dst_id.write_direct_chunk((n0 + j, *zeros), data, mask)
            else:
                h["audio"][n0:] = audio_to_storage(
                    audio_from_storage(sh["audio"][a:b]), self.schema.audio_dtype
                )
        rej = sh["rejections/rejected"][:]
        self.reject((int(x["seed_index"]), REJECTION_REASONS[int(x["reason"])]) for x in rej)

    def reject(self, items: Iterable[tuple[int, str]]) -> None:
        """Record rejected generator indices with their reasons."""
        items = list(items)
        if not items:
            return
        r = self.h5["rejections"]
        arr = np.array([(int(i), REJECTION_REASONS.index(reason)) for i, reason in items], _REJECTED_DTYPE)
        n = r["rejected"].shape[0]
        r["rejected"].resize((n + len(arr),))
        r["rejected"][n:] = arr
        for reason in {reason for _, reason in items}:
            r.attrs[reason] = int(r.attrs.get(reason, 0)) + sum(1 for _, x in items if x == reason)

    def set_attrs(self, **attrs) -> None:
        for k, v in attrs.items():
            self.h5.attrs[k] = v

    def close(self) -> None:
        if self.h5.id.valid:
            self.h5.attrs["n_examples"] = len(self)
            self.h5.close()
        if self._atomic_ctx is not None:
            ctx, self._atomic_ctx = self._atomic_ctx, None
            ctx.__exit__(None, None, None)

    def abort(self) -> None:
        """Close without keeping a file written with atomic=True."""
        if self.h5.id.valid:
            self.h5.close()
        if self._atomic_ctx is not None:
            ctx, self._atomic_ctx = self._atomic_ctx, None
            ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class Dataset:
    """Read access to a dataset file without loading it whole.

    Args:
        path: the .h5 file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise DatasetError(f"{self.path}: no such dataset file")
        if self.path.is_dir():
            raise DatasetError(f"{self.path}: is a directory, expected a .h5 dataset")
        try:
            self.h5 = h5py.File(self.path, "r")
        except OSError as exc:
            raise DatasetError(f"{self.path}: not a readable HDF5 file ({exc})") from None
        self.schema = DatasetSchema.from_attrs(self.h5.attrs, str(self.path))
        self._data_cache: dict[str, PresetData] = {}

    def __len__(self) -> int:
        return int(self.h5["audio"].shape[0])

    def close(self) -> None:
        self.h5.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- rows -----------------------------------------------------------------------------------
    def _check(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"example {i} out of range: the dataset has {n} examples")
        return i % n

    def audio(self, i: int) -> np.ndarray:
        """Float32 audio of example i: (S,) or (2, S)."""
        return audio_from_storage(self.h5["audio"][self._check(i)])

    def audio_batch(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """(B, ...) float32 audio of several examples (read in sorted order, returned in the given order)."""
        idx = np.asarray(indices, np.int64)
        order = np.argsort(idx)
        out = np.empty((len(idx), *self.schema.audio_shape), np.float32)
        ds = self.h5["audio"]
        for j in order:
            out[j] = audio_from_storage(ds[int(idx[j])])
        return out

    def modulation(self, i: int) -> np.ndarray:
        start, count = self.h5["mod_index"][self._check(i)]
        return self.h5["modulations"][start : start + count] if count else np.zeros(0, MOD_DTYPE)

    def vector(self, i: int) -> ParamVector:
        i = self._check(i)
        return ParamVector(
            self.schema.tier,
            self.h5["continuous"][i],
            self.h5["categorical"][i].astype(np.int64),
            self.modulation(i),
        )

    def preset_data(self, key: str) -> PresetData:
        if key not in self._data_cache:
            keys = [k.decode() for k in self.h5["preset_data/keys"][:]]
            if key not in keys:
                raise DatasetError(f"{self.path}: structured data {key} missing")
            self._data_cache[key] = PresetData(json.loads(self.h5["preset_data/json"][keys.index(key)]))
        return self._data_cache[key]

    def preset(self, i: int) -> Preset:
        """The preset of example i, rebuilt from its vectors over its structured data.

        For generated examples this is the rendered preset; for ingested ones it is the tier's projection
        of the original file (controls outside the tier at their defaults).
        """
        i = self._check(i)
        base = base_preset(self.schema.base_preset)
        key = self.h5["data_key"][i].decode()
        if key != base.data.key:
            base = Preset(values=dict(base.values), data=self.preset_data(key), meta=dict(base.meta))
        self._check_names()
        p = Preset.from_vector(self.vector(i), base=base)
        return p.with_meta(preset_name=self.name(i) or f"example {i}")

    def _check_names(self) -> None:
        ts = param_space().tier(self.schema.tier)
        if ts.continuous != self.schema.continuous_names or ts.categorical != self.schema.categorical_names:
            raise DatasetError(
                f"{self.path}: its parameter names differ from the installed vita's tier "
                f"{self.schema.tier}; rebuild it with this version"
            )

    def name(self, i: int) -> str:
        v = self.h5["name"][self._check(i)]
        return v.decode() if isinstance(v, bytes) else str(v)

    def row_info(self, i: int) -> dict:
        """Metadata of example i (what `inspect --sample` and the preview table show)."""
        i = self._check(i)
        h = self.h5
        f = h["file"][i]
        return {
            "index": i,
            "source": SOURCES[int(h["source"][i])],
            "name": self.name(i),
            "file": f.decode() if isinstance(f, bytes) else str(f),
            "midi_note": int(h["midi_note"][i]),
            "seed_index": int(h["seed_index"][i]),
            "preset_hash": h["preset_hash"][i].decode(),
            "rms_db": float(h["rms_db"][i]),
            "peak": float(h["peak"][i]),
            "n_modulations": int(h["mod_index"][i][1]),
        }

    def row_infos(self, start: int, stop: int) -> list[dict]:
        """`row_info` of examples start..stop-1, read as slices (what a paged table needs)."""
        n = len(self)
        start, stop = max(0, int(start)), min(n, int(stop))
        if start >= stop:
            return []
        h = self.h5
        cols = {
            k: h[k][start:stop]
            for k in ("source", "name", "file", "midi_note", "seed_index", "preset_hash", "rms_db", "peak")
        }
        counts = h["mod_index"][start:stop, 1]

        def text(v) -> str:
            return v.decode() if isinstance(v, bytes) else str(v)

        return [
            {
                "index": start + j,
                "source": SOURCES[int(cols["source"][j])],
                "name": text(cols["name"][j]),
                "file": text(cols["file"][j]),
                "midi_note": int(cols["midi_note"][j]),
                "seed_index": int(cols["seed_index"][j]),
                "preset_hash": cols["preset_hash"][j].decode(),
                "rms_db": float(cols["rms_db"][j]),
                "peak": float(cols["peak"][j]),
                "n_modulations": int(counts[j]),
            }
            for j in range(stop - start)
        ]

    def asset_catalog(self) -> dict[str, dict[str, tuple[str, int]]]:
        """The unique wavetables, LFO shapes and samples in the file, by content hash.

        Derived from /preset_data (which stores each distinct combination once), so it needs no
        extra storage and works on every schema-1 file. Returns {kind: {item hash: (data key,
        position in that data's list)}} for kind in ASSET_KINDS; hashes are PresetData.item_hashes().
        """
        keys = [k.decode() for k in self.h5["preset_data/keys"][:]]
        catalog: dict[str, dict[str, tuple[str, int]]] = {k: {} for k in ASSET_KINDS}
        for idx, key in enumerate(keys):
            if key not in self._data_cache:
                self._data_cache[key] = PresetData(json.loads(self.h5["preset_data/json"][idx]))
            for kind, hashes in self._data_cache[key].item_hashes().items():
                for pos, item_hash in enumerate(hashes):
                    catalog[kind].setdefault(item_hash, (key, pos))
        return catalog

    def asset(self, kind: str, item_hash: str, catalog: dict | None = None):
        """One wavetable / LFO shape / sample (its Vital JSON object) by content hash."""
        if kind not in ASSET_KINDS:
            raise DatasetError(f"unknown asset kind {kind!r}; known: {', '.join(ASSET_KINDS)}")
        where = (catalog or self.asset_catalog())[kind].get(item_hash)
        if where is None:
            raise DatasetError(f"{self.path}: no {kind} item with hash {item_hash}")
        key, pos = where
        value = self.preset_data(key).get(kind)
        return value[pos] if isinstance(value, list) else value

    def rejections(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.h5["rejections"].attrs.items()}

    def rejected(self) -> np.ndarray:
        """The rejected generator indices with their reasons: (seed_index, reason index) records."""
        return self.h5["rejections/rejected"][:]

    @property
    def generation(self) -> dict | None:
        """How `generate` made this file (fingerprint, config, index range), or None."""
        return generation_info(self.h5.attrs)

    def column(self, name: str) -> np.ndarray:
        """A whole per-example column (midi_note, source, rms_db, seed_index, ...)."""
        return self.h5[name][:]


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


def _merged_generation(readers: Sequence[Dataset]) -> dict | None:
    """Generation attrs for a merge: kept when the inputs are consecutive ranges of one generation.

    Raises:
        DatasetError: inputs of the same generation whose index ranges overlap (duplicate examples).
    """
    found = [generation_info(r.h5.attrs) for r in readers]
    infos = [i for i in found if i is not None]
    if len(infos) != len(found):
        return None
    if len({i["fingerprint"] for i in infos}) != 1:
        log.info(
            "merging datasets of different generation settings: the result has no generation fingerprint"
        )
        return None
    ranges = sorted((i["index_start"], i["index_stop"], str(r.path)) for i, r in zip(infos, readers))
    for (_, a1, pa), (b0, b1, pb) in zip(ranges, ranges[1:]):
        if b0 < a1:
            raise DatasetError(
                f"cannot merge {pb} and {pa}: both hold generator indices [{b0}, {min(a1, b1)}) of the same "
                "generation (duplicate examples); merge each shard once"
            )
    ordered = [(i["index_start"], i["index_stop"]) for i in infos]
    contiguous = all(a[1] == b[0] for a, b in zip(ordered, ordered[1:]))
    if not contiguous:
        log.info("the merged shards are not consecutive in order: the result has no generation index range")
        return None
    return {
        "generate_fingerprint": infos[0]["fingerprint"],
        "generate_config": json.dumps(infos[0]["config"], sort_keys=True),
        "index_start": ordered[0][0],
        "index_stop": ordered[-1][1],
    }


def merge_datasets(
    output: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    chunk: int = 512,
    attrs: dict | None = None,
) -> Path:
    """Concatenate datasets with identical schemas into `output` (written atomically).

    Rows are copied in bulk and compressed audio chunks are copied as they are (no decode/encode), so
    assembling a large dataset costs about a file copy. Generation attributes are kept when the inputs
    are consecutive pieces of one generation (shards or parts, in index order).

    Args:
        output: the merged file.
        inputs: dataset files, in the order their rows are wanted.
        chunk: rows copied at a time.
        attrs: extra root attributes of the output.

    Raises:
        DatasetError: a missing input, schemas that differ (tier, sample rate, names, ranges...), or
            pieces of one generation that overlap.
    """
    if not inputs:
        raise DatasetError("merge needs at least one input dataset")
    out = Path(output)
    readers = []
    try:
        for p in inputs:
            readers.append(Dataset(p))
        schema = readers[0].schema
        for r in readers[1:]:
            diff = schema.differences(r.schema)
            if diff:
                raise DatasetError(
                    f"cannot merge {r.path} into {readers[0].path}: schemas differ: " + "; ".join(diff)
                )
        generation = _merged_generation(readers)
        notes = sorted({n for r in readers for n in r.schema.midi_notes})
        merged_schema = DatasetSchema(**{**asdict(schema), "midi_notes": tuple(notes)})
        first = readers[0].h5["preset_data/keys"]
        base_data = readers[0].preset_data(first[0].decode()) if len(first) else None
        with DatasetWriter(out, merged_schema, mode="w", atomic=True, base_data=base_data) as w:
            for r in readers:
                w.copy_from(r, chunk)
            w.set_attrs(**(generation or {}), **(attrs or {}))
        return out
    finally:
        for r in readers:
            r.close()


def _same_storage(a: h5py.Dataset, b: h5py.Dataset) -> bool:
    """True when chunks of `a` can be copied into `b` byte for byte."""
    return (
        a.dtype == b.dtype
        and a.shape[1:] == b.shape[1:]
        and a.chunks == b.chunks
        and a.chunks is not None
        and a.chunks[0] == 1
        and a.chunks[1:] == a.shape[1:]
        and a.compression == b.compression
        and a.compression_opts == b.compression_opts
        and a.shuffle == b.shuffle
        and a.fletcher32 == b.fletcher32
        and a.scaleoffset == b.scaleoffset
    )


def _gather_modulations(ds: h5py.Dataset, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The modulation rows of consecutive examples, given their [start, count] (one read when contiguous)."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, MOD_DTYPE)
    starts = starts.astype(np.int64)
    lo, hi = int(starts[counts > 0].min()), int((starts + counts)[counts > 0].max())
    block = ds[lo:hi]
    return np.concatenate([block[s - lo : s - lo + c] for s, c in zip(starts, counts) if c])
