"""Matching a target sound: read it, find its pitch and timing, start, refine, export.

`run_infer(InferConfig)` is what `synthmatch infer` calls; `match_target` matches one loaded target and
is what other front ends (the web demo) call.

The starting point is either a model's prediction (`-c CKPT`, or the bundled default model) or a preset
(`--start init`, `--start PRESET.vital`); everything after it (refinement, export, render, tutorial,
summary) only sees a `StartPoint`, so it does not care which. Without `-c`, `--start` or a bundled
model, matching starts from Vital's init preset and says so.

One failing input never stops a folder run: its result carries the error, the others go on, and the
exit status says something failed. Outputs of an input are written only once all of them are ready.
Each result is handed to `run_infer(on_result=...)` as soon as its input is done.

Ctrl-C during a refinement stops that search only (`refine.keep_best_on_interrupt`): the match is
finished from its best so far and written, and then `run_infer` stops the run with `MatchInterrupted`
(a KeyboardInterrupt carrying the results so far). A second Ctrl-C, or one outside a search, stops at
once, writing nothing more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synthmatch.audio.io import AudioError, list_audio_files
from synthmatch.audio.pitch import (
    FALLBACK_MIDI_NOTE,
    NoteTiming,
    PitchEstimate,
    estimate_pitch,
    estimate_timing,
)
from synthmatch.audio.verdict import verdict_of
from synthmatch.defaults import DEFAULT_SAMPLE_RATE, SEARCH_TIER
from synthmatch.errors import ConfigError, SynthmatchError
from synthmatch.inference.candidates import START_KINDS
from synthmatch.inference.export import (
    MatchFiles,
    candidate_paths,
    output_names,
    output_paths,
    refuse_existing,
    write_match,
)
from synthmatch.inference.refine import RefineConfig, keep_best_on_interrupt
from synthmatch.inference.target import MIN_SAMPLES, Target, load_target
from synthmatch.inference.target_table import WAVETABLE_CHOICES
from synthmatch.synth.params import TIERS
from synthmatch.synth.presets import Preset

if TYPE_CHECKING:
    from synthmatch.inference.match import Match, MatchSteps
    from synthmatch.inference.predict import Predictor
    from synthmatch.inference.refine import RefineResult
    from synthmatch.inference.retrieval import RetrievalIndex

log = logging.getLogger(__name__)

__all__ = [
    "InferConfig",
    "MatchResult",
    "MatchInterrupted",
    "StartPoint",
    "Starter",
    "ModelChoice",
    "choose_model",
    "run_infer",
    "match_target",
    "resolve_inputs",
    "MAX_TARGET_S",
]

MAX_TARGET_S = 4.0  # default --max-seconds: targets are matched whole up to this length
DEFAULT_CANDIDATES = 3  # --candidates with --refine (the best is NAME.vital, the others NAME.2.vital...)
MAX_CANDIDATES = 8
MIN_CANDIDATE_EVALS = 100  # below this budget a match has one start (screening several costs ~25 renders)
NEIGHBOUR_STARTS = 2  # nearest neighbours among the starts
ALTERNATIVE_STARTS = 2  # the model's top discrete alternatives among the starts


@dataclass(frozen=True)
class InferConfig:
    """Settings of `synthmatch infer`.

    Attributes:
        inputs: audio files and/or folders (searched recursively).
        output: a .vital file (one input) or a folder.
        checkpoint: model checkpoint (`-c`); None uses the bundled default model when there is one.
        start: "init" or a .vital file to start from instead of a model; None: the model, else init.
        tier: parameter space searched without a model (default 2); a model brings its own.
        midi_note / note_duration_s: override the estimated pitch / key-held time.
        max_seconds: targets longer than this (after leading silence) are cut to it, with an INFO line;
            up to it the whole target is matched, rendered and scored (the model sees its own window of it).
        refine, refine_evals, refine_timeout_s, refine_sigma: CMA-ES refinement and its budget.
        render: also write the match's WAV and a spectrogram comparison PNG.
        tutorial: also write a Markdown guide to rebuilding the preset in Vital.
        sample_rate: matching/render rate (default: the model's, else 44100).
        workers: render threads (default: every core).
        seed: CMA-ES seed.
        progress: show progress bars.
        overwrite: replace outputs that exist (without it such an input is an error, matched not at all).
        wavetable: oscillator 1's table: "basic" (Basic Shapes, as the start has it), "target" (a table
            made from the target's harmonics over the note, `inference.target_table`; a target that is
            not pitched and harmonic keeps the start's tables, with a WARNING saying so) or "auto" (the
            same rule, said at INFO; provisional).
    """

    inputs: tuple[Path, ...]
    output: Path = Path("out")
    checkpoint: Path | None = None
    start: str | None = None
    tier: int | None = None
    midi_note: int | None = None
    note_duration_s: float | None = None
    max_seconds: float = MAX_TARGET_S
    refine: bool = False
    refine_evals: int = RefineConfig.max_evals  # one default, the refinement's own
    refine_timeout_s: float = RefineConfig.timeout_s
    refine_sigma: float = RefineConfig.sigma
    render: bool = False
    tutorial: bool = False
    sample_rate: int | None = None
    workers: int | None = None
    seed: int = 0
    progress: bool = False
    overwrite: bool = False
    candidates: int | None = None  # None: DEFAULT_CANDIDATES with --refine, 1 without
    starts: tuple[str, ...] = START_KINDS
    discrete: str = "none"
    index: Path | None = None  # None: the bundled index, when there is one
    wavetable: str = "basic"

    def __post_init__(self) -> None:
        if self.wavetable not in WAVETABLE_CHOICES:
            raise ConfigError(
                f"--wavetable must be one of {', '.join(WAVETABLE_CHOICES)}, got {self.wavetable!r}"
            )
        if self.candidates is not None and not 1 <= self.candidates <= MAX_CANDIDATES:
            raise ConfigError(f"--candidates must be in 1..{MAX_CANDIDATES}, got {self.candidates}")
        if self.candidates is not None and self.candidates > 1 and not self.refine:
            raise ConfigError("--candidates needs --refine: the candidates share its render budget")
        unknown = [k for k in self.starts if k not in START_KINDS]
        if unknown or not self.starts:
            raise ConfigError(
                f"--starts takes a comma-separated list of {', '.join(START_KINDS)}, got {','.join(self.starts)!r}"
            )
        if not self.inputs:
            raise ConfigError("no input given: pass -i FILE or -i FOLDER")
        if self.checkpoint is not None and self.start is not None:
            raise ConfigError("give either -c CHECKPOINT (start from a prediction) or --start, not both")
        if self.tier is not None and self.tier not in TIERS:
            raise ConfigError(f"--tier must be 1, 2 or 3, got {self.tier}")
        if self.midi_note is not None and not 0 <= self.midi_note <= 127:
            raise ConfigError(f"--midi-note must be in 0..127, got {self.midi_note}")
        if self.note_duration_s is not None and not 0 < self.note_duration_s <= 30:
            raise ConfigError(f"--note-duration must be in (0, 30] seconds, got {self.note_duration_s}")
        if not 0.1 <= self.max_seconds <= 30:
            raise ConfigError(f"--max-seconds must be in [0.1, 30] seconds, got {self.max_seconds}")
        if self.sample_rate is not None and not 8000 <= self.sample_rate <= 192000:
            raise ConfigError(f"--sample-rate must be in 8000..192000 Hz, got {self.sample_rate}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")
        if self.refine:
            self.refine_config()  # validates the refinement flags

    @property
    def n_candidates(self) -> int:
        if not self.refine:
            return 1
        return DEFAULT_CANDIDATES if self.candidates is None else int(self.candidates)

    def refine_config(self):
        return RefineConfig(
            max_evals=self.refine_evals,
            timeout_s=self.refine_timeout_s,
            sigma=self.refine_sigma,
            seed=self.seed,
            discrete=self.discrete,
        )


# ---------------------------------------------------------------------------------------------------
# starting points
@dataclass
class StartPoint:
    """Where matching starts: a preset and the parameter tier it lives in.

    Attributes:
        preset: the starting preset (real Vital values).
        tier: parameter space refinement searches.
        source: "model", "init" or "preset".
        description: for logs, the summary and the tutorial.
        confidence: categorical parameter -> probability of the chosen option (model starts only).
        probabilities: categorical parameter -> probability of every option (model starts only).
    """

    preset: Preset
    tier: int
    source: str
    description: str
    confidence: dict[str, float] | None = None
    probabilities: dict[str, np.ndarray] | None = None

    def summary(self) -> dict:
        d: dict[str, Any] = {"source": self.source, "description": self.description, "tier": self.tier}
        if self.confidence:
            values = np.array(list(self.confidence.values()))
            d["confidence_mean"] = round(float(values.mean()), 4)
            d["least_confident"] = {
                k: round(v, 4) for k, v in sorted(self.confidence.items(), key=lambda kv: (kv[1], kv[0]))[:5]
            }
            d["confidence"] = {k: round(v, 4) for k, v in self.confidence.items()}
        return d


@dataclass
class ModelChoice:
    """The model a run starts from (or none), and the tier and sample rate that follow from it."""

    predictor: Predictor | None
    path: Path | None
    tier: int
    sample_rate: int

    @classmethod
    def without_model(cls, tier: int | None) -> ModelChoice:
        return cls(None, None, int(tier or SEARCH_TIER), DEFAULT_SAMPLE_RATE)

    @property
    def description(self) -> str:
        """The model as outputs name it: its file name, never a path of this machine."""
        from synthmatch.inference.predict import default_model_path

        if self.path is None:
            return "no model"
        default = default_model_path()
        if default is not None and self.path.resolve() == default.resolve():
            return f"the bundled default model (tier {self.tier})"
        return f"model {self.path.name} (tier {self.tier})"


def choose_model(checkpoint: Path | None, tier: int | None, conflict_hint: str) -> ModelChoice:
    """The model at `checkpoint`, else the bundled default model, else none (`infer`, `eval`, the demo).

    Args:
        checkpoint: a checkpoint given by the user (resolved: `model.checkpoint.resolve_checkpoint`).
        tier: `--tier`: the parameter space without a model; with one it must agree with the model's.
        conflict_hint: what the user can do instead, for the --tier conflict's message.
    """
    from synthmatch.inference.predict import Predictor, default_model_path  # lazy: torch and the model

    path = checkpoint if checkpoint is not None else default_model_path()
    if path is None:
        return ModelChoice.without_model(tier)
    predictor = Predictor.load(path)
    if tier is not None and tier != predictor.tier:
        raise ConfigError(
            f"--tier {tier} conflicts with the model, which is tier {predictor.tier}; {conflict_hint}"
        )
    return ModelChoice(predictor, path, predictor.tier, int(predictor.sample_rate))


class Starter:
    """Makes the StartPoint of each target: a Predictor's prediction, or a fixed preset."""

    def __init__(self, cfg: InferConfig):
        self.predictor = None
        self.preset: Preset | None = None
        self.tier = int(cfg.tier or SEARCH_TIER)
        sample_rate = DEFAULT_SAMPLE_RATE
        if cfg.start is not None:
            self.preset, self.description, self.source = _start_preset(cfg.start)
        else:
            model = choose_model(
                cfg.checkpoint, cfg.tier, "--tier chooses the parameter space only without a model"
            )
            self.predictor, self.tier, sample_rate = model.predictor, model.tier, model.sample_rate
            if model.predictor is None:
                log.info("no model given (-c) and none bundled: starting from Vital's init preset")
                self.preset, self.description, self.source = Preset.init(), "Vital's init preset", "init"
            else:
                self.description, self.source = model.description, "model"
        self.sample_rate = int(cfg.sample_rate or sample_rate)
        self.model_window_s: float | None = None
        self.min_samples = MIN_SAMPLES
        self.index: RetrievalIndex | None = None
        self.load_index(cfg)
        if self.predictor is not None:
            self.model_window_s = float(self.predictor.clip_seconds)
            self.min_samples = int(self.predictor.mel.n_fft)

    def start_for(self, target: Target, midi_note: int) -> StartPoint:
        if self.predictor is None:
            assert self.preset is not None  # set whenever there is no predictor
            return StartPoint(self.preset, self.tier, self.source, self.description)
        prediction = self.predictor.predict(target.audio, target.sample_rate, midi_note)
        return StartPoint(
            prediction.preset,
            prediction.tier,
            "model",
            self.description,
            dict(prediction.confidence),
            prediction.probabilities,
        )

    def load_index(self, cfg: InferConfig) -> None:
        """The retrieval index for neighbour starts (`--index`, else the bundled one; none: no such starts)."""
        from synthmatch.inference.retrieval import RetrievalIndex, RetrievalIndexError, default_index_path

        self.index = None
        if "neighbours" not in cfg.starts or cfg.n_candidates < 2:
            return
        path = cfg.index if cfg.index is not None else default_index_path()
        if path is None:
            log.info("no retrieval index given (--index) and none bundled: no nearest-neighbour starts")
            return
        if cfg.refine_evals < MIN_CANDIDATE_EVALS:
            return  # one start at this budget: no neighbours needed
        if cfg.index is None:  # the bundled index: left out, said once, when it cannot serve
            try:
                index = RetrievalIndex.load(path)
            except RetrievalIndexError as exc:
                log.warning(
                    "the bundled retrieval index is not usable (%s): no nearest-neighbour starts", exc
                )
                return
            if index.tier == self.tier:
                self.index = index
            else:
                log.info(
                    "the bundled index is tier %d, matching searches tier %d: no nearest-neighbour starts",
                    index.tier,
                    self.tier,
                )
            return
        index = RetrievalIndex.load(path)
        if index.tier != self.tier:
            raise ConfigError(f"--index {path} is tier {index.tier}, but matching searches tier {self.tier}")
        self.index = index

    def starts_for(self, target: Target, midi_note: int, cfg: InferConfig) -> tuple[StartPoint, list]:
        """The first start (the model's or the given preset) and every start the candidates begin from."""
        from synthmatch.inference.candidates import Start, alternative_starts, neighbour_starts

        first = self.start_for(target, midi_note)
        starts = []
        if first.source != "model" or "model" in cfg.starts:
            starts.append(Start(first.preset, first.source, first.description, first.probabilities))
        if "alternatives" in cfg.starts and first.probabilities:
            starts += alternative_starts(first.preset, first.probabilities, first.tier, ALTERNATIVE_STARTS)
        if self.index is not None:
            starts += neighbour_starts(self.index, target.audio, target.sample_rate, NEIGHBOUR_STARTS)
        if "init" in cfg.starts and first.source != "init":
            starts.append(Start(Preset.init(), "init", "Vital's init preset"))
        if not starts:
            starts.append(Start(first.preset, first.source, first.description, first.probabilities))
        return first, starts


