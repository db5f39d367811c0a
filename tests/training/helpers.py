"""Plain helpers of the training tests: tiny real datasets, rendered by vita, written as HDF5."""

from __future__ import annotations

from pathlib import Path

from synthmatch.datagen.sample import PresetSampler
from synthmatch.datagen.store import DatasetSchema, DatasetWriter, ExampleRow
from synthmatch.synth.render import Renderer


def make_dataset(
    path: Path,
    tier: int = 1,
    n: int = 48,
    seed: int = 7,
    sample_rate: int = 22050,
    duration_s: float = 0.5,
    notes=(48, 60, 72),
) -> Path:
    """n examples of the tier, each preset rendered at one of `notes` (so presets span several rows)."""
    schema = DatasetSchema.for_tier(
        tier,
        sample_rate=sample_rate,
        duration_s=duration_s,
        note_duration_s=0.35,
        midi_notes=notes,
        seed=seed,
    )
    sampler = PresetSampler(tier, seed=seed)
    n_presets = -(-n // 2)
    examples = [sampler.sample(i) for i in range(n_presets)]
    jobs = [(e, notes[(i + j) % len(notes)]) for i, e in enumerate(examples) for j in range(2)][:n]
    with Renderer(sample_rate=sample_rate) as r:
        results = r.render_batch([e.preset for e, _ in jobs], [note for _, note in jobs], 0.35, duration_s)
    rows = [
        ExampleRow.from_preset(e.preset, res.audio, schema, note, e.source, seed_index=e.index)
        for (e, note), res in zip(jobs, results)
    ]
    with DatasetWriter(path, schema, atomic=True) as w:
        w.append(rows)
    return path
