"""Training data: precomputed log-mel features, the train/validation split, and fast batch loading.

`precompute_mels` writes the model's input features of a dataset to a sidecar file beside it
(`data/x.h5` -> `data/x.mels.h5`), uncompressed float16 with one example per chunk, so a shuffled epoch
reads each example with one direct chunk read instead of decompressing audio. The sidecar is written to
a temporary file and renamed, so an interrupted run leaves nothing half-written, and it records a
fingerprint of the dataset it was computed from so a stale sidecar is never used.

The split is by preset: every note of one preset lands on the same side (a hash of the preset hash and
the split seed), so validation never hears a preset seen in training.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from tqdm import tqdm

from synthmatch.atomic import atomic_path
from synthmatch.audio.features import FEATURE_LOUDNESS_DB, MelSettings, model_features
from synthmatch.datagen.store import Dataset, DatasetError, DatasetSchema, audio_from_storage
from synthmatch.synth.presets import MOD_DTYPE

log = logging.getLogger(__name__)

__all__ = [
    "mel_sidecar_path",
    "precompute_mels",
    "DatasetLabels",
    "split_by_preset",
    "MelReader",
    "BatchDataset",
    "epoch_batches",
    "dataset_fingerprint",
    "MelStats",
]


def mel_sidecar_path(dataset_path: str | os.PathLike) -> Path:
    p = Path(dataset_path)
    return p.with_name(p.stem + ".mels.h5")


def dataset_fingerprint(ds: Dataset) -> str:
    """Identifies a dataset's rows (count, order and presets) cheaply."""
    h = hashlib.sha1(str(len(ds)).encode())
    h.update(ds.column("preset_hash").tobytes())
    h.update(ds.column("midi_note").tobytes())
    return h.hexdigest()[:20]


@dataclass(frozen=True)
class MelStats:
    """Global mean and standard deviation of the features, used to standardise the model input."""

    mean: float
    std: float


def precompute_mels(
    dataset_path: str | os.PathLike,
    settings: MelSettings | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    n_mels: int = 128,
    n_fft: int = 2048,
    hop_length: int = 512,
) -> Path:
    """Compute the model features of every example and write them to the sidecar file.

    Args:
        dataset_path: a dataset written by `generate`/`ingest`/`merge`.
        settings: mel settings (default: n_mels/n_fft/hop_length at the dataset's sample rate).
        device: where to compute ("cpu", "cuda", ...).
    Returns:
        the sidecar path.
    """
    with Dataset(dataset_path) as ds:
        schema = ds.schema
        s = settings or MelSettings(
            sample_rate=schema.sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels
        )
        if s.sample_rate != schema.sample_rate:
            raise DatasetError(
                f"mel sample rate {s.sample_rate} differs from the dataset's {schema.sample_rate}"
            )
        n, n_frames = len(ds), s.n_frames(schema.n_samples)
        if n == 0:
            raise DatasetError(f"{dataset_path}: the dataset is empty")
        out = mel_sidecar_path(dataset_path)
        total, total_sq, count = 0.0, 0.0, 0
        with atomic_path(out, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
            mels = f.create_dataset(
                "mels", shape=(n, s.n_mels, n_frames), dtype=np.float16, chunks=(1, s.n_mels, n_frames)
            )
            audio_ds = ds.h5["audio"]
            for a in tqdm(range(0, n, batch_size), desc="log-mel", unit="batch", disable=n < 4 * batch_size):
                b = min(n, a + batch_size)
                audio = audio_from_storage(audio_ds[a:b])
                if audio.ndim == 3:
                    audio = audio.mean(axis=1)  # stereo datasets: the model hears mono
                feats_t = model_features(torch.from_numpy(audio), s, device=device)
                feats = feats_t.float().cpu().numpy()
                mels[a:b] = feats.astype(np.float16)
                total += float(feats.sum(dtype=np.float64))
                total_sq += float(np.square(feats, dtype=np.float64).sum())
                count += feats.size
            mean = total / count
            f.attrs.update({k: v for k, v in s.to_dict().items() if v is not None})
            f.attrs["loudness_db"] = FEATURE_LOUDNESS_DB
            f.attrs["feature_mean"] = mean
            f.attrs["feature_std"] = float(np.sqrt(max(total_sq / count - mean * mean, 1e-12)))
            f.attrs["dataset_fingerprint"] = dataset_fingerprint(ds)
            f.attrs["n_examples"] = n
        log.info("wrote %s (%d examples, %d mels x %d frames)", out, n, s.n_mels, n_frames)
        return out


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
    """Indices of the training and validation examples; all rows of a preset fall on one side."""
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
    is_val = val_preset[inverse]
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


class MelReader:
    """Reads precomputed features by example index; opens the file lazily in each process."""

    def __init__(self, path: str | os.PathLike, expected_fingerprint: str | None = None):
        self.path = Path(path)
        self._h5: h5py.File | None = None
        self._pid = -1
        with h5py.File(self.path, "r") as f:
            a = f.attrs
            self.settings = MelSettings(
                sample_rate=int(a["sample_rate"]),
                n_fft=int(a["n_fft"]),
                hop_length=int(a["hop_length"]),
                n_mels=int(a["n_mels"]),
                f_min=float(a["f_min"]),
                f_max=float(a["f_max"]) if "f_max" in a else None,
            )
            self.stats = MelStats(float(a["feature_mean"]), float(a["feature_std"]))
            self.shape = f["mels"].shape[1:]
            self.fingerprint = str(a["dataset_fingerprint"])
            self.compressed = f["mels"].compression is not None
        if expected_fingerprint is not None and expected_fingerprint != self.fingerprint:
            raise DatasetError(
                f"{self.path} was computed from a different version of the dataset; "
                "rerun `synthmatch precompute-mels`"
            )

    def _file(self) -> h5py.File:
        if self._h5 is None or self._pid != os.getpid():
            self._h5 = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._h5

    def read(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """(B, n_mels, T) float16 features, in the given order."""
        ds = self._file()["mels"]
        out = np.empty((len(indices), *self.shape), np.float16)
        if self.compressed:
            for j, i in enumerate(indices):
                out[j] = ds[int(i)]
            return out
        dsid = ds.id
        for j, i in enumerate(indices):
            # One uncompressed chunk per example: read its bytes directly (about 30x faster than h5py indexing).
            _, raw = dsid.read_direct_chunk((int(i), 0, 0))
            out[j] = np.frombuffer(raw, np.float16).reshape(self.shape)
        return out

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_h5"] = None
        state["_pid"] = -1
        return state


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
