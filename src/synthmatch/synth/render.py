"""Rendering presets to audio with vita: a thread pool with one long-lived Synth per thread.

vita releases the GIL while it renders, so threads that each own a Synth render in parallel
(docs/VITA.md, "How `render()` works"; speed-ups measured in docs/BENCHMARKS.md, "Rendering"). Building
a Synth holds the GIL and is slow next to a render, so each thread builds one once and reuses it.

Applying a preset to a Synth has two paths:
- a full `load_json` (10-100 ms) when the Synth holds different structured data (wavetables, LFO shapes,
  sample), a different modulation routing, or a different oversampling factor;
- otherwise `set()` on every control (0.07 ms in all), which is what an optimiser moving numeric
  controls needs.

A clean Synth for every render. A reused vita Synth carries the previous render into the next one
(docs/VITA.md, "State carried from one render to the next"): `render()` resets only the effect chain, so the previous
note's voice is still sounding (it is released when the next render starts, with the new preset's release
time: a pad's tail leaks a second into the next note), and Vital glides its smoothed controls from the
previous preset's values for about 0.25 s. Every render here is therefore preceded by a *flush*: the amp
envelope's release is set to 0 and its delay to the maximum, a `FLUSH_S` render of a one-block note is
played and discarded (the old voice dies at once, the flush's own note is never heard and dies too, the
glides arrive), and both are restored (restoring them leaves no trace: measured bit-identical). What the flush cannot reset (the phase of the reverb's
internal chorus, its pre-delay memory, the state of the voice filters vita re-uses round robin) is
measured in benchmarks/refine.py and docs/BENCHMARKS.md; `fresh=True` renders on a Synth built for that
one render instead, which has no history at all (bit-exact with random phase off) and is what every
sound a user hears is made with: the written WAV, the final check of a refinement, evaluation's scoring
renders, `synthmatch render`.

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
from typing import Any, cast

import numpy as np

from synthmatch.defaults import DEFAULT_SAMPLE_RATE
from synthmatch.errors import SynthmatchError
from synthmatch.malloc import keep_freed_memory
from synthmatch.synth import _vita
from synthmatch.synth.params import MOD_SLOT_FIELDS, param_space
from synthmatch.synth.presets import Preset, PresetError

log = logging.getLogger(__name__)

__all__ = ["Renderer", "RenderResult", "RenderError", "DEFAULT_VELOCITY", "FLUSH_S"]

DEFAULT_VELOCITY = 1.0
# Seconds of the discarded flush render before every kept one (see the module doc): long enough for
# Vital's control glides to arrive (0.1 s leaves median differences of 0.002-0.01, 0.3 s none), about
# 6% of a 4 s render.
FLUSH_S = 0.3
_FLUSH_BLOCK = 64  # vita renders in 64-sample blocks: the flush note is released after the first one
# What the flush sets on the amp envelope: no release (old voices die at once), the longest delay (the
# flush note is never heard)
_FLUSH_SETTINGS = {"env_1_release": 0.0, "env_1_delay": 1.4142135381698608}


class RenderError(SynthmatchError, RuntimeError):
    """A preset that could not be rendered (vita refused it, or it raised)."""


class RenderSettingsError(SynthmatchError, ValueError):
    """A render setting outside what vita renders safely (one line, naming the flag)."""


# vita renders 8 to 192 kHz; below about 100 Hz `render` spins forever (docs/VITA.md).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192_000
MAX_DURATION_S = 60.0


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

    def flush(self, preset: Preset, midi_note: int, velocity: float, flush_s: float) -> None:
        """Silence every voice and let the glides arrive: a discarded, silent note with the release at 0.

        The amp envelope's delay is at its maximum (4 s) meanwhile, so the flush note itself makes no
        sound: a click of it would seed effects that `render()` does not fully reset (a self-oscillating
        delay or reverb), and the next render would start from it.
        """
        assert self.sample_rate is not None, "flush() needs the sample rate set by render()"
        ps = param_space()
        for name, value in _FLUSH_SETTINGS.items():
            self.controls[name].set(value)
        try:
            self.synth.render(
                int(midi_note), float(velocity), _FLUSH_BLOCK / self.sample_rate, float(flush_s)
            )
        finally:
            for name in _FLUSH_SETTINGS:
                self.controls[name].set(ps[name].clamp(preset.values.get(name, ps[name].default)))

    def render(
        self,
        preset: Preset,
        midi_note: int,
        velocity: float,
        note_duration_s: float,
        duration_s: float,
        sample_rate: float,
        stereo: bool,
        flush_s: float = FLUSH_S,
    ) -> np.ndarray:
        if self.sample_rate != sample_rate:
            self.synth.set_sample_rate(float(sample_rate))
            self.sample_rate = sample_rate
        self.apply(preset)
        if flush_s > 0:
            self.flush(preset, midi_note, velocity, flush_s)
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
        self,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        n_threads: int | None = None,
        velocity: float = DEFAULT_VELOCITY,
    ):
        if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
            raise RenderSettingsError(
                f"--sample-rate must be {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz, got {sample_rate}"
            )
        if not 0.0 <= velocity <= 1.0:
            raise RenderSettingsError(f"velocity must be in [0, 1], got {velocity}")
        _vita.import_vita()  # fail here, clearly, if vita is missing
        keep_freed_memory()  # renders and their spectra reuse freed megabytes instead of new pages
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
        flush_s: float = FLUSH_S,
        postprocess: Callable[[np.ndarray], Any] | None = None,
        fresh: bool = False,
    ) -> RenderResult:
        t0 = time.perf_counter()
        try:
            slot = _SynthSlot() if fresh else self._slot()
            audio = slot.render(
                preset,
                midi_note,
                self.velocity,
                note_duration_s,
                duration_s,
                self.sample_rate,
                stereo,
                flush_s,
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
        *,
        fresh: bool = False,
    ) -> np.ndarray:
        """Render one note; raises RenderError on failure.

        Args:
            fresh: render on a Synth built for this render alone (see the module doc).
        Returns:
            float32 audio: (N,) mono (the mean of both channels) or (2, N) stereo.
        """
        result = self.render_batch([preset], midi_note, note_duration_s, duration_s, stereo, fresh=fresh)[0]
        if not result.ok:
            raise RenderError(f"could not render preset {preset.name!r}: {result.error}")
        assert result.audio is not None  # ok (no error) always comes with audio
        return result.audio

    def render_batch(
        self,
        presets: Sequence[Preset],
        midi_notes: int | Iterable[int] = 60,
        note_duration_s: float = 1.5,
        duration_s: float = 2.0,
        stereo: bool = False,
        *,
        postprocess: Callable[[np.ndarray], Any] | None = None,
        fresh: bool = False,
        flush_s: float = FLUSH_S,
    ) -> list[RenderResult]:
        """Render many presets in parallel, in order. Failures come back per item.

        Args:
            postprocess: applied to each item's audio in its worker thread (e.g. a loss against a
                target); the result is `RenderResult.value`.
            fresh: render each item on a Synth built for it alone (63 ms more per item, holding the GIL
                while it is built): no trace of any earlier render. For the sounds a user hears.
            flush_s: seconds of the flush render before each kept one (0 turns it off: only for
                measuring what it removes; see the module doc).
        """
        if self._closed:
            raise RuntimeError("Renderer is closed")
        _check_durations(note_duration_s, duration_s)
        if not 0 <= flush_s <= 5:
            raise ValueError(f"flush_s must be in [0, 5] seconds, got {flush_s}")
        presets = list(presets)
        if np.isscalar(midi_notes):  # also numpy integer scalars, which are not `int`
            notes = [int(cast(int, midi_notes))] * len(presets)
        else:
            notes = [int(n) for n in cast(Iterable[int], midi_notes)]
        if len(notes) != len(presets):
            raise ValueError(f"{len(presets)} presets but {len(notes)} MIDI notes")
        bad = [n for n in notes if not 0 <= n <= 127]
        if bad:
            raise RenderSettingsError(f"--midi-note must be 0 to 127, got {bad[0]}")
        futures = [
            self._pool.submit(
                self._render_one, p, n, note_duration_s, duration_s, stereo, flush_s, postprocess, fresh
            )
            for p, n in zip(presets, notes)
        ]
        try:
            return [f.result() for f in futures]
        except BaseException:  # Ctrl-C while waiting: the renders not started yet are dropped
            for f in futures:
                f.cancel()
            raise


def _check_durations(note_duration_s: float, duration_s: float) -> None:
    if not 0 < duration_s <= MAX_DURATION_S:
        raise RenderSettingsError(
            f"--duration must be above 0 and at most {MAX_DURATION_S:g} s, got {duration_s}"
        )
    if not 0 <= note_duration_s <= MAX_DURATION_S:
        raise RenderSettingsError(f"--note-duration must be 0 to {MAX_DURATION_S:g} s, got {note_duration_s}")
