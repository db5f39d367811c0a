"""Writing a dataset file: `ExampleRow`, and `DatasetWriter` (rows, bulk copies of a file, rejections)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from synthmatch.atomic import atomic_path
from synthmatch.synth.params import ParamSpace
from synthmatch.synth.presets import MOD_DTYPE, Preset, PresetData, base_preset

from .codec import audio_from_storage, audio_to_storage
from .schema import _REJECTED_DTYPE, _STR, REJECTION_REASONS, SOURCES, DatasetError, DatasetSchema

if TYPE_CHECKING:
    from .reader import Dataset


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
        try:
            if self.h5.id.valid:
                self.h5.attrs["n_examples"] = len(self)
                self.h5.close()
        except OSError:  # a full disk fails the final flush: keep nothing half-written
            self.abort()
            raise
        if self._atomic_ctx is not None:
            ctx, self._atomic_ctx = self._atomic_ctx, None
            ctx.__exit__(None, None, None)

    def abort(self) -> None:
        """Close without keeping a file written with atomic=True (also when closing fails: a full disk)."""
        try:
            if self.h5.id.valid:
                self.h5.close()
        except OSError:
            pass
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
