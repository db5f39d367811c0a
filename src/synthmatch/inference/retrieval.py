"""A nearest-neighbour index of a dataset's sounds: retrieval starts for matching.

    synthmatch index -d data/t2.h5 -o data/t2.index      # build
    index = RetrievalIndex.load("data/t2.index")          # or default_index() (the bundled one)
    for hit in index.query(audio, sample_rate, k=2):
        hit.preset, hit.distance, hit.seed_index

An index holds, per example, its embedding (`audio.features.embed_features` of the model's log-mel
features: band energies over time, standardised over the dataset, float16) and its generator index. A
generated example is a pure function of (seed, index, tier) and the sampler's rules, so the preset is
rebuilt by drawing it again (`datagen.sample.PresetSampler`), not stored: an index is about 0.6 KB per
example. Only examples that can be rebuilt that way are indexed: the random draws of a `generate` run
without community presets; bred and ingested examples are left out, and counted (`synthmatch index` says
how many). Building checks every rebuilt preset against the hash the dataset recorded.

The file is safetensors (arrays) with the recipe as JSON metadata, never pickled. Loading refuses, in
one line, a file that is not an index, is damaged, or was built with other sampling rules than the
installed ones (the presets it would rebuild would not be the ones it indexed). Search is brute force in
NumPy: a query over 4096 examples takes well under a millisecond (benchmarks/retrieval.py).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthmatch.audio.features import MelSettings, embed_features, fit_length, model_features
from synthmatch.audio.io import resample
from synthmatch.errors import SynthmatchError
from synthmatch.synth.presets import Preset

log = logging.getLogger(__name__)

__all__ = [
    "RetrievalIndex",
    "RetrievalIndexError",
    "Neighbour",
    "build_index",
    "default_index_path",
    "INDEX_FORMAT",
]

INDEX_FORMAT = "synthmatch-index"
INDEX_VERSION = 1
_ASSETS = Path(__file__).resolve().parent.parent / "assets" / "default_model"


class RetrievalIndexError(SynthmatchError):
    """An index file that cannot be used (missing, damaged, another format or other sampling rules)."""


def default_index_path() -> Path | None:
    """The index bundled beside the default model, or None."""
    p = _ASSETS / "index.safetensors"
    return p if p.exists() else None


@dataclass(frozen=True)
class Neighbour:
    """One hit of a query."""

    row: int  # row in the index
    seed_index: int  # the example's generator index
    midi_note: int  # the note it was rendered at
    distance: float  # embedding distance (standardised units)
    preset: Preset


class RetrievalIndex:
    """Embeddings of a dataset's examples and the recipe that rebuilds their presets."""

    def __init__(self, embeddings: np.ndarray, mean, std, seed_index, midi_note, meta: dict, path=None):
        from synthmatch.datagen.sample import PresetSampler

        self.embeddings = np.asarray(embeddings, np.float32)
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.seed_index = np.asarray(seed_index, np.int64)
        self.midi_note = np.asarray(midi_note, np.int64)
        self.meta = meta
        self.path = path
        self.tier = int(meta["tier"])
        self.sample_rate = int(meta["sample_rate"])
        self.n_samples = int(meta["n_samples"])
        self.mel = MelSettings.from_dict(meta["mel"])
        self.sampler = PresetSampler(
            self.tier, int(meta["seed"]), block_size=int(meta["lhs_block_size"]), base=meta["base_preset"]
        )

    def __len__(self) -> int:
        return len(self.embeddings)

    # -----------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike) -> RetrievalIndex:
        """Read an index; RetrievalIndexError (one line) when it is missing, damaged or stale."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        from synthmatch.datagen.sample import sampling_rules_hash

        p = Path(path)
        if not p.is_file():
            raise RetrievalIndexError(
                f"{p}: no such index file (build one with `synthmatch index -d DATASET.h5 -o {p}`)"
            )
        try:
            arrays = load_file(str(p))
            from safetensors import safe_open

            with safe_open(str(p), framework="numpy") as f:
                header = f.metadata() or {}
            meta = json.loads(header.get("synthmatch_index", "null"))
        except (SafetensorError, OSError, ValueError) as exc:
            raise RetrievalIndexError(f"{p}: not a readable index ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
            raise RetrievalIndexError(f"{p}: not a synthmatch index")
        if meta.get("version") != INDEX_VERSION:
            raise RetrievalIndexError(
                f"{p}: index version {meta.get('version')}, this synthmatch reads {INDEX_VERSION}"
            )
        if meta.get("sampling_rules") != sampling_rules_hash():
            raise RetrievalIndexError(
                f"{p}: built with other sampling rules than the installed synthmatch's, so its presets cannot "
                "be rebuilt; build it again from its dataset with `synthmatch index`"
            )
        need = ("embeddings", "mean", "std", "seed_index", "midi_note")
        missing = [k for k in need if k not in arrays]
        if missing:
            raise RetrievalIndexError(f"{p}: damaged index (missing {', '.join(missing)})")
        e = arrays["embeddings"]
        if e.ndim != 2 or any(arrays[k].ndim != 1 for k in ("mean", "std", "seed_index", "midi_note")):
            raise RetrievalIndexError(f"{p}: damaged index (array shapes)")
        n = len(e)
        if any(len(arrays[k]) != n for k in ("seed_index", "midi_note")) or n == 0:
            raise RetrievalIndexError(f"{p}: damaged index (arrays of different lengths)")
        if arrays["mean"].shape != (e.shape[1],) or arrays["std"].shape != (e.shape[1],):
            raise RetrievalIndexError(f"{p}: damaged index (embedding width)")
        if not np.all(np.isfinite(e.astype(np.float32))):
            raise RetrievalIndexError(f"{p}: damaged index (non-finite embeddings)")
        try:
            return cls(e, arrays["mean"], arrays["std"], arrays["seed_index"], arrays["midi_note"], meta, p)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RetrievalIndexError(f"{p}: damaged index ({exc})") from None

    def save(self, path: str | os.PathLike) -> Path:
        """Write the index (atomically)."""
        from safetensors.numpy import save_file

        from synthmatch.atomic import atomic_path

        p = Path(path)
        arrays: dict[str, np.ndarray] = {
            "embeddings": self.embeddings.astype(np.float16),
            "mean": self.mean.astype(np.float32),
            "std": self.std.astype(np.float32),
            "seed_index": self.seed_index.astype(np.int64),
            "midi_note": self.midi_note.astype(np.int16),
        }
        with atomic_path(p) as tmp:
            save_file(arrays, str(tmp), metadata={"synthmatch_index": json.dumps(self.meta)})
        return p

    # -----------------------------------------------------------------------------------------------
    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """(D,) standardised embedding of mono audio, read as the dataset's examples were (its first
        n_samples: the model's window)."""
        a = np.asarray(audio, np.float32).reshape(-1)
        if sample_rate != self.sample_rate:
            a = resample(a, sample_rate, self.sample_rate)
        feats = model_features(fit_length(a, self.n_samples), self.mel)
        return (embed_features(feats)[0] - self.mean) / self.std

    def query(self, audio: np.ndarray, sample_rate: int, k: int = 1) -> list[Neighbour]:
        """The k examples closest to `audio`, closest first, each with its rebuilt preset (distinct
        presets: an example drawn twice at two notes counts once)."""
        d = np.sqrt(np.sum(np.square(self.embeddings - self.embed(audio, sample_rate)), axis=1))
        out: list[Neighbour] = []
        seen: set[int] = set()
        for row in np.argsort(d, kind="stable"):
            s = int(self.seed_index[row])
            if s in seen:
                continue
            seen.add(s)
            out.append(Neighbour(int(row), s, int(self.midi_note[row]), float(d[row]), self.preset(int(row))))
            if len(out) >= k:
                break
        return out

    def preset(self, row: int) -> Preset:
        """The preset of indexed example `row`, drawn again from its generator index."""
        return self.sampler.sample(int(self.seed_index[row])).preset


