"""Parts and resuming: the fingerprint of a run, the index ranges of parts and shards, the part files and
the checks that a folder of parts belongs to this command."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

from synthmatch.atomic import atomic_write_text
from synthmatch.datagen.community import community_files
from synthmatch.datagen.generate.config import CLIP_PEAK, GENERATOR_VERSION, GenerateConfig, GenerateError
from synthmatch.datagen.sample import PresetSampler, sampling_rules_hash
from synthmatch.datagen.store import (
    SCHEMA_VERSION,
    Dataset,
    DatasetError,
    DatasetSchema,
)
from synthmatch.errors import ConfigError
from synthmatch.synth import vita_version
from synthmatch.synth.presets import Preset, PresetError
from synthmatch.synth.render import DEFAULT_VELOCITY, FLUSH_S

log = logging.getLogger("synthmatch.datagen.generate")


# configuration, fingerprint, community presets
def load_community(paths: Sequence[str | os.PathLike], include_test: bool = False) -> list[Preset]:
    """The community presets to breed from: every .vital under `paths` that loads.

    Presets reserved for evaluation (presets/community/split.json) are left out unless `include_test`;
    unreadable files are skipped with a warning.

    Raises:
        ConfigError: a path that does not exist, or no usable preset at all.
    """
    for p in map(Path, paths):
        if not p.exists():
            raise ConfigError(f"--community-dir {p}: no such file or folder")
    presets = []
    for f in community_files(paths, include_test=include_test):
        try:
            presets.append(Preset.load(f))
        except PresetError as exc:
            log.warning("community preset skipped: %s", exc)
    if paths and not presets:
        raise ConfigError(f"--community-dir {', '.join(map(str, paths))}: no usable .vital presets found")
    return presets


def generation_config(cfg: GenerateConfig, sampler: PresetSampler) -> dict:
    """Everything that decides the rows of a generation (the fingerprint's content).

    Not included: n and the shard (they choose which parts exist, each part records its range), the
    worker count (a part is rendered by one process whatever the count), the timeout and progress.
    """
    community = hashlib.sha1(",".join(sampler.community_hashes).encode()).hexdigest()[:16]
    return {
        "generator_version": GENERATOR_VERSION,
        "schema_version": SCHEMA_VERSION,
        "sampling_rules": sampling_rules_hash(),
        "lhs_block_size": sampler.block_size,
        "base_preset": sampler.base_name,
        "tier": cfg.tier,
        "seed": cfg.seed,
        "sample_rate": cfg.sample_rate,
        "duration_s": cfg.duration_s,
        "note_duration_s": cfg.note_duration_s,
        "midi_notes": list(cfg.midi_notes),
        "velocity": DEFAULT_VELOCITY,
        "flush_s": FLUSH_S,
        "audio_dtype": cfg.audio_dtype,
        "channels": 2 if cfg.stereo else 1,
        "silence_db": cfg.silence_db,
        "clip_peak": CLIP_PEAK,
        "part_size": cfg.part_size,
        "community_presets": len(sampler.community_hashes),
        "community_hash": community if sampler.community_hashes else "",
        "community_share": sampler.community_share,
        "vita_version": vita_version(),
    }


def _fingerprint(config: dict) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:20]


def _config_differences(old: dict, new: dict) -> list[str]:
    return [
        f"{k}: {old.get(k)!r} then, {new.get(k)!r} now"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]


def shard_range(n: int, part_size: int, shard: tuple[int, int]) -> list[tuple[int, int]]:
    """The parts [a, b) of shard (i, N): a contiguous run of the aligned parts of [0, n)."""
    i, k = shard
    n_parts = math.ceil(n / part_size)
    lo, hi = i * n_parts // k, (i + 1) * n_parts // k
    return [(p * part_size, min((p + 1) * part_size, n)) for p in range(lo, hi)]


def parts_dir_for(output: str | os.PathLike) -> Path:
    """Where the parts of OUTPUT are kept while it is generated."""
    out = Path(output)
    return out.with_name(out.name + ".parts")


def _part_path(parts_dir: Path, a: int, b: int) -> Path:
    return parts_dir / f"part-{a:010d}-{b:010d}.h5"


def _schema(cfg: GenerateConfig, sampler: PresetSampler) -> DatasetSchema:
    return DatasetSchema.for_tier(
        cfg.tier,
        sample_rate=cfg.sample_rate,
        duration_s=cfg.duration_s,
        note_duration_s=cfg.note_duration_s,
        midi_notes=cfg.midi_notes,
        velocity=DEFAULT_VELOCITY,
        base_preset=sampler.base_name,
        audio_dtype=cfg.audio_dtype,
        channels=2 if cfg.stereo else 1,
        seed=cfg.seed,
    )


def _complete_file(path: Path, fingerprint: str, a: int, b: int) -> tuple[int, dict[str, int]] | None:
    """(accepted rows, rejections) when `path` is a complete generation of [a, b) with this fingerprint."""
    try:
        with Dataset(path) as ds:
            info = ds.generation
            if info is None or info["fingerprint"] != fingerprint:
                return None
            if (info["index_start"], info["index_stop"]) != (a, b):
                return None
            if len(ds) + len(ds.rejected()) != b - a:
                return None
            return len(ds), ds.rejections()
    except (DatasetError, OSError, KeyError):
        return None


def _why_not(path: Path, config: dict, start: int, stop: int) -> str:
    try:
        with Dataset(path) as ds:
            info = ds.generation
    except DatasetError as exc:
        return f" ({exc})"
    if info is None:
        return " (it was not made by `generate`)"
    diff = _config_differences(info["config"], config)
    if diff:
        return " (it was made with other settings: " + "; ".join(diff) + ")"
    if (info["index_start"], info["index_stop"]) != (start, stop):
        return f" (it holds generator indices [{info['index_start']}, {info['index_stop']}), this command [{start}, {stop}))"
    return " (it is incomplete)"


def _check_parts_dir(parts_dir: Path, config: dict, fingerprint: str, cfg: GenerateConfig) -> None:
    """Refuse to resume with another command; clear temporary files of killed runs."""
    meta = parts_dir / "generate.json"
    if meta.exists():
        try:
            old = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError):
            old = None
        if old is not None and old.get("fingerprint") != fingerprint:
            diff = _config_differences(old.get("config", {}), config)
            raise GenerateError(
                f"{parts_dir} holds parts of a different generate command ({'; '.join(diff) or 'other settings'}). "
                f"Rerun the original command to finish it, or delete {parts_dir} to start over"
            )
    # Temporary files of a killed run (parts, or the final file being assembled); the lock is ours.
    leftovers = [
        *parts_dir.glob(".part-*.tmp*"),
        *cfg.output.parent.glob(f".{cfg.output.stem}.*.tmp{cfg.output.suffix}"),
    ]
    for tmp in leftovers:
        log.debug("removing %s, left by a killed run", tmp)
        tmp.unlink(missing_ok=True)
    atomic_write_text(
        meta,
        json.dumps(
            {
                "fingerprint": fingerprint,
                "config": config,
                "n": cfg.n,
                "shard": list(cfg.shard),
                "output": str(cfg.output),
            },
            indent=1,
            sort_keys=True,
        ),
    )
