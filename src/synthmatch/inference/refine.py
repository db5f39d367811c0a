"""CMA-ES refinement: move a preset's audible continuous controls until its render matches a target.

    result = refine(start_preset, target_audio, sample_rate, midi_note=57, note_duration_s=1.2,
                    duration_s=2.0, tier=2, config=RefineConfig(max_evals=500, timeout_s=60))
    result.preset, result.info["initial_loss"], result.info["final_loss"]

What is searched (`search_space`): the tier's continuous controls that can be heard given the start's
switches and categoricals, in normalized [0, 1] units; at tier 3 also the amounts of the start's
modulation connections. Categoricals, switches, integer controls (transposes, effect order) and the
routing stay as they are. Left out, with the reason recorded: everything when no oscillator or sample is
on, modules switched off or fed by nothing, envelopes 2-6 / LFOs / random LFOs / macros that modulate
nothing (everything below tier 3), unison settings of 1-voice oscillators, distortion and spectral-morph
amounts whose type is None, the frame of a one-frame wavetable, formant controls of non-formant filters,
effect rates in tempo-sync mode, overall gain (the objective compares at equal loudness), panning and
stereo width (it compares mono mixes).

The objective is `audio.distances.MultiScaleLogMel(target, loudness_normalize=True)`: the multi-scale
log-mel L1 that evaluation reports as `mel_l1`, with the target's spectra computed once. It runs in the
render worker threads right after each render (`Renderer.render_batch(postprocess=...)`), about 6 ms per
2 s candidate against 20-150 ms for the render.

Vita's run-to-run noise (VITA.md 3): two renders of the same preset differ because oscillators start at
a random phase and because Vital glides every control from its previous value. While searching, every
candidate therefore has `osc_N_random_phase` and `sample_random_phase` at 0, and each render is preceded by
a discarded `settle_s` render of the same candidate so the glides arrive. Both are measured in
benchmarks/refine.py and docs/BENCHMARKS.md: on held-out targets the median difference between two scores
of one candidate drops from 0.007 to 0.000002, though a tail remains (p90 0.05, max 0.4, against 0.06
and 0.09 without). The start's random-phase settings are restored in the result; a final
check renders start and best with them restored (`verify_renders` each) and keeps the start unless the
best is better there too, so the result is never worse than the start in the sound the user gets.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from synthmatch.errors import ConfigError
from synthmatch.synth import _vita
from synthmatch.synth.params import ParamSpace, param_space
from synthmatch.synth.presets import Modulation, Preset

log = logging.getLogger(__name__)

__all__ = [
    "RefineConfig",
    "RefineResult",
    "SearchSpace",
    "search_space",
    "inaudible_reason",
    "refine",
    "FAILED_LOSS",
]

# Loss given to a candidate that failed to render, produced non-finite audio or is silent.
FAILED_LOSS = 1e3
# RMS below which a candidate counts as silent (-100 dBFS; Vital's silent renders sit near -240 dBFS).
SILENT_RMS = 1e-5

_RANDOM_PHASE = ("osc_1_random_phase", "osc_2_random_phase", "osc_3_random_phase", "sample_random_phase")
_SOUND_SOURCES = ("osc_1", "osc_2", "osc_3", "sample")
_EFFECTS = ("chorus", "compressor", "delay", "distortion", "eq", "flanger", "phaser", "reverb", "filter_fx")
_UNISON_RE = re.compile(
    r"^osc_\d_(unison_detune|unison_blend|detune_power|detune_range|stereo_spread|frame_spread)$"
)
_STEREO_RE = re.compile(r"(_pan|_stereo_spread)$|^stereo_routing$")
_GAIN = {
    "volume": "overall gain: the objective compares the sounds at equal loudness",
    "voice_amplitude": "overall gain: the objective compares the sounds at equal loudness",
}
# rate control -> its sync control: the rate is unused unless sync is "Seconds" (0)
_SYNCED_RATE = {
    "chorus_frequency": "chorus_sync",
    "flanger_frequency": "flanger_sync",
    "phaser_frequency": "phaser_sync",
    "delay_frequency": "delay_sync",
    "delay_aux_frequency": "delay_aux_sync",
    **{f"lfo_{i}_frequency": f"lfo_{i}_sync" for i in range(1, 9)},
    **{f"random_{i}_frequency": f"random_{i}_sync" for i in range(1, 5)},
}


@dataclass(frozen=True)
class RefineConfig:
    """Settings of a refinement (`synthmatch infer --refine ...`).

    Attributes:
        max_evals: evaluations (renders scored against the target), the start and the final check included.
        timeout_s: wall-clock limit; the search stops before a generation that would overrun it.
        sigma: CMA-ES initial step size in normalized [0, 1] units.
        popsize: candidates per generation (default CMA-ES's 4 + 3 ln n, rounded up to a multiple of the
            render threads).
        seed: CMA-ES random seed (same seed, same start, same target: same search).
        fixed_phase: hold random oscillator phase at 0 while searching (the noise-floor method).
        settle_s: seconds rendered and discarded before each candidate's render (see the module doc).
        verify_renders: renders each of start and best with random phase restored in the final check.
        align_pitch: before CMA-ES, when the start sounds at another pitch than the target, try shifting
            every oscillator's and the sample's transpose by the difference (and an octave either side,
            against octave errors of the pitch estimate); keep the shift that lowers the loss. Transposes
            are integers CMA-ES does not search, so a start a few semitones off cannot be fixed otherwise.
            Costs up to 3 evaluations of the budget.
    """

    max_evals: int = 500
    timeout_s: float = 60.0
    sigma: float = 0.1
    popsize: int | None = None
    seed: int = 0
    fixed_phase: bool = True
    settle_s: float = 0.25
    verify_renders: int = 2
    align_pitch: bool = True

    def __post_init__(self) -> None:
        if self.max_evals < 1:
            raise ConfigError(f"--refine-evals must be >= 1, got {self.max_evals}")
        if not self.timeout_s > 0:
            raise ConfigError(f"--refine-timeout must be > 0 seconds, got {self.timeout_s}")
        if not 0 < self.sigma <= 0.5:
            raise ConfigError(f"--refine-sigma must be in (0, 0.5] (normalized units), got {self.sigma}")
        if self.popsize is not None and self.popsize < 2:
            raise ConfigError(f"popsize must be >= 2, got {self.popsize}")
        if not 0 <= self.settle_s <= 2:
            raise ConfigError(f"settle_s must be in [0, 2] seconds, got {self.settle_s}")
        if self.verify_renders < 0:
            raise ConfigError(f"verify_renders must be >= 0, got {self.verify_renders}")


@dataclass
class RefineResult:
    """The refined preset (never worse than the start) and what happened."""

    preset: Preset
    info: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------
# what is searched
@dataclass(frozen=True)
class SearchSpace:
    """The coordinates CMA-ES moves: controls (normalized) and modulation amounts ((amount + 1) / 2)."""

    controls: tuple[str, ...]
    mod_slots: tuple[int, ...]  # indices into the preset's modulations whose amount is searched
    skipped: dict[str, str]  # control -> why it is not searched
    space: ParamSpace = field(repr=False, compare=False)

    @property
    def size(self) -> int:
        return len(self.controls) + len(self.mod_slots)

    @property
    def names(self) -> list[str]:
        return list(self.controls) + [f"modulation_{i + 1}_amount" for i in self.mod_slots]

    def encode(self, preset: Preset) -> np.ndarray:
        """(size,) normalized coordinates of a preset."""
        ps = self.space
        x = [ps[n].to_unit(preset.values.get(n, ps[n].default)) for n in self.controls]
        x += [(float(np.clip(preset.modulations[i].amount, -1, 1)) + 1) / 2 for i in self.mod_slots]
        return np.clip(np.asarray(x, np.float64), 0.0, 1.0)

    def decode(self, x: np.ndarray, base: Preset) -> Preset:
        """`base` with the searched coordinates set from x (clipped to [0, 1])."""
        ps = self.space
        x = np.clip(np.nan_to_num(np.asarray(x, np.float64), nan=0.5), 0.0, 1.0)
        values = dict(base.values)
        for n, u in zip(self.controls, x[: len(self.controls)]):
            values[n] = ps[n].from_unit(u)
        mods = base.modulations
        if self.mod_slots:
            mods = list(mods)
            for i, u in zip(self.mod_slots, x[len(self.controls) :]):
                mods[i] = replace(mods[i], amount=float(u) * 2 - 1)
            mods = tuple(mods)
        # replace() skips with_values' name checks: every name here comes from the tier space
        return replace(base, values=values, modulations=mods)


def _n_keyframes(preset: Preset, osc_index: int) -> int:
    tables = preset.data.get("wavetables") or []
    if osc_index >= len(tables):
        return 1
    try:
        return sum(len(c.get("keyframes", [])) for g in tables[osc_index]["groups"] for c in g["components"])
    except (KeyError, TypeError):
        return 2  # unknown layout: assume the frame matters


def _is_on(preset: Preset, name: str) -> bool:
    return preset.values.get(name, 0.0) >= 0.5


def _fed_filters(preset: Preset) -> set[str]:
    """Filters that receive a signal: an enabled oscillator/sample routed to them, or serial routing."""
    fed: set[str] = set()
    for src in _SOUND_SOURCES:
        if not _is_on(preset, f"{src}_on"):
            continue
        dest = int(round(preset.values.get(f"{src}_destination", 0)))
        if dest in (0, 2):
            fed.add("filter_1")
        if dest in (1, 2):
            fed.add("filter_2")
    if fed and (_is_on(preset, "filter_1_filter_input") or _is_on(preset, "filter_2_filter_input")):
        fed |= {"filter_1", "filter_2"}
    return fed


def _search_reason(name: str, ps: ParamSpace) -> str | None:
    """Audible controls refinement still leaves alone, and why."""
    if ps[name].integer:
        return "integer control (transpose, effect order): held fixed like the categoricals"
    if name in _GAIN:
        return _GAIN[name]
    if _STEREO_RE.search(name):
        return "stereo placement: the objective compares mono mixes"
    if name in _RANDOM_PHASE:
        return "random phase: held at 0 while searching (noise-floor method), restored afterwards"
    return None


def _inaudible(
    name: str, preset: Preset, tier: int, sources: set[str], fed: set[str], ps: ParamSpace
) -> str | None:
    if not any(_is_on(preset, f"{src}_on") for src in _SOUND_SOURCES):
        return "no oscillator or sample is on: the preset is silent"
    module = ps[name].module
    if module.startswith(("env_", "lfo_", "random_", "macro_control_")) and module != "env_1":
        if tier < 3:
            return f"{module} modulates nothing below tier 3"
        if module not in sources:
            return f"{module} modulates nothing in this preset"
    if module in ("osc_1", "osc_2", "osc_3", "sample", "filter_1", "filter_2", *_EFFECTS):
        if not _is_on(preset, f"{module}_on"):
            return f"{module} is off"
    if module in ("filter_1", "filter_2") and module not in fed:
        return f"nothing is routed into {module}"
    if module.startswith("osc_"):
        idx = int(module[-1])
        if _UNISON_RE.match(name) and preset.values.get(f"{module}_unison_voices", 1) <= 1:
            return f"{module} has one unison voice"
        if name == f"{module}_phase" and preset.values.get(f"{module}_random_phase", 0.0) > 0:
            return f"{module} starts at a random phase"
        if (
            re.search(r"_distortion_(amount|phase|spread)$", name)
            and preset.values.get(f"{module}_distortion_type", 0) < 0.5
        ):
            return f"{module} distortion type is None"
        if (
            re.search(r"_spectral_morph_(amount|spread)$", name)
            and preset.values.get(f"{module}_spectral_morph_type", 0) < 0.5
        ):
            return f"{module} spectral morph type is None"
        if name.endswith("_wave_frame") and _n_keyframes(preset, idx - 1) <= 1:
            return f"{module} wavetable has a single frame"
    if "_formant_" in name and module.startswith("filter"):
        model = ps[f"{module}_model"].option_label(preset.values.get(f"{module}_model", 0))
        if model != "Formant":
            return f"{module} model is {model}, not Formant"
    if name in _SYNCED_RATE:
        sync = _SYNCED_RATE[name]
        if sync in ps and preset.values.get(sync, ps[sync].default) >= 0.5:
            return f"{sync} is tempo-synced: the rate in seconds is unused"
    if name.startswith("distortion_filter_") and preset.values.get("distortion_filter_order", 0) < 0.5:
        return "distortion filter order is None"
    return None


def _audibility_context(
    preset: Preset, tier: int, ps: ParamSpace
) -> tuple[set[str], set[str], list[Modulation]]:
    kept_mods, _ = preset.routing_for_tier(ps.tier(tier), ps)
    return {m.source for m in kept_mods}, _fed_filters(preset), kept_mods


def inaudible_reason(name: str, preset: Preset, tier: int = 3, space: ParamSpace | None = None) -> str | None:
    """Why control `name` cannot be heard in `preset` at `tier` (module off, nothing routed into it, one
    unison voice, type None, modulates nothing...), or None when it can."""
    ps = space or param_space()
    sources, fed, _ = _audibility_context(preset, tier, ps)
    return _inaudible(name, preset, tier, sources, fed, ps)


def search_space(preset: Preset, tier: int, space: ParamSpace | None = None) -> SearchSpace:
    """The audible continuous controls of `preset` at `tier` (and its modulation amounts at tier 3)."""
    ps = space or param_space()
    ts = ps.tier(tier)
    sources, fed, kept_mods = _audibility_context(preset, tier, ps)
    kept_pairs = {(m.source, m.destination) for m in kept_mods}
    controls, skipped = [], {}
    for name in ts.continuous:
        reason = _search_reason(name, ps) or _inaudible(name, preset, tier, sources, fed, ps)
        if reason is None:
            controls.append(name)
        else:
            skipped[name] = reason
    mod_slots = (
        tuple(i for i, m in enumerate(preset.modulations) if (m.source, m.destination) in kept_pairs)
        if ts.has_modulation
        else ()
    )
    return SearchSpace(tuple(controls), mod_slots, skipped, ps)


def _fixed_phase(preset: Preset) -> Preset:
    return replace(preset, values={**preset.values, **{n: 0.0 for n in _RANDOM_PHASE}})


_TRANSPOSES = ("osc_1_transpose", "osc_2_transpose", "osc_3_transpose", "sample_transpose")


def _transposed(preset: Preset, semitones: int) -> Preset:
    """`preset` with every oscillator's and the sample's transpose moved by `semitones` (within +-48)."""
    return preset.with_values(
        **{n: float(np.clip(preset.values.get(n, 0.0) + semitones, -48, 48)) for n in _TRANSPOSES}
    )


def _restore_phase(preset: Preset, start: Preset) -> Preset:
    return replace(preset, values={**preset.values, **{n: start.values.get(n, 0.0) for n in _RANDOM_PHASE}})


# ---------------------------------------------------------------------------------------------------
# the search
def refine(
    start: Preset,
    target: np.ndarray,
    sample_rate: int,
    *,
    midi_note: int,
    note_duration_s: float,
    duration_s: float | None = None,
    tier: int = 2,
    config: RefineConfig = RefineConfig(),
    renderer=None,
    n_threads: int | None = None,
    progress: bool = False,
    callback: Callable[[dict], None] | None = None,
) -> RefineResult:
    """Refine `start` towards `target` with CMA-ES; never returns a worse preset than `start`.

    Args:
        start: the starting preset (a prediction, Vital's init preset, a user's .vital).
        target: (N,) mono target audio at `sample_rate`.
        midi_note: note every candidate is rendered at (the target's pitch).
        note_duration_s: seconds the key is held.
        duration_s: seconds rendered (default: the target's length).
        tier: parameter space searched (the model's tier, or `--tier` without a model).
        config: budget, timeout, step size and the noise-floor settings.
        renderer: a `synth.render.Renderer` at `sample_rate` to reuse (default: one is made and closed).
        n_threads: render threads when no renderer is given (default: every core).
        progress: show a progress bar.
        callback: called after the start's evaluation and after each generation with
            `{"n_evals", "budget", "initial_loss", "best_loss", "elapsed_s"}` (e.g. a web page's progress bar).
    Returns:
        RefineResult(preset, info). info holds initial_loss, final_loss, n_evals, elapsed_s, evals_per_s,
        improved, stop_reason and more; `{"skipped": True, "reason": ...}` when vita cannot be imported.
    """
    try:
        _vita.import_vita()
    except _vita.VitaUnavailable as exc:
        log.warning("refinement skipped: %s", exc)
        return RefineResult(start, {"skipped": True, "reason": str(exc)})
    from synthmatch.audio.distances import MultiScaleLogMel
    from synthmatch.synth.render import Renderer

    t0 = time.perf_counter()
    target = np.asarray(target, np.float32).reshape(-1)
    if target.size == 0 or not np.all(np.isfinite(target)):
        raise ValueError("refine needs a finite, non-empty target")
    duration_s = float(duration_s if duration_s is not None else len(target) / sample_rate)
    own_renderer = renderer is None
    if own_renderer:
        renderer = Renderer(sample_rate=sample_rate, n_threads=n_threads)
    elif renderer.sample_rate != sample_rate:
        raise ValueError(f"renderer runs at {renderer.sample_rate} Hz but the target is at {sample_rate} Hz")
    try:
        objective = MultiScaleLogMel(target, sample_rate, loudness_normalize=True)
        return _Search(
            start, objective, renderer, midi_note, note_duration_s, duration_s, tier, config, progress, t0
        ).run(callback)
    finally:
        if own_renderer:
            renderer.close()


class _Search:
    def __init__(self, start, objective, renderer, midi_note, note_s, duration_s, tier, cfg, progress, t0):
        self.start = start
        self.objective = objective
        self.renderer = renderer
        self.midi_note = int(midi_note)
        self.note_s = float(min(note_s, duration_s))
        self.duration_s = duration_s
        self.cfg = cfg
        self.progress = progress
        self.t0 = t0
        self.base = _fixed_phase(start) if cfg.fixed_phase else start
        # from the start: a phase control is inert when the exported preset randomises the phase
        self.space = search_space(start, tier)
        self.tier = tier
        self.n_evals = 0
        self.history: list[float] = []
        self.history_evals: list[int] = []  # evaluations spent at each history point
        self.last_results: list = []  # the RenderResults of the latest evaluate() call

    def _loss(self, audio: np.ndarray) -> float:
        if audio is None or audio.size == 0 or not np.all(np.isfinite(audio)):
            return FAILED_LOSS
        if float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) < SILENT_RMS:
            # at equal loudness silence scores deceptively well against a short decaying target
            # (its quiet frames sit at the log floor too): a silent candidate is never a match
            return FAILED_LOSS
        return float(self.objective(audio))

    def evaluate(self, presets: Sequence[Preset], settle: bool = True) -> list[float]:
        results = self.renderer.render_batch(
            presets,
            self.midi_note,
            self.note_s,
            self.duration_s,
            settle_s=self.cfg.settle_s if settle else 0.0,
            postprocess=self._loss,
        )
        self.n_evals += len(presets)
        self.last_results = results
        losses = []
        for r in results:
            if not r.ok:
                log.debug("candidate failed to render: %s", r.error)
            losses.append(float(r.value) if r.ok and r.value is not None else FAILED_LOSS)
        return losses

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def _report(self, callback, budget: int, initial_loss: float, best_loss: float) -> None:
        if callback is not None:
            callback(
                {
                    "n_evals": self.n_evals,
                    "budget": budget,
                    "initial_loss": float(initial_loss),
                    "best_loss": float(best_loss),
                    "elapsed_s": round(self.elapsed(), 3),
                }
            )

    def _align_pitch(self, start_render, start_loss: float) -> tuple[Preset | None, float, dict]:
        """Shift the start's transposes so it sounds at the target's pitch (see RefineConfig.align_pitch).

        Returns (best shifted preset or None, its loss, a summary for the info dict).
        """
        from synthmatch.audio.pitch import estimate_pitch

        sr = self.objective.sample_rate
        target_pitch = estimate_pitch(self.objective.target, sr)
        res = start_render  # the start's own scored render: no second render for its pitch
        info: dict = {"target_midi": None, "start_midi": None, "shift": 0, "tried": []}
        if not res.ok or not target_pitch.pitched:
            return None, start_loss, info
        start_pitch = estimate_pitch(res.audio, sr)
        info["target_midi"] = round(float(target_pitch.midi), 3)
        if not start_pitch.pitched:
            return None, start_loss, info
        info["start_midi"] = round(float(start_pitch.midi), 3)
        d = int(round(target_pitch.midi - start_pitch.midi))
        if d == 0:
            return None, start_loss, info
        shifts = [s for s in dict.fromkeys((d, d - 12, d + 12)) if s != 0 and abs(s) <= 48]
        candidates = [_transposed(self.base, s) for s in shifts]
        losses = self.evaluate(candidates)
        info["tried"] = [{"shift": s, "loss": round(float(v), 5)} for s, v in zip(shifts, losses)]
        i = int(np.argmin(losses))
        if losses[i] < start_loss:
            info["shift"] = shifts[i]
            return candidates[i], float(losses[i]), info
        return None, start_loss, info

    def run(self, callback: Callable[[dict], None] | None = None) -> RefineResult:
        import cma

        cfg, space = self.cfg, self.space
        x0 = space.encode(self.base)
        restore_check = (
            cfg.fixed_phase
            and cfg.verify_renders > 0
            and any(self.start.values.get(n, 0.0) > 0 for n in _RANDOM_PHASE)
        )
        reserve = 2 * cfg.verify_renders if restore_check else 0
        budget = max(1, cfg.max_evals - reserve)
        initial_loss = self.evaluate([self.base])[0]
        best_x, best_loss = x0.copy(), initial_loss
        self.history.append(best_loss)
        self.history_evals.append(self.n_evals)
        pitch_info = None
        if cfg.align_pitch and budget - self.n_evals >= 3:
            shifted, shifted_loss, pitch_info = self._align_pitch(self.last_results[0], initial_loss)
            if shifted is not None and shifted_loss < best_loss:
                self.base, best_loss = shifted, shifted_loss
                x0 = space.encode(self.base)
                best_x = x0.copy()
            self.history.append(best_loss)
            self.history_evals.append(self.n_evals)
        self._report(callback, budget, initial_loss, best_loss)
        info: dict = {
            "tier": self.tier,
            "n_params": space.size,
            "params": space.names,
            "n_skipped_params": len(space.skipped),
            "sigma": cfg.sigma,
            "fixed_phase": cfg.fixed_phase,
            "settle_s": cfg.settle_s,
            "midi_note": self.midi_note,
            "note_duration_s": round(self.note_s, 4),
            "duration_s": round(self.duration_s, 4),
        }
        if pitch_info is not None:
            info["pitch_alignment"] = pitch_info
        stop_reason = "budget"
        generations = 0
        if space.size == 0:
            stop_reason = "nothing to search"
        else:
            n_threads = self.renderer.n_threads
            popsize = cfg.popsize or (4 + int(3 * math.log(max(space.size, 2))))
            popsize = int(math.ceil(popsize / n_threads) * n_threads)
            opts = {
                "bounds": [0.0, 1.0],
                "popsize": popsize,
                "seed": cfg.seed + 1,  # cma treats seed 0 as "random"
                "verbose": -9,
                "maxfevals": budget,
                "tolfun": 1e-6,
                "tolx": 1e-5,
            }
            if space.size == 1:
                x0 = np.concatenate([x0, [0.5]])  # cma needs >= 2 dimensions: one dummy coordinate
            es = cma.CMAEvolutionStrategy(x0, cfg.sigma, opts)
            info["popsize"] = popsize
            from tqdm import tqdm

            bar = tqdm(total=budget, desc="refining", unit="eval", disable=not self.progress, leave=False)
            bar.update(1)
            gen_s = 0.0
            while True:
                left = budget - self.n_evals
                if left <= 0:
                    stop_reason = "budget"
                    break
                if self.elapsed() + gen_s > cfg.timeout_s:
                    stop_reason = "timeout"
                    break
                if es.stop():
                    stop_reason = "converged"
                    break
                g0 = time.perf_counter()
                xs = es.ask()
                batch = xs[:left]
                losses = self.evaluate([space.decode(x[: space.size], self.base) for x in batch])
                if len(batch) == len(xs):
                    es.tell(xs, losses)
                i = int(np.argmin(losses))
                if losses[i] < best_loss:
                    best_loss, best_x = losses[i], np.asarray(batch[i][: space.size], np.float64).copy()
                self.history.append(best_loss)
                self.history_evals.append(self.n_evals)
                generations += 1
                gen_s = time.perf_counter() - g0
                bar.update(len(batch))
                bar.set_postfix(loss=f"{best_loss:.4f}")
                self._report(callback, budget, initial_loss, best_loss)
            bar.close()
        best = space.decode(best_x, self.base) if space.size else self.base
        improved = best_loss < initial_loss
        final_loss = best_loss
        result_preset = _restore_phase(best, self.start) if cfg.fixed_phase else best
        if not improved:
            result_preset = self.start
        elif restore_check:
            # The user's preset plays with random phase: check the gain holds there too (mean of a few).
            k = cfg.verify_renders
            start_l = self.evaluate([self.start] * k)
            best_l = self.evaluate([result_preset] * k)
            info["verify"] = {
                "start_loss_mean": float(np.mean(start_l)),
                "final_loss_mean": float(np.mean(best_l)),
                "renders_each": k,
            }
            if np.mean(best_l) >= np.mean(start_l):
                log.info("refinement gain did not hold with random phase restored; keeping the start")
                result_preset, improved, final_loss = self.start, False, initial_loss
        elapsed = self.elapsed()
        info.update(
            initial_loss=float(initial_loss),
            final_loss=float(final_loss),
            n_evals=self.n_evals,
            elapsed_s=round(elapsed, 3),
            evals_per_s=round(self.n_evals / elapsed, 3) if elapsed > 0 else None,
            improved=bool(improved),
            generations=generations,
            stop_reason=stop_reason,
            history=[round(h, 5) for h in self.history],
            history_evals=list(self.history_evals),
        )
        return RefineResult(result_preset, info)
