"""Rendering presets to audio with vita: a thread pool with one long-lived Synth per thread.

vita releases the GIL while it renders, so threads that each own a Synth render in parallel
(1.86-1.89x on 2 cores, VITA.md 1.3). Building a Synth costs 63 ms and holds the GIL, so each thread
builds one once and reuses it.

Applying a preset to a Synth has two paths:
- a full `load_json` (10-100 ms) when the Synth holds different structured data (wavetables, LFO shapes,
  sample), a different modulation routing, or a different oversampling factor;
- otherwise `set()` on every control (0.07 ms in all), which is what an optimiser moving numeric
  controls needs.

A Python exception while rendering one item is returned as that item's error and the pool stays usable.
A segfault cannot be caught in a thread; the safety rules in `presets` (clamping, validated modulation
names) remove the known causes, and `datagen` renders in worker processes that are replaced on a crash.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthmatch.errors import SynthmatchError
from synthmatch.synth import _vita
from synthmatch.synth.params import MOD_SLOT_FIELDS, param_space
from synthmatch.synth.presets import Preset, PresetError

log = logging.getLogger(__name__)

__all__ = ["Renderer", "RenderResult", "RenderError", "DEFAULT_VELOCITY"]

DEFAULT_VELOCITY = 1.0


class RenderError(SynthmatchError, RuntimeError):
    """A preset that could not be rendered (vita refused it, or it raised)."""


@dataclass
class RenderResult:
    """One item of a batch: the audio, or the error that stopped it."""

    audio: np.ndarray | None  # (N,) mono or (2, N) stereo, float32
    error: str | None
    seconds: float
    value: Any = None  # what render_batch's `postprocess` returned for this item (computed in its thread)

    @property
    def ok(self) -> bool:
        return self.error is None


class _SynthSlot:
    """A thread's own Synth and what was last loaded into it."""

    def __init__(self) -> None:
        self.synth = _vita.new_synth()
        self.controls = self.synth.get_controls()
        self.sample_rate: float | None = None
        self.structure_key: str | None = None
        self.renders = 0

    def apply(self, preset: Preset) -> None:
        key = preset.structure_key
        if key != self.structure_key:
            self.structure_key = None
            preset.apply_to(self.synth)  # raises PresetError if vita refuses it
            self.structure_key = key
            return
        ps = param_space()
        controls = self.controls
        for c in ps.plain_controls:
            controls[c.name].set(c.clamp(preset.values.get(c.name, c.default)))
        # Same routing as loaded, so slot i holds the i-th connection; empty slots keep defaults.
        for i, m in enumerate(preset.modulations, start=1):
            for fld, value in zip(MOD_SLOT_FIELDS, m.slot_values()):
                name = f"modulation_{i}_{fld}"
                controls[name].set(ps[name].clamp(value))

    def render(
        self,
        preset: Preset,
        midi_note: int,
        velocity: float,
        note_duration_s: float,
        duration_s: float,
        sample_rate: float,
        stereo: bool,
        settle_s: float = 0.0,
    ) -> np.ndarray:
        if self.sample_rate != sample_rate:
            self.synth.set_sample_rate(float(sample_rate))
            self.sample_rate = sample_rate
        self.apply(preset)
        if settle_s > 0:
            # Vital glides controls from their previous values; a discarded render lets them arrive.
            self.synth.render(int(midi_note), float(velocity), 0.0, float(settle_s))
        audio = self.synth.render(int(midi_note), float(velocity), float(note_duration_s), float(duration_s))
        self.renders += 1
        audio = np.asarray(audio, dtype=np.float32)  # (2, N)
        if stereo:
            return audio
        return audio.mean(axis=0)


