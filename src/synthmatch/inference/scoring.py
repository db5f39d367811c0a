"""Scoring candidate presets against one target: the renders every matching step spends, counted.

A `Scorer` holds what the steps of a match share: the target and its spectra (computed once), the note
every candidate plays (the target's MIDI note, key-held time and whole length), the renderer, and the
count of evaluations spent so far, so a budget covers every render of a match (the start, pitch
alignment, the search, the final check, tuning and level), not only the search's.

The loss is `audio.distances.MultiScaleLogMel(target, loudness_normalize=True)`, the multi-scale
log-mel L1 that evaluation reports as `mel_l1`, computed in the render worker threads right after each
render. A candidate that failed to render, produced non-finite audio or is silent scores FAILED_LOSS: at
equal loudness silence scores deceptively well against a short decaying target (its quiet frames sit at
the log floor too), and a silent preset is never a match.

Two kinds of render:
- search renders (`fresh=False`): the renderer's long-lived Synths, flushed before each render
  (`synth.render`), with every random phase held at 0 by the caller: fast and repeatable;
- user renders (`fresh=True`): a Synth built for the render, the preset exactly as it is exported
  (random phase included): the sound the user gets, used by the final check, tuning and level.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from synthmatch.synth.presets import Preset

log = logging.getLogger(__name__)

__all__ = ["Scorer", "Scored", "FAILED_LOSS", "SILENT_RMS", "rms_db", "objective_threads", "shown_loss"]

# Loss given to a candidate that failed to render, produced non-finite audio or is silent.
FAILED_LOSS = 1e3


def shown_loss(loss: float | None) -> float | None:
    """A loss as outputs show it: None for `FAILED_LOSS` (a render that failed: the search's sentinel, no
    loss to show) and for anything not finite."""
    if loss is None or not math.isfinite(loss) or loss >= FAILED_LOSS:
        return None
    return float(loss)


# RMS below which a render counts as silent (-100 dBFS; Vital's silent renders sit near -240 dBFS).
SILENT_RMS = 1e-5


def rms_db(audio: np.ndarray) -> float:
    """RMS level of audio in dBFS (-240 for digital silence)."""
    a = np.asarray(audio, np.float64).reshape(-1)
    if a.size == 0:
        return -240.0
    return float(20 * math.log10(math.sqrt(float(np.mean(np.square(a)))) + 1e-12))


@dataclass
class Scored:
    """One scored render: its loss and, when asked for, its mono audio."""

    loss: float
    audio: np.ndarray | None = None
    error: str | None = None
    # the render's highest sample, of either channel for user renders (stereo): what clips in the user's
    # WAV, where the mono mix's peak is lower wherever the channels differ; None when it failed
    peak: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.loss < FAILED_LOSS


@contextlib.contextmanager
def objective_threads(render_threads: int) -> Iterator[None]:
    """Torch's intra-op threads limited to the cores the render threads leave free (at least 1).

    The objective runs in each render thread right after its render; with every core rendering, torch's
    own thread pool only competes with the renders (measured in benchmarks/refine.py, "objective").
    """
    import torch

    before = torch.get_num_threads()
    want = max(1, (os.cpu_count() or 1) - int(render_threads))
    if want >= before:
        yield
        return
    torch.set_num_threads(want)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Scorer:
    """Renders candidates of one target and scores them against it.

    Args:
        target: (N,) mono target audio at `sample_rate` (the whole target).
        sample_rate: its rate; the renderer's must match.
        midi_note: the note every candidate plays.
        note_duration_s: seconds the key is held.
        duration_s: seconds rendered (the target's length).
        renderer: a `synth.render.Renderer` at `sample_rate`.
    """

    def __init__(
        self,
        target: np.ndarray,
        sample_rate: int,
        midi_note: int,
        note_duration_s: float,
        duration_s: float,
        renderer,
    ):
        from synthmatch.audio.distances import MultiScaleLogMel

        if renderer.sample_rate != sample_rate:
            raise ValueError(
                f"renderer runs at {renderer.sample_rate} Hz but the target is at {sample_rate} Hz"
            )
        self.target = np.asarray(target, np.float32).reshape(-1)
        if self.target.size == 0 or not np.all(np.isfinite(self.target)):
            raise ValueError("scoring needs a finite, non-empty target")
        self.sample_rate = int(sample_rate)
        self.midi_note = int(midi_note)
        self.duration_s = float(duration_s)
        self.note_duration_s = float(min(note_duration_s, duration_s))
        self.renderer = renderer
        self.objective = MultiScaleLogMel(self.target, self.sample_rate, loudness_normalize=True)
        self.target_rms_db = rms_db(self.target)
        self.n_evals = 0

    def fork(self) -> Scorer:
        """A scorer of the same target (the same spectra, shared) that counts its own evaluations."""
        other = copy.copy(self)
        other.n_evals = 0
        return other

    def loss(self, audio: np.ndarray | None) -> float:
        """The objective of one render (FAILED_LOSS for failed, non-finite or silent audio)."""
        if audio is None or audio.size == 0 or not np.all(np.isfinite(audio)):
            return FAILED_LOSS
        if float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) < SILENT_RMS:
            return FAILED_LOSS
        return float(self.objective(audio))

    def evaluate(
        self, presets: Sequence[Preset], *, fresh: bool = False, keep_audio: bool = False
    ) -> list[Scored]:
        """Render and score each preset (in parallel, in order); every render counts as an evaluation."""
        presets = list(presets)
        if not presets:
            return []
        with objective_threads(self.renderer.n_threads):
            results = self.renderer.render_batch(
                presets,
                self.midi_note,
                self.note_duration_s,
                self.duration_s,
                stereo=fresh,  # a user render: both channels, for the peak the user's WAV has
                postprocess=self._score_render,
                fresh=fresh,
            )
        self.n_evals += len(presets)
        out = []
        for r in results:
            if not r.ok or r.value is None:
                log.debug("candidate failed to render: %s", r.error)
                out.append(Scored(FAILED_LOSS, None, r.error))
                continue
            loss, mono, peak = r.value
            out.append(Scored(loss, mono if keep_audio else None, peak=peak))
        return out

    def _score_render(self, audio: np.ndarray) -> tuple[float, np.ndarray, float | None]:
        """In the render thread: (loss, mono mix, peak) of one render, mono or stereo.

        Scored on the mono mix, as the target is; the peak is of either channel (None when it failed)."""
        mono = audio.mean(axis=0) if audio.ndim == 2 else audio
        loss = self.loss(mono)
        return loss, mono, float(np.max(np.abs(audio))) if loss < FAILED_LOSS else None

    def losses(self, presets: Sequence[Preset], *, fresh: bool = False) -> list[float]:
        return [s.loss for s in self.evaluate(presets, fresh=fresh)]
