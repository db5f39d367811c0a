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

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import re
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synthmatch.atomic import atomic_write_text
from synthmatch.defaults import DEFAULT_SAMPLE_RATE
from synthmatch.errors import ConfigError, SynthmatchError
from synthmatch.synth import require_vita, vita_version
from synthmatch.synth.params import TIERS
from synthmatch.synth.presets import Preset, PresetError
from synthmatch.synth.render import DEFAULT_VELOCITY, FLUSH_S

from .community import community_files
from .sample import LHS_BLOCK_SIZE, PresetSampler, example_midi_note, sampling_rules_hash
from .store import (
    SCHEMA_VERSION,
    Dataset,
    DatasetError,
    DatasetSchema,
    DatasetWriter,
    ExampleRow,
    audio_to_storage,
    merge_datasets,
)

log = logging.getLogger(__name__)

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

# Bump when generation changes the rows in a way the configuration does not show.
# 2: every render is preceded by the renderer's flush (synth.render: no trace of the previous example).
GENERATOR_VERSION = 2
# Peak of the stored audio above which an example is rejected as clipped (int16 would clip it).
CLIP_PEAK = 1.0
# A worker gets this long to start (imports, parameter space, Synth) before it is replaced.
STARTUP_TIMEOUT_S = 120.0
# Consecutive start-up failures of one part before the run stops (something is broken, not a preset).
MAX_STARTUP_FAILURES = 3
_PART_RE = re.compile(r"^part-(\d{10})-(\d{10})\.h5$")


class GenerateError(SynthmatchError, RuntimeError):
    """A generation that cannot start or go on (output in the way, resume with other flags, ...)."""