class Renderer:
    """Renders presets in parallel, one vita Synth per thread.

    Args:
        sample_rate: render sample rate in Hz.
        n_threads: worker threads (default: every core).
        velocity: MIDI velocity in [0, 1] for every note (default 1.0: full velocity).

    Use as a context manager, or call `close()` when done.
    """

    def __init__(
        self, sample_rate: int = 44100, n_threads: int | None = None, velocity: float = DEFAULT_VELOCITY
    ):
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if not 0.0 <= velocity <= 1.0:
            raise ValueError(f"velocity must be in [0, 1], got {velocity}")
        _vita.import_vita()  # fail here, clearly, if vita is missing
        self.sample_rate = int(sample_rate)
        self.velocity = float(velocity)
        self.n_threads = max(1, int(n_threads or os.cpu_count() or 1))
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=self.n_threads, thread_name_prefix="vita")
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        if not self._closed:
            self._pool.shutdown(wait=True)
            self._closed = True

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self._pool.shutdown(wait=False)
        except Exception:
            pass

    # -- rendering ------------------------------------------------------------------------------
    def _slot(self) -> _SynthSlot:
        slot = getattr(self._local, "slot", None)
        if slot is None:
            slot = _SynthSlot()
            self._local.slot = slot
        return slot

    def _render_one(
        self,
        preset: Preset,
        midi_note: int,
        note_duration_s: float,
        duration_s: float,
        stereo: bool,
        settle_s: float = 0.0,
        postprocess: Callable[[np.ndarray], Any] | None = None,
    ) -> RenderResult:
        t0 = time.perf_counter()
        try:
            audio = self._slot().render(
                preset,
                midi_note,
                self.velocity,
                note_duration_s,
                duration_s,
                self.sample_rate,
                stereo,
                settle_s,
            )
        except (PresetError, RuntimeError, ValueError, MemoryError, TypeError) as exc:
            return RenderResult(None, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0)
        value = postprocess(audio) if postprocess is not None else None
        return RenderResult(audio, None, time.perf_counter() - t0, value)

    def render(
        self,
        preset: Preset,
        midi_note: int = 60,
        note_duration_s: float = 1.5,
        duration_s: float = 2.0,
        stereo: bool = False,
    ) -> np.ndarray:
        """Render one note; raises RenderError on failure.

        Returns:
            float32 audio: (N,) mono (the mean of both channels) or (2, N) stereo.
        """
        result = self.render_batch([preset], midi_note, note_duration_s, duration_s, stereo)[0]
        if not result.ok:
            raise RenderError(f"could not render preset {preset.name!r}: {result.error}")
        return result.audio

    def render_batch(
        self,
        presets: Sequence[Preset],
        midi_notes: int | Iterable[int] = 60,
        note_duration_s: float = 1.5,
        duration_s: float = 2.0,
        stereo: bool = False,
        *,
        settle_s: float = 0.0,
        postprocess: Callable[[np.ndarray], Any] | None = None,
    ) -> list[RenderResult]:
        """Render many presets in parallel, in order. Failures come back per item.

        Args:
            settle_s: seconds rendered and discarded after applying each preset, so Vital's smoothed
                controls reach their new values before the kept render (refinement uses this to make
                repeated renders of one candidate agree; 0 renders at once).
            postprocess: applied to each item's audio in its worker thread (e.g. a loss against a
                target); the result is `RenderResult.value`.
        """
        if self._closed:
            raise RuntimeError("Renderer is closed")
        _check_durations(note_duration_s, duration_s)
        if settle_s < 0:
            raise ValueError(f"settle_s must be >= 0, got {settle_s}")
        presets = list(presets)
        notes = [int(midi_notes)] * len(presets) if np.isscalar(midi_notes) else [int(n) for n in midi_notes]
        if len(notes) != len(presets):
            raise ValueError(f"{len(presets)} presets but {len(notes)} MIDI notes")
        futures = [
            self._pool.submit(
                self._render_one, p, n, note_duration_s, duration_s, stereo, settle_s, postprocess
            )
            for p, n in zip(presets, notes)
        ]
        return [f.result() for f in futures]


def _check_durations(note_duration_s: float, duration_s: float) -> None:
    if not duration_s > 0:
        raise ValueError(f"render duration must be positive, got {duration_s} s")
    if not note_duration_s >= 0:
        raise ValueError(f"note duration must be >= 0, got {note_duration_s} s")
    if duration_s > 60:
        raise ValueError(f"render duration {duration_s} s is longer than the 60 s limit")
