"""Perceptual importance of each continuous parameter: `synthmatch compute-weights`.

For a set of base presets (rows of the dataset), each continuous parameter of the tier is moved by
+-delta in normalized units, the preset is rendered, and the multi-scale log-mel distance to the base
render is measured. A parameter's weight is its mean distance above vita's run-to-run noise floor
(measured by rendering each base twice), normalised so the weights average 1. The weights are stored in
the dataset as `/param_weights` and used by `train --perceptual-weights`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from synthmatch.audio.distances import multiscale_log_mel_l1
from synthmatch.datagen.store import Dataset, DatasetError
from synthmatch.synth.presets import ParamVector, Preset
from synthmatch.synth.render import Renderer

log = logging.getLogger(__name__)

__all__ = ["compute_param_weights"]


def compute_param_weights(
    dataset_path: str | os.PathLike,
    n_base: int = 8,
    delta: float = 0.15,
    seed: int = 0,
    threads: int | None = None,
    write: bool = True,
) -> np.ndarray:
    """Measure (Nc,) weights and (by default) store them in the dataset file."""
    path = Path(dataset_path)
    with Dataset(path) as ds:
        s = ds.schema
        if len(ds) == 0:
            raise DatasetError(f"{path}: the dataset is empty")
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(ds), size=min(n_base, len(ds)), replace=False))
        bases = [(ds.preset(int(i)), ds.vector(int(i)), int(ds.h5["midi_note"][int(i)])) for i in rows]
    nc = len(s.continuous_names)
    dist_sum = np.zeros(nc)
    floor_sum = 0.0
    with Renderer(sample_rate=s.sample_rate, n_threads=threads) as r:
        for preset, vec, note in tqdm(bases, desc="weights", unit="preset"):
            base_renders = r.render_batch([preset, preset], note, s.note_duration_s, s.duration_s)
            if not all(x.ok for x in base_renders):
                continue
            ref, again = base_renders[0].audio, base_renders[1].audio
            assert ref is not None and again is not None  # renders without error have audio
            floor_sum += multiscale_log_mel_l1(again, ref, s.sample_rate)
            variants = []
            for j in range(nc):
                u = vec.continuous.astype(np.float64).copy()
                u[j] = u[j] + delta if u[j] + delta <= 1 else u[j] - delta
                variants.append(
                    Preset.from_vector(
                        ParamVector(s.tier, u.astype(np.float32), vec.categorical, vec.modulation),
                        base=preset,
                    )
                )
            for j, res in enumerate(r.render_batch(variants, note, s.note_duration_s, s.duration_s)):
                if res.ok and res.audio is not None:  # (ok implies audio)
                    dist_sum[j] += multiscale_log_mel_l1(res.audio, ref, s.sample_rate)
    n = len(bases)
    floor = floor_sum / n
    raw = np.maximum(dist_sum / n - floor, 0.0)
    weights = raw / raw.mean() if raw.mean() > 0 else np.ones(nc)
    weights = np.clip(weights, 0.05, 20.0).astype(np.float32)  # keep every parameter in the loss a little
    if write:
        with h5py.File(path, "a") as f:
            if "param_weights" in f:
                del f["param_weights"]
            d = f.create_dataset("param_weights", data=weights)
            d.attrs.update({"n_base": n, "delta": delta, "noise_floor": floor, "seed": seed})
        log.info("stored perceptual weights of %d parameters in %s (noise floor %.3f)", nc, path, floor)
    return weights