@dataclass(frozen=True)
class GenerateConfig:
    """Settings of `synthmatch generate`.

    Args:
        output: the dataset file to write (.h5). Parts live in OUTPUT.parts/ until the end.
        n: number of generator indices of the whole dataset (all shards); rejected ones leave no row.
        tier: parameter tier 1, 2 or 3.
        workers: worker processes (default: every core). Parallelism is per part.
        seed: dataset seed.
        sample_rate: render sample rate in Hz.
        duration_s: seconds rendered per example.
        note_duration_s: seconds the key is held.
        midi_notes: example i is rendered at one of these (a pure function of seed, i, tier).
        community_dirs: folders/files of .vital presets to breed from (test-only presets left out).
        community_share: fraction of examples bred from the community presets.
        include_test_presets: also breed from the presets reserved for evaluation.
        shard: (i, N): render shard i of N, a contiguous range of parts.
        audio_dtype: stored audio, "int16" or "float16".
        stereo: store stereo audio (default mono, the mean of both channels).
        silence_db: examples with a lower RMS (dBFS) are rejected as silent.
        timeout_s: seconds one example may take before its worker is killed and replaced.
        part_size: examples per part (resume granularity, and per-process unit of work).
        overwrite: replace an existing OUTPUT made by a different command.
        progress: show a progress bar.
    """

    output: Path
    n: int
    tier: int = 3
    workers: int | None = None
    seed: int = 0
    sample_rate: int = DEFAULT_SAMPLE_RATE
    duration_s: float = 2.0
    note_duration_s: float = 1.5
    midi_notes: tuple[int, ...] = (48, 60, 72)
    community_dirs: tuple[Path, ...] = ()
    community_share: float = 0.3
    include_test_presets: bool = False
    shard: tuple[int, int] = (0, 1)
    audio_dtype: str = "int16"
    stereo: bool = False
    silence_db: float = -60.0
    timeout_s: float = 30.0
    part_size: int = LHS_BLOCK_SIZE
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "output", Path(self.output))
        object.__setattr__(self, "midi_notes", tuple(int(x) for x in self.midi_notes))
        object.__setattr__(self, "community_dirs", tuple(Path(p) for p in self.community_dirs))
        object.__setattr__(self, "shard", tuple(int(x) for x in self.shard))
        if self.output.suffix not in (".h5", ".hdf5"):
            raise ConfigError(f"output {self.output} should be an .h5 file, e.g. -o data/tier3.h5")
        if self.output.is_dir():
            raise ConfigError(
                f"output {self.output} is a directory; give a file name such as {self.output}/data.h5"
            )
        if self.n < 1:
            raise ConfigError(f"-n must be at least 1, got {self.n}")
        if self.tier not in TIERS:
            raise ConfigError(f"--tier must be 1, 2 or 3, got {self.tier}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if self.seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {self.seed}")
        if not 8000 <= self.sample_rate <= 192000:
            raise ConfigError(f"--sample-rate must be in 8000..192000 Hz, got {self.sample_rate}")
        if not 0 < self.duration_s <= 60:
            raise ConfigError(f"--duration must be in (0, 60] seconds, got {self.duration_s}")
        if not 0 <= self.note_duration_s <= self.duration_s:
            raise ConfigError(
                f"--note-duration must be in [0, --duration={self.duration_s}] seconds, got {self.note_duration_s}"
            )
        if not self.midi_notes or any(not 0 <= m <= 127 for m in self.midi_notes):
            raise ConfigError(
                f"--midi-notes must be MIDI notes in 0..127, like 48,60,72; got {self.midi_notes}"
            )
        if len(set(self.midi_notes)) != len(self.midi_notes):
            raise ConfigError(f"--midi-notes has duplicates: {self.midi_notes}")
        if not 0.0 <= self.community_share <= 1.0:
            raise ConfigError(f"--community-share must be in [0, 1], got {self.community_share}")
        i, k = self.shard if len(self.shard) == 2 else (-1, 0)
        if not (k >= 1 and 0 <= i < k):
            raise ConfigError(f"--shard must be i/N with 0 <= i < N, like 0/4; got {self.shard}")
        if self.audio_dtype not in ("int16", "float16"):
            raise ConfigError(f"--audio-dtype must be int16 or float16, got {self.audio_dtype!r}")
        if not -200 < self.silence_db < 0:
            raise ConfigError(
                f"--silence-db must be a level in dBFS between -200 and 0, got {self.silence_db}"
            )
        if not self.timeout_s > 0:
            raise ConfigError(f"--timeout must be positive seconds, got {self.timeout_s}")
        if self.part_size < 1:
            raise ConfigError(f"--part-size must be at least 1, got {self.part_size}")

    @property
    def n_workers(self) -> int:
        return int(self.workers or os.cpu_count() or 1)


@dataclass
class GenerateReport:
    """What a `generate` call did."""

    output: Path
    index_start: int
    index_stop: int
    accepted: int = 0
    rejections: dict[str, int] = field(default_factory=dict)
    already_complete: bool = False
    parts_total: int = 0
    parts_reused: int = 0
    rendered: int = 0  # examples attempted by this call (not counting reused parts)
    seconds: float = 0.0
    file_bytes: int = 0

    @property
    def rejected(self) -> int:
        return sum(self.rejections.values())

    @property
    def attempted(self) -> int:
        return self.accepted + self.rejected

    @property
    def renders_per_s(self) -> float:
        return self.rendered / self.seconds if self.seconds > 0 else 0.0

    @property
    def bytes_per_example(self) -> float:
        return self.file_bytes / self.accepted if self.accepted else 0.0

    def to_dict(self) -> dict:
        return {
            "output": str(self.output),
            "index_range": [self.index_start, self.index_stop],
            "accepted": self.accepted,
            "rejected": self.rejected,
            "rejections": dict(self.rejections),
            "already_complete": self.already_complete,
            "parts_total": self.parts_total,
            "parts_reused": self.parts_reused,
            "rendered_this_run": self.rendered,
            "seconds": round(self.seconds, 2),
            "renders_per_s": round(self.renders_per_s, 2),
            "file_bytes": self.file_bytes,
            "bytes_per_example": round(self.bytes_per_example),
        }

    def format(self) -> str:
        if self.already_complete:
            head = f"{self.output} is already complete for this command"
        else:
            head = f"wrote {self.output}"
        lines = [
            f"{head}: {self.accepted} examples from generator indices "
            f"[{self.index_start}, {self.index_stop}) ({self.rejected} rejected, "
            f"{self.rejected / max(self.attempted, 1):.1%})",
        ]
        if self.rejected:
            lines.append("rejected: " + ", ".join(f"{k} {v}" for k, v in self.rejections.items() if v))
        if not self.already_complete:
            lines.append(
                f"rendered {self.rendered} in {self.seconds:.1f} s ({self.renders_per_s:.1f}/s); "
                f"{self.parts_reused} of {self.parts_total} parts reused from an earlier run"
            )
        if self.accepted:
            lines.append(f"{self.file_bytes / 1e6:.1f} MB, {self.bytes_per_example / 1e3:.1f} KB per example")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------------
