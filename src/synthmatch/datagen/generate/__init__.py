"""Dataset generation: sampled presets rendered by worker processes into part files, then assembled.

`generate(cfg)` renders examples [0, n) (or one shard's share of them) and writes them to
`cfg.output` in the store's schema. Example i is `PresetSampler.sample(i)` rendered at
`example_midi_note(seed, i, tier, midi_notes)`: its parameters are a pure function of (seed, i, tier,
community set), see `sample.py`.

Work is never lost:

- The index range is cut into aligned parts [a, b) of `part_size` examples (256 by default, the sampler's
  Latin hypercube block). A part is written to `OUTPUT.parts/` atomically once every index in it is
  either accepted (a row, in index order) or rejected (with its reason); a killed run leaves only
  complete parts, and the same command resumes by skipping them. At the end the parts are joined in
  order into OUTPUT (atomically, compressed audio copied as stored) and the folder is removed.
- Each part and the final file carry a fingerprint of everything that decides the rows
  (`generation_config`): resuming with a different command fails and names the differences.
- Each part is rendered by a fresh worker process (multiprocessing "spawn": nothing is forked, so
  importing torch elsewhere is harmless) with its own vita Synth. vita seeds its random generators from
  a process-wide counter and a reused Synth carries state from one render to the next (docs/VITA.md, "State carried from one render to the next"), so
  a part's audio is a pure function of the part only when the process renders that part alone, in
  order, from a fresh start. Then a resumed run is byte-identical to an uninterrupted one.
- A worker reports after every example. One that dies (a segfault) or misses its deadline (`timeout_s`
  per example; it is killed) is replaced by a fresh process that goes on from the next index; the
  example in flight is logged and recorded as rejected ("crash" or "timeout"). The run never dies
  because of one render. (A part that lost a worker holds audio rendered by two processes; a crash is
  deterministic, so a rerun reproduces it, but a timeout depends on the machine's load.)

Rejections (store.REJECTION_REASONS): "nonfinite" (NaN/inf in the render), "clipped" (peak of the stored
audio above full scale 1.0), "silent" (RMS below `silence_db`), "error" (vita refused the preset or
rendering raised), "timeout", "crash". Counts per reason are printed and stored in the file.

`--shard i/N` gives shard i a contiguous range of parts; `merge_datasets` of shards 0..N-1 in order
equals the single-machine file.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time

from synthmatch.datagen.generate.config import CLIP_PEAK, GenerateConfig, GenerateError, GenerateReport
from synthmatch.datagen.generate.parts import (
    _check_parts_dir,
    _complete_file,
    _fingerprint,
    _part_path,
    _schema,
    _why_not,
    generation_config,
    load_community,
    parts_dir_for,
    shard_range,
)
from synthmatch.datagen.generate.workers import _lock, _Run, _sigterm_as_interrupt
from synthmatch.datagen.sample import PresetSampler
from synthmatch.datagen.store import (
    Dataset,
    merge_datasets,
)
from synthmatch.errors import ConfigError
from synthmatch.synth import require_vita

log = logging.getLogger("synthmatch.datagen.generate")

__all__ = [
    "GenerateConfig",
    "GenerateReport",
    "GenerateError",
    "generate",
    "generation_config",
    "load_community",
    "shard_range",
    "parts_dir_for",
    "CLIP_PEAK",
]


def generate(cfg: GenerateConfig) -> GenerateReport:
    """Render a dataset (or one shard of it) into `cfg.output`; resumable, see the module docstring.

    Returns:
        A GenerateReport (counts, rejections per reason, timings, file size).

    Raises:
        GenerateError: OUTPUT exists and was made by a different command, the parts folder holds parts
            of a different command, another run holds the lock, or workers cannot start.
        ConfigError: bad settings or community presets.
    """
    t0 = time.monotonic()
    require_vita()
    community = load_community(cfg.community_dirs, cfg.include_test_presets) if cfg.community_dirs else []
    sampler = PresetSampler(cfg.tier, cfg.seed, community, cfg.community_share)
    config = generation_config(cfg, sampler)
    fingerprint = _fingerprint(config)
    parts = shard_range(cfg.n, cfg.part_size, cfg.shard)
    if not parts:
        raise ConfigError(
            f"--shard {cfg.shard[0]}/{cfg.shard[1]} is empty: -n {cfg.n} makes only "
            f"{math.ceil(cfg.n / cfg.part_size)} parts of {cfg.part_size}; use fewer shards or a smaller --part-size"
        )
    start, stop = parts[0][0], parts[-1][1]
    report = GenerateReport(cfg.output, start, stop, parts_total=len(parts))
    parts_dir = parts_dir_for(cfg.output)

    if cfg.output.exists():
        done = _complete_file(cfg.output, fingerprint, start, stop)
        if done is not None:
            report.accepted, report.rejections = done[0], done[1]
            report.already_complete = True
            report.parts_reused = len(parts)
            report.file_bytes = cfg.output.stat().st_size
            if parts_dir.exists():
                shutil.rmtree(parts_dir, ignore_errors=True)
            log.info("%s is already complete for this command; nothing to do", cfg.output)
            return report
        if not cfg.overwrite:
            raise GenerateError(
                f"{cfg.output} exists and is not this command's dataset{_why_not(cfg.output, config, start, stop)}; "
                "choose another -o, or add --overwrite to replace it"
            )

    schema = _schema(cfg, sampler)
    attrs = {"generate_fingerprint": fingerprint, "generate_config": json.dumps(config, sort_keys=True)}
    with _lock(parts_dir, cfg.output), _sigterm_as_interrupt():
        _check_parts_dir(parts_dir, config, fingerprint, cfg)
        todo, done_before = [], 0
        for a, b in parts:
            found = _complete_file(_part_path(parts_dir, a, b), fingerprint, a, b)
            if found is None:
                todo.append((a, b))
            else:
                report.parts_reused += 1
                done_before += b - a
        if report.parts_reused:
            log.info(
                "resuming: %d of %d parts already done in %s", report.parts_reused, len(parts), parts_dir
            )
        if todo and len(todo) < cfg.n_workers:
            log.info(
                "%d part(s) left to render: %d of %d workers will be used (--part-size sets the part size)",
                len(todo),
                len(todo),
                cfg.n_workers,
            )
        run = _Run(cfg, sampler, schema, parts_dir, attrs)
        try:
            run.run(todo, stop - start, done_before)
        except KeyboardInterrupt:
            kept = len(parts) - len(todo) + run.parts_written
            log.warning(
                "interrupted: %d of %d parts are complete in %s; rerun the same command to resume",
                kept,
                len(parts),
                parts_dir,
            )
            raise
        report.rendered = run.rendered
        files = [_part_path(parts_dir, a, b) for a, b in parts]
        merge_datasets(cfg.output, files)
    shutil.rmtree(parts_dir, ignore_errors=True)
    report.seconds = time.monotonic() - t0
    with Dataset(cfg.output) as ds:
        report.accepted = len(ds)
        report.rejections = {k: v for k, v in ds.rejections().items()}
    report.file_bytes = cfg.output.stat().st_size
    return report