def _start_preset(start: str) -> tuple[Preset, str, str]:
    if start == "init":
        return Preset.init(), "Vital's init preset", "init"
    path = Path(start)
    if path.suffix.lower() != ".vital" and not path.exists():
        raise ConfigError(f"--start must be 'init' or a .vital file, got {start!r}")
    return Preset.load(path), f"preset {path.name}", "preset"  # the name: no path of this machine


# ---------------------------------------------------------------------------------------------------
# results
@dataclass
class MatchResult:
    """What one input produced (paths of the files written, or the error).

    `interrupted`: Ctrl-C stopped its refinement; the files written are its best match so far."""

    input: Path
    outputs: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    info: dict = field(default_factory=dict)
    interrupted: bool = False

    @property
    def preset_path(self) -> Path | None:
        return self.outputs.get("preset")

    @property
    def audio_path(self) -> Path | None:
        return self.outputs.get("audio")

    def summary(self) -> dict:
        """The record `--json` prints; a loss of a render that failed (the search's `FAILED_LOSS`) is null."""
        return _without_sentinels(
            {
                "input": str(self.input),
                "preset": str(self.preset_path) if self.preset_path else None,
                "audio": str(self.audio_path) if self.audio_path else None,
                "outputs": {k: str(v) for k, v in self.outputs.items()},
                "seconds": round(self.seconds, 3),
                "error": self.error,
                **({"interrupted": True} if self.interrupted else {}),
                **self.info,
            }
        )