# the worker process
@dataclass
class _Job:
    """What a worker process needs to render examples [first, stop) of part [start, stop)."""

    sampler: PresetSampler
    schema: DatasetSchema
    silence_db: float
    start: int
    stop: int
    first: int


def _render_example(sampler: PresetSampler, renderer, job: _Job, index: int) -> tuple:
    s = job.schema
    t0 = time.perf_counter()
    try:
        ex = sampler.sample(index)
        note = example_midi_note(sampler.seed, index, sampler.tier, s.midi_notes)
    except Exception as exc:  # a sampling bug: record it and go on
        return ("reject", index, "error", f"sampling failed: {type(exc).__name__}: {exc}", 0.0)
    res = renderer.render_batch([ex.preset], note, s.note_duration_s, s.duration_s, stereo=s.channels == 2)[0]
    seconds = time.perf_counter() - t0
    if not res.ok:
        return ("reject", index, "error", res.error, seconds)
    audio = res.audio
    if not np.all(np.isfinite(audio)):
        return ("reject", index, "nonfinite", "", seconds)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > CLIP_PEAK:
        return ("reject", index, "clipped", f"peak {peak:.3f}", seconds)
    rms_db = 20 * math.log10(math.sqrt(float(np.mean(np.square(audio, dtype=np.float64)))) + 1e-12)
    if rms_db < job.silence_db:
        return ("reject", index, "silent", f"{rms_db:.1f} dBFS", seconds)
    row = ExampleRow.from_preset(ex.preset, audio_to_storage(audio, s.audio_dtype), s, note, ex.source, index)
    if row.data is not None and row.data.key == sampler.base.data.key:
        row.data = None  # this worker's base data, sent once with "ready" rather than with every row
    return ("row", index, row, seconds)


def _worker_main(conn: mpc.Connection, job: _Job) -> None:
    """Render examples [job.first, job.stop) in order, reporting after each one."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    from synthmatch.synth.render import Renderer

    renderer = Renderer(sample_rate=job.schema.sample_rate, n_threads=1, velocity=job.schema.velocity)
    try:
        # vita's init preset holds a random noise sample that depends on the process's history of Synths,
        # so the parent stores the base data this worker really rendered with.
        conn.send(("ready", os.getpid(), job.sampler.base.data))
        for i in range(job.first, job.stop):
            conn.send(_render_example(job.sampler, renderer, job, i))
        conn.send(("done",))
    except (BrokenPipeError, EOFError, ConnectionResetError):
        pass  # the parent is gone
    finally:
        renderer.close()
        conn.close()


# ---------------------------------------------------------------------------------------------------
# the parent: scheduling, crash handling, parts
class _Part:
    def __init__(self, start: int, stop: int):
        self.start, self.stop = start, stop
        self.rows: dict[int, ExampleRow] = {}
        self.rejected: dict[int, str] = {}
        self.next_index = start  # the next example no worker has reported yet
        self.startup_failures = 0

    @property
    def complete(self) -> bool:
        return self.next_index >= self.stop


@contextlib.contextmanager
def _sigint_held():
    """Start workers with SIGINT blocked: the child inherits the blocked mask across exec, so a Ctrl-C sent
    to the terminal's process group reaches only this process, which stops the run and its workers in
    order (a worker caught while starting up would otherwise print a traceback of its own; the worker
    then ignores SIGINT for good). In this process a SIGINT that arrives meanwhile waits and is delivered
    when the mask is restored. Ignoring it instead (SIG_IGN, as before) dropped a Ctrl-C that arrived while
    a worker was starting, which is right after a part is written: the run then went on to the end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _Worker:
    def __init__(self, ctx, job: _Job, part: _Part):
        recv, send = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(
            target=_worker_main, args=(send, job), name=f"synthmatch-generate-{job.start}"
        )
        self.proc.daemon = True
        with _sigint_held():
            self.proc.start()
        send.close()
        self.conn = recv
        self.part = part
        self.ready = False
        self.base_data = None
        self.finished = False
        self.last_report = time.monotonic()
        self.eof = False

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        with contextlib.suppress(OSError):
            self.conn.close()


