"""Training data: a dataset's labels in memory, the train/validation split, and fast batch loading.

Features come from the mel sidecar (`synthmatch.datagen.mels`: `precompute_mels`, `MelReader`) when one
exists, else from the audio.

The split is by preset: every note of one preset lands on the same side (a hash of the preset hash and
the split seed), so validation never hears a preset seen in training.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch

from synthmatch.audio.features import MelSettings, model_features
from synthmatch.datagen.mels import MelReader, MelStats, dataset_fingerprint
from synthmatch.datagen.store import Dataset, DatasetSchema
from synthmatch.synth.presets import MOD_DTYPE

log = logging.getLogger(__name__)

__all__ = [
    "DatasetLabels",
    "split_by_preset",
    "BatchDataset",
    "epoch_batches",
]


class DatasetLabels:
    """A dataset's labels held in memory (small), with the split and feature source."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with Dataset(self.path) as ds:
            self.schema: DatasetSchema = ds.schema
            h = ds.h5
            self.continuous = h["continuous"][:].astype(np.float32)  # (N, Nc)
            self.categorical = h["categorical"][:].astype(np.int64)  # (N, Nk)
            self.midi_note = h["midi_note"][:].astype(np.int64)
            self.preset_hash = h["preset_hash"][:]
            self.mod_index = h["mod_index"][:]
            self.modulations = h["modulations"][:] if h["modulations"].shape[0] else np.zeros(0, MOD_DTYPE)
            self.param_weights = h["param_weights"][:].astype(np.float32) if "param_weights" in h else None
            self.fingerprint = dataset_fingerprint(ds)
        self.n = len(self.continuous)

    def __len__(self) -> int:
        return self.n

    def mods_padded(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Connections of a batch as (B, M) MOD_DTYPE rows plus (B,) counts (M = the batch's maximum)."""
        counts = self.mod_index[idx, 1]
        m = int(counts.max()) if len(counts) else 0
        out = np.zeros((len(idx), max(m, 1)), MOD_DTYPE)
        for j, i in enumerate(idx):
            start, c = self.mod_index[i]
            if c:
                out[j, :c] = self.modulations[start : start + c]
        return out, counts


def split_by_preset(
    preset_hashes: np.ndarray, val_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation examples; all rows of a preset fall on one side.

    With `val_fraction` > 0 and at least two presets, validation holds at least one preset."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    uniq, inverse = np.unique(preset_hashes, return_inverse=True)
    scores = np.array(
        [
            int.from_bytes(hashlib.sha1(bytes(h) + str(seed).encode()).digest()[:8], "little") / 2**64
            for h in uniq
        ]
    )
    val_preset = scores < val_fraction
    if val_fraction > 0 and len(uniq) >= 2 and not val_preset.any():
        # A small dataset can draw no validation preset at all; the lowest score goes there instead, so a
        # split asked for is never empty (and stays the same for the same hashes and seed).
        val_preset[np.argmin(scores)] = True
    is_val = val_preset[inverse]
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


class BatchDataset(torch.utils.data.Dataset):
    """Items are whole batches (lists of example indices), so a DataLoader worker reads a batch at once."""

    def __init__(
        self,
        labels: DatasetLabels,
        batches: list[np.ndarray],
        reader: MelReader | None,
        settings: MelSettings,
        stats: MelStats,
    ):
        self.labels = labels
        self.batches = batches
        self.reader = reader
        self.settings = settings
        self.stats = stats
        self._audio: Dataset | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.batches)

    def _features_from_audio(self, idx: np.ndarray) -> np.ndarray:
        if self._audio is None or self._pid != os.getpid():
            self._audio = Dataset(self.labels.path)
            self._pid = os.getpid()
        audio = self._audio.audio_batch(idx)
        if audio.ndim == 3:
            audio = audio.mean(axis=1)
        return model_features(audio, self.settings)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        idx = np.asarray(self.batches[k], np.int64)
        feats = self.reader.read(idx) if self.reader is not None else self._features_from_audio(idx)
        mel = (torch.from_numpy(feats.astype(np.float32)) - self.stats.mean) / self.stats.std
        mods, counts = self.labels.mods_padded(idx)
        return {
            "index": torch.from_numpy(idx),
            "mel": mel,  # (B, n_mels, T)
            "midi_note": torch.from_numpy(self.labels.midi_note[idx]),
            "continuous": torch.from_numpy(self.labels.continuous[idx]),
            "categorical": torch.from_numpy(self.labels.categorical[idx]),
            "mod_source": torch.from_numpy(mods["source"].astype(np.int64)),
            "mod_destination": torch.from_numpy(mods["destination"].astype(np.int64)),
            "mod_amount": torch.from_numpy(mods["amount"].astype(np.float32)),
            "mod_power": torch.from_numpy(mods["power"].astype(np.float32)),
            "mod_bipolar": torch.from_numpy(mods["bipolar"].astype(np.float32)),
            "mod_stereo": torch.from_numpy(mods["stereo"].astype(np.float32)),
            "mod_count": torch.from_numpy(counts.astype(np.int64)),
        }


def epoch_batches(
    indices: np.ndarray,
    batch_size: int,
    seed: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
    shuffle: bool = True,
    drop_last: bool = False,
    pad_to_equal: bool = True,
) -> list[np.ndarray]:
    """This rank's batches of one epoch: a pure function of (seed, epoch), like DistributedSampler.

    With several ranks the epoch's order is dealt round-robin; `pad_to_equal` repeats examples so every
    rank gets the same number of batches (training), while validation uses pad_to_equal=False so every
    example is counted exactly once.
    """
    order = np.asarray(indices, np.int64)
    if shuffle:
        order = order[np.random.default_rng([seed, epoch]).permutation(len(order))]
    if world_size > 1:
        if pad_to_equal and len(order) % world_size:
            extra = world_size - len(order) % world_size
            order = np.concatenate([order, order[:extra]])
        order = order[rank::world_size]
    n_batches = len(order) // batch_size if drop_last else -(-len(order) // batch_size)
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(n_batches)]
