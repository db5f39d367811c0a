"""The worker processes: each renders one part alone, in order, from a fresh start; the supervisor that
replaces a worker that crashes or hangs and writes each part once it is complete."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthmatch.datagen.generate.config import (
    CLIP_PEAK,
    MAX_STARTUP_FAILURES,
    STARTUP_TIMEOUT_S,
    GenerateConfig,
    GenerateError,
)
from synthmatch.datagen.generate.parts import _part_path
from synthmatch.datagen.sample import PresetSampler, example_midi_note
from synthmatch.datagen.store import (
    DatasetSchema,
    DatasetWriter,
    ExampleRow,
    audio_to_storage,
)

log = logging.getLogger("synthmatch.datagen.generate")


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
        # room for the part before HDF5 starts writing it: a write that fails half-way leaves HDF5 objects
        # that crash the process when freed (the uncompressed size: gzip only shrinks it)
        need = len(part.rows) * (2 * int(np.prod(self.schema.audio_shape)) + 4096) + 2**20
        free = shutil.disk_usage(self.parts_dir).free
        if free < need:
            raise GenerateError(
                f"cannot write {path.name} into {self.parts_dir}: {free / 2**20:.1f} MiB free, about "
                f"{need / 2**20:.1f} MiB needed; the parts written so far are kept, and the same command "
                "resumes once there is room"
            )
        try:
            with DatasetWriter(path, self.schema, mode="w", atomic=True) as w:
                w.append([part.rows[i] for i in sorted(part.rows)])
                w.reject(sorted(part.rejected.items()))
                w.set_attrs(**self.attrs, index_start=part.start, index_stop=part.stop)
        except OSError as exc:  # a full disk, a read-only folder: nothing of the part is kept
            # h5py's messages run to several lines; the errno says it in a few words
            reason = os.strerror(exc.errno) if exc.errno else str(exc).split("(")[0].strip()
            raise GenerateError(
                f"cannot write {path.name} into {self.parts_dir}: {reason}; the parts written so far are kept, "
                "and the same command resumes once the cause is fixed"
            ) from None
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