_LOSS_KEYS = ("loss", "discrete_tried", "template_probe", "verify", "history")


def _without_sentinels(value: Any, is_loss: bool = False) -> Any:
    """`value` with every loss at or above `FAILED_LOSS` (a failed render's) replaced by None. Losses are
    the values under a key that names one (`_LOSS_KEYS`); other numbers (a pitch in Hz, seconds) can be
    that large and stay."""
    from synthmatch.inference.scoring import shown_loss

    if isinstance(value, float):
        return shown_loss(value) if is_loss else value
    if isinstance(value, dict):
        return {
            k: _without_sentinels(v, is_loss or any(w in str(k) for w in _LOSS_KEYS))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_without_sentinels(v, is_loss) for v in value]
    return value


class MatchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped `run_infer`. During a refinement, that input's best match so far was finished and
    written (`result`, the last of `results`); elsewhere that input was not written (`result.error` says
    so). The inputs before it are in `results` as they were written; those after it were not matched."""

    def __init__(self, results: list[MatchResult]):
        super().__init__("interrupted")
        self.results = results

    @property
    def result(self) -> MatchResult:
        return self.results[-1]


def resolve_inputs(inputs: tuple[Path, ...]) -> list[Path]:
    """Expand folders into their audio files; keep files (even unreadable ones, to report them)."""
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found = list_audio_files(p)
            if not found:
                raise AudioError(f"{p}: folder holds no audio files")
            files.extend(found)
        else:
            files.append(p)
    return files


# ---------------------------------------------------------------------------------------------------
# matching
def _pitch_and_timing(target: Target, cfg: InferConfig) -> tuple[int, float, dict, dict]:
    """(midi_note, note_duration_s, pitch summary, timing summary), overrides first."""
    if cfg.midi_note is not None:
        midi, pitch_info = int(cfg.midi_note), {"midi_note": int(cfg.midi_note), "source": "--midi-note"}
    else:
        pitch: PitchEstimate = estimate_pitch(target.audio, target.sample_rate)
        midi, pitch_info = pitch.midi_note, {**pitch.to_dict(), "source": "estimated"}
        if not pitch.pitched:
            log.info(
                "%s: no clear pitch (confidence %.2f, e.g. a drum or noise): matching at MIDI note %d; "
                "--midi-note sets another",
                target.path.name,
                pitch.confidence,
                FALLBACK_MIDI_NOTE,
            )
    if cfg.note_duration_s is not None:
        note_s = float(cfg.note_duration_s)
        if note_s > target.duration_s:
            log.warning(
                "%s: --note-duration %.2f s is longer than the target (%.2f s): the key is held to the end",
                target.path.name,
                note_s,
                target.duration_s,
            )
            note_s = target.duration_s
        timing_info = {
            "note_duration_s": note_s,
            "duration_s": target.duration_s,
            "source": "--note-duration",
        }
    else:
        timing: NoteTiming = estimate_timing(target.audio, target.sample_rate)
        note_s = timing.note_duration_s
        timing_info = {**timing.to_dict(), "source": "estimated"}
    return midi, note_s, pitch_info, timing_info


def match_target(
    target: Target,
    cfg: InferConfig,
    starter: Starter,
    renderer,
    progress: bool = False,
    refine_callback: Callable[[dict], None] | None = None,
) -> tuple[MatchFiles, dict]:
    """Match one loaded target. Returns the outputs (in memory) and the summary fields.

    Args:
        target: from `load_target` at `starter.sample_rate`.
        cfg: what to produce (refine, render, tutorial) and the overrides.
        starter: the starting point maker.
        renderer: a `Renderer` at the target's sample rate.
        progress: show the refinement's progress bar.
        refine_callback: passed to `refine(callback=...)`: called with the refinement's progress.
    """
    from synthmatch.inference.match import POST_RENDERS, MatchTarget, match_preset

    midi, note_s, pitch_info, timing_info = _pitch_and_timing(target, cfg)
    duration_s = target.duration_s
    several = cfg.n_candidates > 1 and cfg.refine_evals >= MIN_CANDIDATE_EVALS
    if cfg.n_candidates > 1 and not several and cfg.candidates is not None:
        log.info(
            "%s: a budget of %d renders is too small for several candidates (at least %d): one start",
            target.path.name,
            cfg.refine_evals,
            MIN_CANDIDATE_EVALS,
        )
    if several:
        start, starts = starter.starts_for(target, midi, cfg)
    else:
        start, starts = starter.start_for(target, midi), []
    info: dict[str, Any] = {
        "target": target.summary(),
        "midi_note": midi,
        "duration_s": round(duration_s, 4),
        "note_duration_s": round(note_s, 4),
        "pitch": pitch_info,
        "timing": timing_info,
        "start": start.summary(),
    }
    if starter.model_window_s is not None:
        info["model_window_s"] = starter.model_window_s
    pitch = estimate_pitch(target.audio, target.sample_rate)
    if cfg.wavetable != "basic":
        start, starts, info["wavetable"] = _with_wavetable(cfg.wavetable, target, pitch, start, starts)
    if cfg.midi_note is not None and pitch.pitched and abs(pitch.midi - cfg.midi_note) > 0.5:
        pitch = _pitch_at(cfg.midi_note)  # the user's note wins over the estimate: tune to it
    mt = MatchTarget(target.audio, target.sample_rate, midi, note_s, pitch, name=target.path.name)
    ranked: list[tuple[Match, str, str]] = []  # (match, start description, start source)
    several = several and len(starts) > 1  # a single start is matched as it always was
    spent = 0
    refine_cfg = cfg.refine_config() if cfg.refine else None
    if several:
        from synthmatch.inference.candidates import match_candidates

        result = match_candidates(
            starts,
            start.tier,
            mt,
            renderer,
            cfg.refine_config(),
            cfg.n_candidates,
            progress=progress,
            callback=refine_callback,
        )
        ranked = [(c.match, c.start.label, c.start.source) for c in result.candidates]
        info["candidates"] = [
            {"rank": r + 1, **c.as_dict(trim=True), **_similarity(c.match.distance)}
            for r, c in enumerate(result.candidates)
        ]
        info["candidate_search"] = result.info
        spent = result.renders
        if not ranked and refine_cfg is not None:  # every candidate silent: init with what is left
            left = refine_cfg.max_evals - spent
            refine_cfg = replace(refine_cfg, max_evals=left) if left >= POST_RENDERS + 6 else None
            start = StartPoint(
                Preset.init(), start.tier, "init", "Vital's init preset (every candidate was silent)"
            )
    if not ranked:  # one start, or every candidate's start was silent
        match = match_preset(
            start.preset,
            start.tier,
            mt,
            renderer,
            refine=refine_cfg,
            progress=progress,
            callback=refine_callback,
            start_source=start.source,
            probabilities=start.probabilities,
        )
        match.renders += spent
        ranked = [(match, start.description, start.source)]
    best = ranked[0][0]
    if best.fallback is not None and "wavetable" in info:  # matched from init: no table of the target
        info["wavetable"] = {**info["wavetable"], "used": "basic", "reason": "the match fell back to init"}
    info.update(best.as_dict(trim=True))
    info["match_distance"] = round(float(best.distance), 5)
    score = verdict_of(best.distance)
    if score is not None:
        info["verdict"] = score.as_dict()
    source, description = _match_start(best, ranked[0][2], ranked[0][1])
    info["match_start"] = {"source": source, "description": description}  # where the written match began
    if several:
        info["renders"] = result.renders if info["candidates"] else best.renders  # (a fallback's: both)
    files = None
    for rank, (match, description, source) in enumerate(ranked):
        one = _match_files(match, description, source, target, cfg, midi, note_s, rank + 1, len(ranked))
        if files is None:
            files = one
        else:
            files.alternates.append(one)
    assert files is not None
    return files, info


def _with_wavetable(
    choice: str, target: Target, pitch: PitchEstimate, start: StartPoint, starts: list
) -> tuple[StartPoint, list, dict[str, Any]]:
    """The starts with oscillator 1 on a table made from the target (`--wavetable target`), or as they
    are when the target is not pitched and harmonic (said in one line); and the --json record of it."""
    from synthmatch.inference.target_table import target_table, with_target_table

    table, why_not = target_table(target.audio, target.sample_rate, pitch, name=target.path.name)
    if table is None:
        log.log(
            logging.WARNING if choice == "target" else logging.INFO,
            "%s: --wavetable %s: %s; keeping the start's wavetables (a table made from the sound needs "
            "a pitched, harmonic note)",
            target.path.name,
            choice,
            why_not,
        )
        return start, starts, {"asked": choice, "used": "basic", "reason": why_not}
    start = replace(start, preset=with_target_table(start.preset, table))
    starts = [replace(s, preset=with_target_table(s.preset, table)) for s in starts]
    return start, starts, {"asked": choice, "used": "target", **table.as_dict()}


def _match_files(
    match: Match,
    start_description: str,
    start_source: str,
    target: Target,
    cfg: InferConfig,
    midi: int,
    note_s: float,
    rank: int,
    n_ranked: int,
) -> MatchFiles:
    """The files of one match: the preset with its name, comments and note, its WAV and PNG, its tutorial.

    Nothing in them names a path of this machine: the target, the start and the model by file name."""
    from synthmatch.audio.pitch import note_name
    from synthmatch.synth.presets import PlayedNote

    start_source, start_text = _match_start(match, start_source, start_description)
    name = f"synthmatch {target.path.stem}" + (f" ({rank} of {n_ranked})" if rank > 1 else "")
    ranked_text = f" Candidate {rank} of {n_ranked}, ranked by distance." if n_ranked > 1 else ""
    score = verdict_of(match.distance)
    score_text = score.text if score is not None else "silent: no distance"
    preset = match.preset.with_meta(
        preset_name=name,
        author="synthmatch",
        comments=f"Matched to {target.path.name} at MIDI note {midi} ({note_name(midi)}), key held "
        f"{note_s:.2f} s of {target.duration_s:.2f} s, from {start_text}; {score_text}.{ranked_text}",
    ).with_played_note(PlayedNote(midi, float(note_s), float(target.duration_s)))
    files = MatchFiles(preset=preset, sample_rate=target.sample_rate)
    facts = [f"Matched to: {target.path.name}", f"Started from: {start_text}"]
    if n_ranked > 1:
        facts.append(f"Candidate {rank} of {n_ranked} (ranked by distance to the target)")
    facts.append(f"Distance to the target: {score_text} (multi-scale log-mel L1 at equal loudness)")
    if cfg.render:
        from synthmatch.inference.compare import comparison_png

        files.audio = match.audio  # the final user render: what the .vital plays, on a fresh Synth
        files.figure_png = comparison_png(
            target.audio,
            match.audio,
            target.sample_rate,
            title=f"{target.path.name}: MIDI {midi} ({note_name(midi)}), {score_text}",
            match_label=f"match ({start_source} start{', refined' if cfg.refine else ''})",
        )
    refined = match.steps.refine
    if refined is not None and not refined.skipped:
        facts.append(_refinement_fact(refined))
        changed = refined.info.get("discrete_changed") or {}
        for control, (old, new) in changed.items():
            facts.append(_changed_fact(control, old, new))
    facts += _level_and_template_facts(match.steps)
    if cfg.tutorial:
        from synthmatch.inference.tutorial import tutorial_markdown

        files.tutorial_md = tutorial_markdown(
            preset,
            title=target.path.name,
            midi_note=midi,
            note_duration_s=note_s,
            duration_s=target.duration_s,
            facts=facts,
        )
    return files


def _match_start(match: Match, source: str, description: str) -> tuple[str, str]:
    """(source, description) of where a match began: its start, or Vital's init preset after a fallback."""
    if match.fallback is not None:
        return "init", "Vital's init preset (fallback: the start was silent)"
    return source, description