class _Run:
    """The parent's loop: W worker slots, parts in flight, progress, parts written on completion."""

    def __init__(
        self, cfg: GenerateConfig, sampler: PresetSampler, schema: DatasetSchema, parts_dir: Path, attrs: dict
    ):
        self.cfg, self.sampler, self.schema = cfg, sampler, schema
        self.parts_dir, self.attrs = parts_dir, attrs
        self.ctx = mp.get_context("spawn")
        self.workers: list[_Worker] = []
        self.accepted = 0
        self.rejections: Counter = Counter()
        self.rendered = 0
        self.parts_written = 0
        self.t0 = time.monotonic()
        self.bar = None

    # -- workers ------------------------------------------------------------------------------
    def _start(self, part: _Part) -> None:
        job = _Job(self.sampler, self.schema, self.cfg.silence_db, part.start, part.stop, part.next_index)
        w = _Worker(self.ctx, job, part)
        log.debug("worker pid %d started for examples [%d, %d)", w.proc.pid, part.next_index, part.stop)
        self.workers.append(w)

    def _handle(self, w: _Worker, msg: tuple) -> None:
        kind = msg[0]
        w.last_report = time.monotonic()
        if kind == "ready":
            w.ready = True
            w.base_data = msg[2]
            log.debug("worker pid %d ready for examples [%d, %d)", msg[1], w.part.next_index, w.part.stop)
            return
        if kind == "done":
            w.finished = True
            return
        index = msg[1]
        part = w.part
        if index != part.next_index:  # cannot happen: workers render in order
            raise GenerateError(f"worker reported example {index}, expected {part.next_index}")
        if kind == "row":
            row = msg[2]
            if row.data is None:
                row.data = w.base_data
            part.rows[index] = row
            self.accepted += 1
        else:
            reason, detail = msg[2], msg[3]
            part.rejected[index] = reason
            self.rejections[reason] += 1
            if reason == "error":
                log.warning("example %d rejected: %s", index, detail)
            else:
                log.debug("example %d rejected as %s %s", index, reason, detail)
        part.next_index = index + 1
        self._progress(1)

    def _drain(self, w: _Worker) -> None:
        while not w.eof:
            try:
                if not w.conn.poll():
                    return
                msg = w.conn.recv()
            except (EOFError, OSError):
                w.eof = True
                return
            self._handle(w, msg)

    def _lost(self, w: _Worker, reason: str, what: str) -> None:
        """A worker that died or was killed: record its in-flight example, replace it."""
        part = w.part
        self.workers.remove(w)
        if part.complete:
            return
        if w.ready:
            index = part.next_index
            log.warning(
                "example %d: worker pid %d %s; recorded as rejected (%s), a new worker goes on from %d",
                index,
                w.proc.pid,
                what,
                reason,
                index + 1,
            )
            part.rejected[index] = reason
            self.rejections[reason] += 1
            part.next_index = index + 1
            part.startup_failures = 0
            self._progress(1)
        else:
            part.startup_failures += 1
            log.warning(
                "worker pid %d %s while starting (examples [%d, %d))",
                w.proc.pid,
                what,
                part.next_index,
                part.stop,
            )
            if part.startup_failures >= MAX_STARTUP_FAILURES:
                raise GenerateError(
                    f"worker processes failed to start {part.startup_failures} times in a row (last: {what}); "
                    "see the messages above. Completed parts are kept: rerun the same command to resume"
                )
        if not part.complete:
            self._start(part)

    def _check(self, w: _Worker) -> None:
        if not w.proc.is_alive() or w.eof:
            self._drain(w)
            w.proc.join(5)
            if w.proc.exitcode is None:  # closed its pipe but did not exit
                w.kill()
            if w.finished or w.part.complete:
                self.workers.remove(w)
                with contextlib.suppress(OSError):
                    w.conn.close()
                return
            self._lost(w, "crash", _exit_text(w.proc.exitcode))
            return
        limit = self.cfg.timeout_s if w.ready else max(STARTUP_TIMEOUT_S, self.cfg.timeout_s)
        if time.monotonic() - w.last_report > limit:
            in_flight = w.part.next_index
            w.kill()
            self._drain(w)
            if w.part.next_index != in_flight:  # it reported just before the kill: nothing to blame
                self.workers.remove(w)
                if not w.part.complete:
                    self._start(w.part)
                return
            self._lost(w, "timeout", f"took more than {limit:g} s and was killed")

    # -- parts --------------------------------------------------------------------------------
    def _write_part(self, part: _Part) -> None:
        path = _part_path(self.parts_dir, part.start, part.stop)
        with DatasetWriter(path, self.schema, mode="w", atomic=True) as w:
            w.append([part.rows[i] for i in sorted(part.rows)])
            w.reject(sorted(part.rejected.items()))
            w.set_attrs(**self.attrs, index_start=part.start, index_stop=part.stop)
        self.parts_written += 1
        log.debug("wrote %s (%d rows, %d rejected)", path.name, len(part.rows), len(part.rejected))

    def _progress(self, k: int) -> None:
        self.rendered += k
        if self.bar is None:
            return
        self.bar.update(k)
        att = self.accepted + sum(self.rejections.values())
        rate = self.rendered / max(time.monotonic() - self.t0, 1e-9)
        self.bar.set_postfix_str(
            f"accepted {self.accepted}/{att}, rejected {sum(self.rejections.values()) / max(att, 1):.1%}, "
            f"{rate:.1f} renders/s",
            refresh=False,
        )

    # -- the loop -----------------------------------------------------------------------------
    def run(self, todo: list[tuple[int, int]], total: int, done_before: int) -> None:
        if self.cfg.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done_before, unit="ex", dynamic_ncols=True, smoothing=0.05)
        pending = [_Part(a, b) for a, b in todo]
        pending.reverse()
        active: list[_Part] = []
        try:
            while pending or active:
                while pending and len(self.workers) < self.cfg.n_workers:
                    part = pending.pop()
                    active.append(part)
                    self._start(part)
                waitables = [w.conn for w in self.workers if not w.eof] + [
                    w.proc.sentinel for w in self.workers
                ]
                ready = set(mpc.wait(waitables, timeout=0.5))
                for w in list(self.workers):
                    if w.conn in ready:
                        self._drain(w)
                for w in list(self.workers):
                    self._check(w)
                for part in [p for p in active if p.complete]:
                    if any(w.part is part for w in self.workers):
                        continue  # its worker has not exited yet
                    self._write_part(part)
                    active.remove(part)
        finally:
            for w in self.workers:
                w.kill()
            self.workers.clear()
            if self.bar is not None:
                self.bar.close()


def _exit_text(code: int | None) -> str:
    if code is None:
        return "stopped responding"
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


@contextlib.contextmanager
def _lock(parts_dir: Path, output: Path) -> Iterator[None]:
    parts_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(parts_dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GenerateError(
                f"another `synthmatch generate` is writing {output} (it holds {parts_dir}/lock)"
            ) from None
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a run like Ctrl-C (workers ended, parts kept)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


# ---------------------------------------------------------------------------------------------------
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
