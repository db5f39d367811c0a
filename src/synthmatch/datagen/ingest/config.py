"""What `synthmatch ingest` does: `IngestConfig`, its defaults (generate's) and `IngestError`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from synthmatch.defaults import DATASET_TIER
from synthmatch.errors import ConfigError, SynthmatchError
from synthmatch.synth.params import TIERS

# Same defaults as `generate`, so ingested and generated data merge.
DEFAULT_TIER = DATASET_TIER
DEFAULT_MIDI_NOTES = (48, 60, 72)
DEFAULT_DURATION_S = 2.0
DEFAULT_NOTE_DURATION_S = 1.5
# A render whose RMS is below this is silent (the dataset generator's threshold).
SILENCE_DB = -60.0


class IngestError(SynthmatchError, ValueError):
    """Ingestion that cannot start or produced nothing (no presets found, every file skipped...)."""


@dataclass(frozen=True)
class IngestConfig:
    """What `synthmatch ingest` does.

    Settings left at None come from the existing file with `append`, and otherwise take `generate`'s
    defaults (tier 3, notes 48/60/72, 44100 Hz, 2.0 s renders with the key held 1.5 s, mono).

    Args:
        inputs: .vital files and folders (searched recursively for *.vital).
        output: the dataset file to write (or extend with `append`).
        tier: 1, 2 or 3.
        midi_notes: notes each preset is rendered at (one row each).
        sample_rate, duration_s, note_duration_s: the render; must match the file when appending.
        append: add rows to an existing dataset (its schema must match).
        overwrite: replace an existing output file.
        workers: render threads (default: every core).
        silence_db: rows whose render RMS is below this are skipped as silent.
        stereo: store stereo audio (new files only).
        batch_size: presets read and rendered together (bounds memory on large folders).
        progress: show a progress bar.
        include_test_presets: also ingest the community presets reserved for evaluation
            (presets/community/split.json); left out by default so they never reach training data.
    """

    inputs: tuple[Path, ...]
    output: Path
    tier: int | None = None
    midi_notes: tuple[int, ...] | None = None
    sample_rate: int | None = None
    duration_s: float | None = None
    note_duration_s: float | None = None
    append: bool = False
    overwrite: bool = False
    workers: int | None = None
    silence_db: float = SILENCE_DB
    stereo: bool = False
    batch_size: int = 16
    progress: bool = True
    include_test_presets: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(Path(p) for p in self.inputs))
        object.__setattr__(self, "output", Path(self.output))
        if not self.inputs:
            raise ConfigError("ingest needs at least one .vital file or folder")
        if self.tier is not None and self.tier not in TIERS:
            raise ConfigError(f"--tier must be 1, 2 or 3, got {self.tier}")
        if self.midi_notes is not None:
            notes = tuple(int(n) for n in self.midi_notes)
            if not notes or any(not 0 <= n <= 127 for n in notes) or len(set(notes)) != len(notes):
                raise ConfigError(
                    f"--midi-notes must be distinct MIDI notes in 0..127, e.g. 48,60,72; got {self.midi_notes}"
                )
            object.__setattr__(self, "midi_notes", notes)
        if self.sample_rate is not None and not 8000 <= self.sample_rate <= 192000:
            raise ConfigError(f"--sample-rate must be in 8000..192000 Hz, got {self.sample_rate}")
        if self.duration_s is not None and not 0 < self.duration_s <= 60:
            raise ConfigError(f"--duration must be in (0, 60] seconds, got {self.duration_s}")
        if self.note_duration_s is not None and self.note_duration_s < 0:
            raise ConfigError(f"--note-duration must be >= 0 seconds, got {self.note_duration_s}")
        if self.append and self.overwrite:
            raise ConfigError("--append and --overwrite exclude each other")
        if self.append and self.stereo:
            raise ConfigError("--stereo applies to new files; an appended file keeps its own channels")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if not math.isfinite(self.silence_db):
            raise ConfigError(f"--silence-db must be a number of dBFS, got {self.silence_db}")
