"""Reading a dataset file: `Dataset` (rows, presets, structured data, columns) without loading it whole."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from synthmatch.synth.params import param_space
from synthmatch.synth.presets import MOD_DTYPE, ParamVector, Preset, PresetData, base_preset

from .codec import audio_from_storage
from .schema import ASSET_KINDS, SOURCES, DatasetError, DatasetSchema, generation_info


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
