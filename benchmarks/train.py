"""Training speed: data loading from precomputed features, training examples/s, one-clip prediction latency.

    python benchmarks/train.py [--dataset FILE.h5] [--sizes tiny,small,base] [--device cpu|cuda]

Without --dataset it renders a throwaway tier-2 dataset (2 s notes at 44.1 kHz, like the defaults of
`synthmatch generate`) into a temporary folder first. Features are precomputed with the project's own
`precompute_mels`; loading goes through the same BatchDataset/DataLoader the trainer uses.
Targets: a shuffled epoch reads at >= 2000 examples/s; one clip predicts in well under 100 ms on CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import load_monitor, machine_line, print_table  # noqa: E402
from synthmatch.datagen.mels import MelReader, mel_sidecar_path, precompute_mels  # noqa: E402
from synthmatch.datagen.sample import PresetSampler  # noqa: E402
from synthmatch.datagen.store import DatasetSchema, DatasetWriter, ExampleRow  # noqa: E402
from synthmatch.model.nets import MODEL_SIZES, ModelConfig, SynthMatchNet  # noqa: E402
from synthmatch.synth.render import Renderer  # noqa: E402
from synthmatch.training.data import (  # noqa: E402
    BatchDataset,
    DatasetLabels,
    epoch_batches,
)
from synthmatch.training.loss import LossWeights, ParamLayout, compute_loss  # noqa: E402


def build_dataset(path: Path, n: int) -> Path:
    schema = DatasetSchema.for_tier(2)
    sampler = PresetSampler(2, seed=4242)
    ex = [sampler.sample(i) for i in range(n)]
    with Renderer() as r:
        res = r.render_batch([e.preset for e in ex], 60, schema.note_duration_s, schema.duration_s)
    rows = [
        ExampleRow.from_preset(e.preset, x.audio, schema, 60, e.source, seed_index=e.index)
        for e, x in zip(ex, res)
        if x.ok
    ]
    with DatasetWriter(path, schema, atomic=True) as w:
        w.append(rows)
    return path


def loader_rate(labels: DatasetLabels, reader: MelReader, batch_size: int, workers: int) -> float:
    idx = np.arange(len(labels))
    batches = epoch_batches(idx, batch_size, seed=0, epoch=1)
    ds = BatchDataset(labels, batches, reader, reader.settings, reader.stats)
    dl = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers)
    t0 = time.perf_counter()
    n = 0
    for b in dl:
        n += b["mel"].shape[0]
    return n / (time.perf_counter() - t0)


def train_rate(
    labels: DatasetLabels, reader: MelReader, size: str, batch_size: int, steps: int, device: torch.device
) -> tuple[float, float, float]:
    s = labels.schema
    cfg = ModelConfig(
        n_mels=reader.settings.n_mels,
        n_frames=reader.shape[1],
        n_continuous=len(s.continuous_names),
        categorical_sizes=tuple(s.categorical_n_options),
        n_mod_sources=len(s.mod_sources),
        n_mod_destinations=len(s.mod_destinations),
        size=size,
        **MODEL_SIZES[size],
    )
    model = SynthMatchNet(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    layout = ParamLayout.from_schema(s)
    batches = epoch_batches(np.arange(len(labels)), batch_size, seed=0, epoch=1)
    ds = BatchDataset(labels, batches, reader, reader.settings, reader.stats)
    data = [{k: v.to(device) for k, v in ds[i % len(ds)].items()} for i in range(min(steps, len(ds)))]

    def step(b):
        out = model(b["mel"], b["midi_note"])
        loss, _ = compute_loss(out, b, layout, LossWeights())
        opt.zero_grad()
        loss.backward()
        opt.step()

    for b in data[:3]:
        step(b)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    n = 0
    for i in range(steps):
        b = data[i % len(data)]
        step(b)
        n += b["mel"].shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    rate = n / (time.perf_counter() - t0)
    model.eval()
    x = data[0]["mel"][:1]
    note = data[0]["midi_note"][:1]
    with torch.no_grad():
        for _ in range(3):
            model(x, note)
        times = []
        for _ in range(20):
            t = time.perf_counter()
            model(x, note)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return rate, float(np.median(times) * 1000), params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path)
    ap.add_argument("--examples", type=int, default=1024, help="size of the throwaway dataset")
    ap.add_argument("--sizes", default="tiny,small,base")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    print(
        f"machine: {machine_line()}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"device {args.device}" + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else "")
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = args.dataset
        if path is None:
            t0 = time.perf_counter()
            path = build_dataset(Path(tmp) / "bench.h5", args.examples)
            print(f"rendered a {args.examples}-example tier-2 dataset in {time.perf_counter() - t0:.0f} s")
        if not mel_sidecar_path(path).exists():
            t0 = time.perf_counter()
            precompute_mels(path, device=args.device)
            print(f"precompute-mels: {time.perf_counter() - t0:.1f} s")
        labels = DatasetLabels(path)
        reader = MelReader(mel_sidecar_path(path), expected_fingerprint=labels.fingerprint)
        rows = []
        for workers in (0, 1, 2):
            load: dict = {}
            with load_monitor(load):
                rate = max(loader_rate(labels, reader, args.batch_size, workers) for _ in range(2))
            rows.append([workers, len(labels), round(rate), f"{load['machine_busy_cores']:.2f}"])
        print_table(
            ["loader workers", "examples", "examples/s (shuffled epoch)", "machine busy cores"],
            rows,
            title="Reading precomputed features (batch of 64, shuffled order)",
        )
        rows = []
        device = torch.device(args.device)
        for size in args.sizes.split(","):
            load = {}
            with load_monitor(load):
                rate, latency_ms, params = train_rate(
                    labels, reader, size, args.batch_size, args.steps, device
                )
            rows.append(
                [
                    size,
                    f"{params:.2f}M",
                    round(rate),
                    round(latency_ms, 1),
                    f"{load['machine_busy_cores']:.2f}",
                ]
            )
        print_table(
            [
                "model size",
                "parameters",
                f"training examples/s ({args.device})",
                "predict 1 clip (ms)",
                "machine busy cores",
            ],
            rows,
            title=f"Training throughput, batch {args.batch_size}, tier 2, 2 s clips (128 mels x "
            f"{reader.shape[1]} frames)",
        )


if __name__ == "__main__":
    main()