def _similarity(distance: float) -> dict[str, Any]:
    """A candidate's similarity and verdict word, for its --json record."""
    score = verdict_of(distance)
    return {"similarity": score.similarity, "verdict": score.word} if score is not None else {}


def _refinement_fact(refined: RefineResult) -> str:
    """The refinement's line of the tutorial: its losses only when both are real (a start that did not
    render scores the failure sentinel FAILED_LOSS, which is no loss to show)."""
    from synthmatch.inference.scoring import shown_loss

    work = f"{refined.n_evals} evaluations over {refined.n_params} parameters"
    first, last = shown_loss(refined.initial_loss), shown_loss(refined.final_loss)
    if first is not None and last is not None:
        return f"CMA-ES refinement: loss {first:.3f} -> {last:.3f} in {work}"
    return f"CMA-ES refinement: {work}"


def _changed_fact(control: str, old: float, new: float) -> str:
    """A discrete control the search changed, as Vital names and shows it."""
    from synthmatch.synth.display import display_name, display_text
    from synthmatch.synth.params import param_space

    if control not in param_space():
        return f"Changed by the search: {control}"
    return (
        f"Changed by the search: {display_name(control)} from {display_text(control, old)} "
        f"to {display_text(control, new)}"
    )


def _level_and_template_facts(steps: MatchSteps) -> list[str]:
    """Tutorial lines on the level matching and the modulation moves refinement added."""
    from synthmatch.synth.template import template_connections

    facts = []
    level = steps.level
    if level is not None and level.final_db is not None:
        line = (
            f"Level: {level.final_db:.1f} dBFS RMS against the target's {level.target_db:.1f} "
            f"(Volume {level.volume_db or 0:+.1f} dB)"
        )
        if level.limited_by:
            line += f"; held lower: {level.limited_by}"
        facts.append(line)
        if level.limiter_drive_db is not None:
            facts.append(
                f"Distortion (Soft Clip, drive {level.limiter_drive_db:+.0f} dB) was added as a limiter: it "
                "lets the match play louder, nearer the target's level, without clipping"
            )
    kept = steps.refine.template if steps.refine is not None else {}
    for conn in template_connections(tuple(kept)) if kept else ():
        facts.append(f"Added by refinement: {conn.label} (amount {100 * kept[conn.key]:+.0f}%)")
    return facts


