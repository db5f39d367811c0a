"""`synthmatch eval`: every method on every test set at one render budget, scored by every metric.

    run = run_eval(EvalConfig(checkpoint=Path("model.safetensors"), budget=100, output=Path("out/eval")))
    run.paths["markdown"], run.summary["in_domain"]["model_cmaes"]["mel_l1"]["median"]

For each target (`testsets`: whole notes, 4 s with the key held 1.5 s by default, as a producer's
one-shot) each method (`baselines`) chooses a preset, timed; search methods spend exactly B evaluations.
The methods that start from a preset (the model, the nearest neighbour, CMA-ES from init or from the
model) go through the same matching as `synthmatch infer` (`inference.match.match_preset`: pitch
alignment, refinement, tuning, level, the fall-back from a silent start). Every choice is then rendered
afresh the way a user hears the exported preset (a Synth built for the render, random phase as the
preset says, at the target's note with the key held for the target's true time, over the whole target)
and scored against the target by every metric (`metrics`). Targets with a true preset also get the noise floor: the same metrics between two renders of
the truth. A method that fails on one target is recorded as failed there and the run goes on; methods
whose inputs are missing (no model, no training set) are skipped with the reason. Tables, JSON and plots
are written by `report`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from synthmatch.errors import ConfigError
from synthmatch.evaluation.baselines import (
    METHODS,
    MODEL_METHODS,
    RANDOM_SEARCH_SEED,
    RANDOM_SEED,
    MethodResult,
    NearestNeighbour,
    random_search,
    refine_history,
)
from synthmatch.evaluation.metrics import audio_metrics, parameter_metrics
from synthmatch.evaluation.testsets import TEST_SETS, Target
from synthmatch.synth.params import TIERS
from synthmatch.synth.presets import Preset

log = logging.getLogger(__name__)

__all__ = ["EvalConfig", "EvalRun", "run_eval", "QUICK", "DEFAULTS"]

# Defaults of a full run, and of `--quick` (a smoke test small enough for CI; its numbers are no benchmark).
DEFAULTS = {"n": 50, "budget": 100, "community_limit": None, "max_duration_s": None}
QUICK = {"n": 3, "budget": 24, "community_limit": 2, "max_duration_s": 1.0}
TARGET_DURATION_S = 4.0  # generated targets: 4 s with the key held 1.5 s, as a producer's one-shot
TARGET_NOTE_S = 1.5
REFINE_TIMEOUT_S = 3600.0  # the budget, not the clock, ends a refinement: equal budgets for every method


@dataclass(frozen=True)
class EvalConfig:
    """Settings of `synthmatch eval`.

    Attributes:
        checkpoint: model for the `model` and `model_cmaes` methods (None: the bundled default model,
            if there is one; otherwise those methods are skipped).
        test_sets: among in_domain, community, audio (None: in_domain and community, plus audio when
            `audio_dir` is given).
        audio_dir: folder of audio files for the `audio` test set (with a `devset` manifest, its known
            notes and key-held times are used).
        max_seconds: longest audio target (the rest is cut), and the length of generated targets.
        tier: parameter space of the in-domain targets, of CMA-ES from init and of the parameter
            metrics (default: the model's tier, else 2).
        n: in-domain targets (default 50; 3 with --quick).
        budget: evaluations (scored renders) of each search method per target (default 100; 24 quick).
        methods: which methods to run (default: all of baselines.METHODS).
        train_data: training dataset for the nearest-neighbour method.
        output: folder for the table, JSON and plots.
        quick: the CI-sized run (3 in-domain + 2 community targets of at most 1 s, budget 24).
        seed: seed of the random baselines and of CMA-ES (targets are fixed by testsets.EVAL_SEED).
        workers: render threads (default: every core).
        community_limit: at most this many community presets (default all 15; 2 quick).
        grid_targets: targets per test set drawn in the spectrogram grid.
        progress: show progress bars.
        command: the command line, recorded in the outputs.
    """

    checkpoint: Path | None = None
    test_sets: tuple[str, ...] | None = None
    audio_dir: Path | None = None
    max_seconds: float = TARGET_DURATION_S
    tier: int | None = None
    n: int | None = None
    budget: int | None = None
    methods: tuple[str, ...] = METHODS
    train_data: Path | None = None
    output: Path = Path("out/eval")
    quick: bool = False
    seed: int = 0
    workers: int | None = None
    community_limit: int | None = None
    grid_targets: int = 4
    progress: bool = False
    command: str | None = None

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ConfigError(
                f"--methods: unknown {', '.join(unknown) or '(none given)'}; choose from {','.join(METHODS)}"
            )
        if len(set(self.methods)) != len(self.methods):
            raise ConfigError("--methods lists a method twice")
        sets = self.resolved_test_sets
        bad = [s for s in sets if s not in TEST_SETS]
        if bad or not sets:
            raise ConfigError(
                f"--test-sets: unknown {', '.join(bad) or '(none given)'}; choose from {','.join(TEST_SETS)}"
            )
        if "audio" in sets and self.audio_dir is None:
            raise ConfigError("the audio test set needs --audio-dir DIR (a folder of audio files)")
        if self.audio_dir is not None and not Path(self.audio_dir).is_dir():
            raise ConfigError(f"--audio-dir {self.audio_dir}: not a folder")
        if self.tier is not None and self.tier not in TIERS:
            raise ConfigError(f"--tier must be 1, 2 or 3, got {self.tier}")
        if not 0.1 <= self.max_seconds <= 30:
            raise ConfigError(f"--max-seconds must be in [0.1, 30] seconds, got {self.max_seconds}")
        if self.n is not None and self.n < 1:
            raise ConfigError(f"-n must be >= 1 in-domain target, got {self.n}")
        if self.budget is not None and not 1 <= self.budget <= 100_000:
            raise ConfigError(f"--budget must be in 1..100000 evaluations, got {self.budget}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")
        if self.community_limit is not None and self.community_limit < 1:
            raise ConfigError(f"community_limit must be >= 1, got {self.community_limit}")
        if self.checkpoint is not None:
            self.checkpoint_path()  # the same resolution as infer's (a .pt name finds its .safetensors)
        if self.train_data is not None and not Path(self.train_data).is_file():
            raise ConfigError(f"--train-data {self.train_data}: no such dataset file")

    def checkpoint_path(self) -> Path:
        """The checkpoint file -c names, found as infer finds it."""
        from synthmatch.model.checkpoint import CheckpointError, resolve_checkpoint_path

        if self.checkpoint is None:
            raise ConfigError("no checkpoint given (-c CHECKPOINT)")
        try:
            return resolve_checkpoint_path(self.checkpoint)
        except CheckpointError as e:
            raise ConfigError(f"-c {e}") from None

    @property
    def resolved_test_sets(self) -> tuple[str, ...]:
        if self.test_sets is not None:
            return tuple(self.test_sets)
        return ("in_domain", "community") + (("audio",) if self.audio_dir is not None else ())

    def _default(self, key: str):
        return (QUICK if self.quick else DEFAULTS)[key]

    @property
    def n_targets(self) -> int:
        return int(self.n if self.n is not None else self._default("n"))

    @property
    def eval_budget(self) -> int:
        return int(self.budget if self.budget is not None else self._default("budget"))

    @property
    def n_community(self) -> int | None:
        return self.community_limit if self.community_limit is not None else self._default("community_limit")

    def to_dict(self) -> dict:
        d = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
        d.update(test_sets=list(self.resolved_test_sets), n=self.n_targets, budget=self.eval_budget)
        d["methods"] = list(self.methods)
        d["community_limit"] = self.n_community
        return d


@dataclass
class EvalRun:
    """What a run produced: per-target records, the floors, the summary and the files written."""

    config: dict
    setup: dict
    methods: list[str]
    skipped: dict[str, str]
    targets: dict[str, list[str]]
    records: list[dict]
    floors: list[dict]
    summary: dict = field(default_factory=dict)
    win_rates: dict = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    markdown: str = ""


# ---------------------------------------------------------------------------------------------------
# set-up
class _Setup:
    """The model, tier, render settings and nearest-neighbour index of a run; methods skipped and why."""

    def __init__(self, cfg: EvalConfig):
        self.skipped: dict[str, str] = {}
        from synthmatch.inference.pipeline import ModelChoice, choose_model

        # the model methods need a model; without them none is loaded
        wanted = any(m in cfg.methods for m in MODEL_METHODS)
        hint = "leave --tier out or evaluate without the model methods"
        model = (
            choose_model(cfg.checkpoint_path() if cfg.checkpoint else None, cfg.tier, hint)
            if wanted
            else ModelChoice.without_model(cfg.tier)
        )
        self.predictor, self.model_path = model.predictor, model.path
        self.tier, self.sample_rate = model.tier, model.sample_rate
        if wanted and model.predictor is None:
            reason = "no model: pass -c CHECKPOINT; no bundled default model is installed"
            for m in MODEL_METHODS:
                if m in cfg.methods:
                    self.skipped[m] = reason
        # whole notes: the model sees its own window of each target, matching and scoring all of it
        self.duration_s, self.note_duration_s = float(cfg.max_seconds), min(TARGET_NOTE_S, cfg.max_seconds)
        cap = QUICK["max_duration_s"] if cfg.quick else None
        if cap is not None and self.duration_s > cap:
            self.note_duration_s = self.note_duration_s * cap / self.duration_s
            self.duration_s = cap
        self.nn: NearestNeighbour | None = None
        if "nn" in cfg.methods:
            if cfg.train_data is None:
                self.skipped["nn"] = "no training set: pass --train-data FILE.h5"
            else:
                self.nn = NearestNeighbour(cfg.train_data, progress=cfg.progress)
        self.index = None
        if "candidates" in cfg.methods and "candidates" not in self.skipped:
            from synthmatch.inference.pipeline import MIN_CANDIDATE_EVALS
            from synthmatch.inference.retrieval import RetrievalIndex, default_index_path

            if cfg.eval_budget < MIN_CANDIDATE_EVALS:
                self.skipped["candidates"] = (
                    f"the budget ({cfg.eval_budget}) is below {MIN_CANDIDATE_EVALS}, the least several candidates need"
                )
            elif (path := default_index_path()) is not None:
                index = RetrievalIndex.load(path)
                self.index = index if index.tier == self.tier else None
        self.methods = [m for m in cfg.methods if m not in self.skipped]
        for m, reason in self.skipped.items():
            log.warning("method %s skipped: %s", m, reason)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {
            "tier": self.tier,
            "sample_rate": self.sample_rate,
            "duration_s": round(self.duration_s, 4),
            "note_duration_s": round(self.note_duration_s, 4),
            "model": str(self.model_path) if self.predictor is not None else None,
        }
        if self.nn is not None:
            d["train_data"] = {
                "path": str(self.nn.path),
                "examples": len(self.nn),
                "features": self.nn.source,
                "seconds_to_index": round(self.nn.seconds_to_index, 2),
            }
        return d


def _load_targets(cfg: EvalConfig, setup: _Setup) -> dict[str, list[Target]]:
    from synthmatch.evaluation.testsets import audio_targets, community_targets, in_domain_targets

    out: dict[str, list[Target]] = {}
    kw: dict[str, Any] = {"sample_rate": setup.sample_rate}
    for name in cfg.resolved_test_sets:
        t0 = time.perf_counter()
        if name == "in_domain":
            targets = in_domain_targets(
                cfg.n_targets,
                setup.tier,
                duration_s=setup.duration_s,
                note_duration_s=setup.note_duration_s,
                **kw,
            )
        elif name == "community":
            targets = community_targets(
                setup.tier,
                duration_s=setup.duration_s,
                note_duration_s=setup.note_duration_s,
                limit=cfg.n_community,
                **kw,
            )
        else:
            assert cfg.audio_dir is not None  # __post_init__: the audio set needs --audio-dir
            targets = audio_targets(cfg.audio_dir, max_duration_s=max(setup.duration_s, 0.1), **kw)
        if not targets:
            log.warning("test set %s has no usable targets; left out", name)
            continue
        log.info("test set %s: %d targets (%.1f s)", name, len(targets), time.perf_counter() - t0)
        out[name] = targets
    return out


# ---------------------------------------------------------------------------------------------------
# one target
class _Evaluator:
    def __init__(self, cfg: EvalConfig, setup: _Setup, renderer):
        from synthmatch.datagen.sample import PresetSampler
        from synthmatch.inference.refine import RefineConfig

        self.cfg, self.setup, self.renderer = cfg, setup, renderer
        self.budget = cfg.eval_budget
        self.init = Preset.init()
        self.random_sampler = PresetSampler(setup.tier, seed=RANDOM_SEED + cfg.seed)
        self.search_sampler = PresetSampler(setup.tier, seed=RANDOM_SEARCH_SEED + cfg.seed)
        self.refine_cfg = RefineConfig(max_evals=self.budget, timeout_s=REFINE_TIMEOUT_S, seed=cfg.seed)

    # -- methods ------------------------------------------------------------------------------
    def _match(self, start: Preset, tier: int, target: Target, note: int, refine: bool, source: str):
        """A start matched as `synthmatch infer` matches it (refined with the budget, or only finished)."""
        from synthmatch.inference.match import MatchTarget, match_preset

        t0 = time.perf_counter()
        mt = MatchTarget.of(target.audio, target.sample_rate, note, target.note_estimate_s, name=target.name)
        m = match_preset(
            start,
            tier,
            mt,
            self.renderer,
            refine=self.refine_cfg if refine else None,
            start_source=source,
        )
        record = m.as_dict()
        info: dict[str, Any] = {k: record[k] for k in ("level", "final_tuning", "fallback") if k in record}
        history = None
        ri = m.refine
        if refine and ri is not None and not ri.skipped:
            r = ri.info
            keep = ("n_params", "initial_loss", "final_loss", "improved", "stop_reason", "generations")
            info.update({k: r[k] for k in (*keep, "popsize", "template") if k in r})
            history = refine_history(ri)
        return MethodResult(
            m.preset, renders=m.renders, seconds=time.perf_counter() - t0, history=history, info=info
        )

    def _candidates(self, target: Target, note: int, cache: dict) -> MethodResult:
        """`infer --candidates` at this budget: the best of the candidates (the bundled index's neighbours
        among the starts when there is one)."""
        from synthmatch.inference.candidates import (
            Start,
            alternative_starts,
            match_candidates,
            neighbour_starts,
        )
        from synthmatch.inference.match import POST_RENDERS, MatchTarget, match_preset
        from synthmatch.inference.pipeline import ALTERNATIVE_STARTS, DEFAULT_CANDIDATES, NEIGHBOUR_STARTS

        prediction = self._prediction(target, note, cache)
        t0 = time.perf_counter()
        mt = MatchTarget.of(target.audio, target.sample_rate, note, target.note_estimate_s, name=target.name)
        starts = [Start(prediction.preset, "model", "model", prediction.probabilities)]
        starts += alternative_starts(
            prediction.preset, prediction.probabilities, prediction.tier, ALTERNATIVE_STARTS
        )
        starts += neighbour_starts(self.setup.index, target.audio, target.sample_rate, NEIGHBOUR_STARTS)
        starts.append(Start(self.init, "init", "init"))
        result = match_candidates(
            starts, prediction.tier, mt, self.renderer, self.refine_cfg, DEFAULT_CANDIDATES
        )
        if not result.candidates:  # every start silent: init with what is left of the budget
            left = self.budget - result.renders
            cfg = replace(self.refine_cfg, max_evals=left) if left >= POST_RENDERS + 6 else None
            m = match_preset(self.init, prediction.tier, mt, self.renderer, refine=cfg, start_source="init")
            return MethodResult(
                m.preset, renders=result.renders + m.renders, seconds=time.perf_counter() - t0
            )
        best = result.best
        info = {"start": best.start.source, "candidates": len(result.candidates)}
        ri = best.match.steps.refine
        history = refine_history(ri) if ri is not None and not ri.skipped else None
        return MethodResult(
            best.match.preset,
            renders=result.renders,
            seconds=time.perf_counter() - t0 + cache["prediction_s"],
            history=history,
            info=info,
        )

    def _prediction(self, target: Target, note: int, cache: dict):
        if "prediction" not in cache:
            assert self.setup.predictor is not None  # _Setup skips the model methods without a model
            p0 = time.perf_counter()
            cache["prediction"] = self.setup.predictor.predict(target.audio, target.sample_rate, note)
            cache["prediction_s"] = time.perf_counter() - p0
        return cache["prediction"]

    def choose(self, method: str, target: Target, index: int, note: int, cache: dict) -> MethodResult:
        t0 = time.perf_counter()
        if method == "init":
            return MethodResult(self.init, seconds=time.perf_counter() - t0)
        if method == "random":
            preset = self.random_sampler.sample(index).preset
            return MethodResult(preset, seconds=time.perf_counter() - t0, info={"index": index})
        if method == "nn":
            nn = self.setup.nn
            assert nn is not None  # _Setup skips "nn" without a training set
            row, dist = nn.query(target.audio, target.sample_rate)
            result = self._match(nn.preset(row), self.setup.tier, target, note, False, "preset")
            result.info.update(row=row, embedding_distance=round(dist, 4), name=nn.ds.name(row))
            result.seconds += 0.0
            return result
        if method in ("model", "model_cmaes"):
            prediction = self._prediction(target, note, cache)
            result = self._match(
                prediction.preset, prediction.tier, target, note, method == "model_cmaes", "model"
            )
            result.seconds += cache["prediction_s"]
            return result
        if method == "candidates":
            return self._candidates(target, note, cache)
        if method == "cmaes":
            return self._match(self.init, self.setup.tier, target, note, True, "init")
        if method == "random_search":
            return random_search(
                target.audio,
                target.sample_rate,
                self.renderer,
                self.search_sampler,
                index * self.budget,
                self.budget,
                midi_note=note,
                note_duration_s=target.note_estimate_s,
                duration_s=target.duration_s,
            )
        raise ValueError(f"unknown method {method!r}")

    # -- scoring ------------------------------------------------------------------------------
    def run_target(self, target: Target, index: int) -> tuple[list[dict], dict | None, dict[str, np.ndarray]]:
        """Records of every method on one target, its noise-floor record, and the matches' audio.

        `index` numbers the target across all test sets; it picks the random baselines' presets.
        """
        from synthmatch.audio.pitch import FALLBACK_MIDI_NOTE, estimate_pitch

        note = int(target.midi_note if target.midi_note is not None else FALLBACK_MIDI_NOTE)
        target_pitch = estimate_pitch(target.audio, target.sample_rate)
        sr = target.sample_rate
        floor = None
        if target.floor_audio is not None:
            floor = {
                "target": target.name,
                "test_set": target.test_set,
                "metrics": audio_metrics(target.audio, target.floor_audio, sr, target_pitch=target_pitch),
            }
        chosen: dict[str, MethodResult] = {}
        records: dict[str, dict] = {}
        cache: dict = {}
        for method in self.setup.methods:
            rec: dict[str, Any] = {"target": target.name, "test_set": target.test_set, "method": method}
            records[method] = rec
            try:
                chosen[method] = res = self.choose(method, target, index, note, cache)
            except Exception as exc:  # one failing method must not stop the benchmark
                rec["error"] = f"{type(exc).__name__}: {exc}"
                log.warning("%s on %s failed: %s", method, target.name, rec["error"])
                continue
            rec.update(seconds=round(res.seconds, 4), renders=res.renders, info=res.info)
            if res.history:
                rec["history"] = [[e, round(v, 5)] for e, v in res.history]

        def score(audio: np.ndarray) -> dict[str, float]:
            return audio_metrics(target.audio, audio, sr, target_pitch=target_pitch)

        names = list(chosen)
        # the sound the user gets: each exported preset on a fresh Synth, the key held for the true time
        rendered = self.renderer.render_batch(
            [chosen[m].preset for m in names],
            note,
            min(target.note_duration_s, target.duration_s),
            target.duration_s,
            postprocess=score,
            fresh=True,
        )
        audio: dict[str, np.ndarray] = {}
        for m, r in zip(names, rendered):
            rec = records[m]
            if not r.ok:
                rec["error"] = f"scoring render failed: {r.error}"
                log.warning("%s on %s: %s", m, target.name, rec["error"])
                continue
            metrics = dict(r.value)
            if target.truth_vector is not None:
                metrics.update(
                    parameter_metrics(target.truth_vector, chosen[m].preset.to_vector(self.setup.tier))
                )
            rec["metrics"] = metrics
            audio[m] = r.audio
        return [records[m] for m in self.setup.methods], floor, audio


# ---------------------------------------------------------------------------------------------------
# the run
def run_eval(cfg: EvalConfig) -> EvalRun:
    """Run every method on every test set; write the Markdown table, the JSON and the plots.

    Returns:
        EvalRun with the per-target records, the summary and `paths` of the files written.
    """
    import torch
    from tqdm import tqdm

    from synthmatch.evaluation import report, stats
    from synthmatch.synth.render import Renderer

    t_start = time.perf_counter()
    setup = _Setup(cfg)
    if not setup.methods:
        raise ConfigError(
            "every method requested was skipped: " + "; ".join(f"{k}: {v}" for k, v in setup.skipped.items())
        )
    if cfg.workers:
        torch.set_num_threads(cfg.workers)  # the model shares the cores with the render threads
    sets = _load_targets(cfg, setup)
    if not sets:
        raise ConfigError("no test set has any usable target")
    records: list[dict] = []
    floors: list[dict] = []
    grid: dict[str, list[dict]] = {}
    total = sum(len(v) for v in sets.values())
    with Renderer(sample_rate=setup.sample_rate, n_threads=cfg.workers) as renderer:
        ev = _Evaluator(cfg, setup, renderer)
        bar = tqdm(total=total, desc="evaluating", unit="target", disable=not cfg.progress)
        k = 0  # runs over all test sets: every target gets its own random presets
        for set_name, targets in sets.items():
            for i, target in enumerate(targets):
                t0 = time.perf_counter()
                recs, floor, audio = ev.run_target(target, k)
                k += 1
                if not cfg.progress:  # no progress bar (not a terminal): one line per target instead
                    done = k  # a disabled tqdm does not count
                    log.info(
                        "target %d/%d %s/%s: %.1f s",
                        done,
                        total,
                        set_name,
                        target.name,
                        time.perf_counter() - t0,
                    )
                records.extend(recs)
                if floor is not None:
                    floors.append(floor)
                if i < cfg.grid_targets:
                    grid.setdefault(set_name, []).append(
                        {"name": target.name, "target": target.audio, "matches": audio}
                    )
                bar.update(1)
        bar.close()
    if setup.nn is not None:
        setup.nn.close()
    run = EvalRun(
        config=cfg.to_dict(),
        setup={
            **setup.to_dict(),
            "seconds": round(time.perf_counter() - t_start, 2),
            "machine": report.machine_info(),
        },
        methods=setup.methods,
        skipped=dict(setup.skipped),
        targets={k: [t.name for t in v] for k, v in sets.items()},
        records=records,
        floors=floors,
    )
    run.summary = stats.summarize(run.records, run.floors, run.methods, list(sets))
    run.win_rates = {s: stats.win_rates_for(run.records, run.methods, s) for s in sets}
    run.paths = report.write_outputs(run, Path(cfg.output), grid, setup.sample_rate)
    return run
