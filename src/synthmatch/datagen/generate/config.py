"""The settings of `synthmatch generate` and the report it ends with."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from synthmatch.datagen.sample import LHS_BLOCK_SIZE
from synthmatch.defaults import DATASET_TIER, DEFAULT_SAMPLE_RATE
from synthmatch.errors import ConfigError, SynthmatchError
from synthmatch.synth.params import TIERS

log = logging.getLogger("synthmatch.datagen.generate")


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
    tier: int = DATASET_TIER
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