def _pitch_at(midi_note: int) -> PitchEstimate:
    from synthmatch.audio.pitch import midi_to_hz

    return PitchEstimate(midi_to_hz(midi_note), float(midi_note), int(midi_note), 1.0, True)


def run_infer(cfg: InferConfig, on_result: Callable[[MatchResult], None] | None = None) -> list[MatchResult]:
    """Match every input; one result per input file (errors included, never raised per file, nor logged:
    the caller reports them).

    With a single input its error is raised instead (a SynthmatchError the CLI prints in one line).

    Args:
        cfg: the inputs, outputs and settings.
        on_result: called with each input's result as soon as it is done (its files written).
    Raises:
        MatchInterrupted: Ctrl-C stopped a refinement; that input's best match so far was written.
    """
    from tqdm import tqdm

    from synthmatch.synth.render import Renderer

    files = resolve_inputs(cfg.inputs)
    single = len(files) == 1
    names = output_names(files) if not single else {}
    planned = {p: output_paths(cfg.output, p, single, names.get(p)) for p in files}  # a bad -o fails here
    ranks = range(2, cfg.n_candidates + 1)
    owner: dict[Path, Path] = {}
    for p, paths in planned.items():  # NAME.2.vital of one input must not be another's NAME.vital
        for rank in (1, *ranks):
            vital = candidate_paths(paths, rank).preset
            if vital in owner:
                raise ConfigError(
                    f"{p} and {owner[vital]} would both write {vital}; rename one, or pass --candidates 1"
                )
            owner[vital] = p
    if single and not cfg.overwrite:
        refuse_existing(
            [candidate_paths(planned[files[0]], r).preset for r in (1, *ranks)]
        )  # before any work
    starter = Starter(cfg)
    results: list[MatchResult] = []
    with (
        Renderer(sample_rate=starter.sample_rate, n_threads=cfg.workers) as renderer,
        keep_best_on_interrupt() as guard,
        tqdm(files, desc="matching", unit="file", disable=single or not cfg.progress) as bar,
    ):
        for path in bar:
            t0 = time.perf_counter()
            result = MatchResult(input=path)
            try:
                if not cfg.overwrite:
                    refuse_existing([candidate_paths(planned[path], r).preset for r in (1, *ranks)])
                target = load_target(path, starter.sample_rate, cfg.max_seconds, starter.min_samples)
                outputs, result.info = match_target(
                    target, cfg, starter, renderer, progress=single and cfg.progress
                )
                result.outputs = write_match(outputs, planned[path], overwrite=cfg.overwrite)
            except KeyboardInterrupt:
                # Ctrl-C outside a search (loading, predicting, finishing, or a second Ctrl-C): this input
                # is not written; the ones before it were, and the caller still gets their results.
                result.error = f"{path}: interrupted before its match was written"
                result.interrupted = True
                result.seconds = time.perf_counter() - t0
                results.append(result)
                raise MatchInterrupted(results) from None
            except SynthmatchError as exc:
                result.error = str(exc)
                if single:
                    raise
            except Exception as exc:  # an unexpected failure of one file must not stop a folder run
                if single:
                    raise
                result.error = f"{path}: {type(exc).__name__}: {exc}"
                log.debug("%s", result.error, exc_info=True)  # the traceback, with -vv
            result.seconds = time.perf_counter() - t0
            result.interrupted = guard.interrupted
            results.append(result)
            if on_result is not None:
                on_result(result)
            if guard.interrupted:
                raise MatchInterrupted(results)
    return results