def build_index(dataset: str | os.PathLike, output: str | os.PathLike, progress: bool = False) -> dict:
    """Index the rebuildable examples of a dataset into `output`; returns a summary.

    Raises:
        RetrievalIndexError: the dataset has no example that can be rebuilt from its generator index.
        DatasetError: the dataset cannot be read.
    """
    from tqdm import tqdm

    from synthmatch.datagen.sample import PresetSampler
    from synthmatch.datagen.store import Dataset, audio_from_storage
    from synthmatch.datagen.store.schema import SOURCES, generation_info

    t0 = time.perf_counter()
    ds = Dataset(dataset)
    try:
        gen = generation_info(ds.h5.attrs)
        schema = ds.schema
        n = len(ds)
        if gen is None:
            raise RetrievalIndexError(
                f"{dataset}: not written by `synthmatch generate` (no generator recipe): its presets cannot be "
                "rebuilt from an index"
            )
        cfg = gen["config"]
        if int(cfg.get("community_presets", 0)):
            raise RetrievalIndexError(
                f"{dataset}: generated with community presets to breed from; an index rebuilds presets from "
                "the generator alone: index a dataset generated without --community-dir"
            )
        seed_index = ds.column("seed_index").astype(np.int64)
        source = ds.column("source")
        keep = np.nonzero((seed_index >= 0) & (source == SOURCES.index("random")))[0]
        if len(keep) == 0:
            raise RetrievalIndexError(f"{dataset}: no generated example to index")
        sampler = PresetSampler(
            int(cfg["tier"]), int(cfg["seed"]), block_size=int(cfg["lhs_block_size"]), base=cfg["base_preset"]
        )
        mel = MelSettings(sample_rate=int(schema.sample_rate))
        hashes = ds.column("preset_hash")
        chunks, rows, mismatched = [], [], 0
        bar = tqdm(total=len(keep), desc="indexing", unit="ex", disable=not progress, leave=False)
        audio_ds = ds.h5["audio"]
        for a in range(0, len(keep), 256):
            part = keep[a : a + 256]
            for i in part:
                h = hashes[i].decode() if isinstance(hashes[i], bytes) else str(hashes[i])
                if sampler.sample(int(seed_index[i])).preset.content_hash() != h:
                    mismatched += 1
                    continue
                rows.append(int(i))
            audio = audio_from_storage(audio_ds[int(part[0]) : int(part[-1]) + 1])
            audio = audio[part - part[0]]
            if audio.ndim == 3:
                audio = audio.mean(axis=1)  # the model hears mono
            chunks.append((part, embed_features(model_features(audio, mel))))
            bar.update(len(part))
        bar.close()
        if not rows:
            raise RetrievalIndexError(
                f"{dataset}: none of its presets can be rebuilt with the installed sampler (another version?)"
            )
        by_row = {int(i): e for part, emb in chunks for i, e in zip(part, emb)}
        emb = np.stack([by_row[i] for i in rows]).astype(np.float32)
        mean, std = emb.mean(axis=0), emb.std(axis=0) + 1e-3
        from synthmatch.datagen.sample import sampling_rules_hash

        meta = {
            "format": INDEX_FORMAT,
            "version": INDEX_VERSION,
            "tier": int(cfg["tier"]),
            "seed": int(cfg["seed"]),
            "lhs_block_size": int(cfg["lhs_block_size"]),
            "base_preset": cfg["base_preset"],
            "sampling_rules": sampling_rules_hash(),
            "generator_version": cfg.get("generator_version"),
            "vita_version": cfg.get("vita_version"),
            "sample_rate": int(schema.sample_rate),
            "n_samples": int(schema.n_samples),
            "mel": mel.to_dict(),
            "dataset": Path(dataset).name,
            "dataset_fingerprint": gen["fingerprint"],
        }
        index = RetrievalIndex(
            (emb - mean) / std,
            mean,
            std,
            seed_index[rows],
            ds.column("midi_note")[rows].astype(np.int64),
            meta,
        )
        path = index.save(output)
    finally:
        ds.close()
    summary = {
        "index": str(path),
        "examples": len(rows),
        "dataset_rows": n,
        "left_out": {"not generated at random": int(n - len(keep)), "rebuilt preset differs": mismatched},
        "bytes": path.stat().st_size,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if mismatched:
        log.warning("%s: %d examples rebuilt to a different preset were left out", dataset, mismatched)
    return summary
