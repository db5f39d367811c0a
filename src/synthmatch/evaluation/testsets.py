"""Evaluation targets: in-domain generated notes, held-out community presets, and user audio folders.

- in_domain: presets drawn by the dataset sampler (random draws, no breeding from community presets) with
  a seed reserved for evaluation (never used to generate training data), each rendered at one of the MIDI
  notes 48/60/72 (`datagen.sample.example_midi_note`); ground truth = the preset and its vector. Silent or
  clipped draws are skipped, as `generate` rejects them.
- community: the presets `presets/community/split.json` reserves for evaluation, rendered from their
  original files (full presets, with their own wavetables and routing); the tier vector of the file is the
  parameter ground truth, which a tier-2 model can only approximate.
- audio: every audio file of a folder (real sounds, no ground truth), such as a `synthmatch devset`
  folder: the note and key-held time its manifest records, else estimated.

Targets are whole notes (4 s with the key held 1.5 s by default). Each target with a true preset also
gets a second render of that preset: the distance between the two renders (each on a fresh Synth, as a
user hears the preset) is vita's run-to-run noise floor for that target.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthmatch.audio.io import list_audio_files, load_audio, trim_leading_silence
from synthmatch.datagen.community import COMMUNITY_DIR, test_preset_names, unusable_preset_names
from synthmatch.datagen.sample import PresetSampler, example_midi_note
from synthmatch.defaults import DEFAULT_SAMPLE_RATE
from synthmatch.synth.presets import ParamVector, Preset
from synthmatch.synth.render import Renderer

log = logging.getLogger(__name__)

__all__ = ["Target", "EVAL_SEED", "TEST_SETS", "in_domain_targets", "community_targets", "audio_targets"]

# Reserved for evaluation: training datasets must use other seeds (generate's default is 0).
EVAL_SEED = 9_000_001
TEST_SETS = ("in_domain", "community", "audio")
_SILENT_DB = -50.0


@dataclass
class Target:
    """One sound to match."""

    name: str
    test_set: str
    audio: np.ndarray  # mono float32
    sample_rate: int
    midi_note: int | None
    note_duration_s: float
    truth: Preset | None = None
    truth_vector: ParamVector | None = None
    floor_audio: np.ndarray | None = None  # a second render of the truth (noise floor)
    _note_estimate_s: float | None = None

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate

    @property
    def note_estimate_s(self) -> float:
        """The key-held time as matching estimates it from the audio (what infer would use)."""
        if self._note_estimate_s is None:
            from synthmatch.audio.pitch import estimate_timing

            self._note_estimate_s = estimate_timing(self.audio, self.sample_rate).note_duration_s
        return self._note_estimate_s


def _db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12))


def in_domain_targets(
    n: int,
    tier: int,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    duration_s: float = 4.0,
    note_duration_s: float = 1.5,
    seed: int = EVAL_SEED,
    notes=(48, 60, 72),
) -> list[Target]:
    """n audible generated targets with ground truth (silent draws are skipped, as generate rejects them)."""
    sampler = PresetSampler(tier, seed=seed)
    targets: list[Target] = []
    i = 0
    with Renderer(sample_rate=sample_rate) as r:
        while len(targets) < n and i < 20 * n + 20:
            batch = [sampler.sample(i + k) for k in range(max(4, n))]
            note_of = [example_midi_note(seed, ex.index, tier, notes) for ex in batch]
            first = r.render_batch(
                [e.preset for e in batch], note_of, note_duration_s, duration_s, fresh=True
            )
            second = r.render_batch(
                [e.preset for e in batch], note_of, note_duration_s, duration_s, fresh=True
            )
            for ex, note, a, b in zip(batch, note_of, first, second):
                if len(targets) >= n or not (a.ok and b.ok) or a.audio is None:  # (ok implies audio)
                    continue
                peak = float(np.max(np.abs(a.audio)))
                if _db(a.audio) < _SILENT_DB or peak > 1.0 or not np.isfinite(peak):
                    continue
                targets.append(
                    Target(
                        f"gen_{tier}_{ex.index}",
                        "in_domain",
                        a.audio,
                        sample_rate,
                        note,
                        note_duration_s,
                        truth=ex.preset,
                        truth_vector=ex.preset.to_vector(tier),
                        floor_audio=b.audio,
                    )
                )
            i += len(batch)
    return targets


def community_targets(
    tier: int,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    duration_s: float = 4.0,
    note_duration_s: float = 1.5,
    notes=(60,),
    folder: str | os.PathLike = COMMUNITY_DIR,
    limit: int | None = None,
) -> list[Target]:
    """Renders of the evaluation-only community presets (their full original files)."""
    folder = Path(folder)
    names = [n for n in test_preset_names(folder) if n not in unusable_preset_names(folder)]
    if limit is not None:
        names = names[:limit]
    presets = []
    for n in names:
        try:
            presets.append(Preset.load(folder / f"{n}.vital"))
        except (OSError, ValueError) as exc:  # PresetError is a ValueError
            log.warning("community test preset %s skipped: %s", n, exc)
    jobs = [(p, note) for p in presets for note in notes]
    targets = []
    with Renderer(sample_rate=sample_rate) as r:
        notes = [n for _, n in jobs]
        first = r.render_batch([p for p, _ in jobs], notes, note_duration_s, duration_s, fresh=True)
        second = r.render_batch([p for p, _ in jobs], notes, note_duration_s, duration_s, fresh=True)
    for (p, note), a, b in zip(jobs, first, second):
        if not (a.ok and b.ok) or a.audio is None or _db(a.audio) < _SILENT_DB:  # (ok implies audio)
            log.info("community target %s at note %d skipped (silent or failed)", p.name, note)
            continue
        targets.append(
            Target(
                f"{p.name}_{note}",
                "community",
                a.audio,
                sample_rate,
                note,
                note_duration_s,
                truth=p,
                truth_vector=p.to_vector(tier),
                floor_audio=b.audio,
            )
        )
    return targets


def audio_targets(
    folder: str | os.PathLike, sample_rate: int = DEFAULT_SAMPLE_RATE, max_duration_s: float = 4.0
) -> list[Target]:
    """Every readable audio file of a folder; the note and key-held time its manifest (`devset`) records,
    else estimated per file."""
    from synthmatch.audio.pitch import estimate_pitch, estimate_timing
    from synthmatch.evaluation.manifest import read_manifest

    manifest = read_manifest(folder)
    targets = []
    for path in list_audio_files(folder):
        try:
            audio, sr = load_audio(path, sample_rate)
        except ValueError as exc:
            log.warning("%s", exc)
            continue
        known = manifest.get(path.name)
        if known is None:
            audio = trim_leading_silence(audio, sr)
        audio = audio[: int(max_duration_s * sr)]
        if len(audio) < 2048 or _db(audio) < -70:
            log.warning("%s: too short or silent, skipped", path)
            continue
        if known is not None:
            midi = known.midi_note
            if midi is None:
                pitch = estimate_pitch(audio, sr)
                midi = pitch.midi_note if pitch.pitched else None
            note_s = min(known.note_duration_s, len(audio) / sr)
        else:
            pitch, timing = estimate_pitch(audio, sr), estimate_timing(audio, sr)
            midi, note_s = (pitch.midi_note if pitch.pitched else None), timing.note_duration_s
        targets.append(Target(path.stem, "audio", audio, sr, midi, note_s))
    return targets
