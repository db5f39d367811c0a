"""Sampling training presets: (seed, index, tier) -> Preset, a pure function.

Sampling is kept apart from rendering (`PresetSampler.sample(i)` then `Renderer.render`), and example i
depends only on (seed, i, tier) and the community set, so any example can be regenerated from its index
and a resumed or sharded run reproduces an uninterrupted one exactly.

Every example is the tier projection of its preset (the preset rebuilt from its float32 tier vectors over
the base), so a dataset's stored labels rebuild exactly the preset that was rendered.

Continuous controls are stratified with a blocked Latin hypercube in normalized space: every block of
`block_size` consecutive indices is a Latin hypercube over all continuous controls of the tier (each
control's range cut into block_size strata, one example per stratum, strata shuffled independently per
control). Categoricals are drawn uniformly unless a constraint below says otherwise.

Constraints that keep presets audible (uniform sampling is mostly silent: docs/VITA.md, "Random presets are mostly silent") are data in
`CONSTRAINTS` and `SWITCH_PROBABILITIES`; docs/DATA.md lists them with the measured silence and clipping
rates.

With community presets, a share of the examples are bred from them: module-level crossover of two
parents, interpolation of their continuous values, and mutation. Bred presets are projected onto the
tier's representation (the tier vector over the Basic Shapes base), so their labels describe their sound
exactly.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synthmatch.synth.params import TIERS, ParamSpace, TierSpace, param_space
from synthmatch.synth.presets import MOD_DTYPE, Modulation, ParamVector, Preset, base_preset

log = logging.getLogger(__name__)

__all__ = [
    "PresetSampler",
    "SampledExample",
    "CONSTRAINTS",
    "SWITCH_PROBABILITIES",
    "CATEGORICAL_WEIGHTS",
    "LHS_BLOCK_SIZE",
    "example_rng",
    "example_midi_note",
    "sampling_rules_hash",
]

# Bump when sampling changes in a way the tables below do not show (it is part of every dataset's
# generation fingerprint, so a resumed run never mixes examples drawn by different rules).
SAMPLER_VERSION = 1
LHS_BLOCK_SIZE = 256

# Raw-unit ranges that replace a control's full range, and the chance it is left at its default.
# (lo, hi, p_default); None for lo/hi keeps the control's own bound.
CONSTRAINTS: dict[str, tuple[float | None, float | None, float]] = {
    # global gain sane: about -17 dB .. -2.5 dB (raw 5473 is Vital's default -6 dB)
    "volume": (4000.0, 6000.0, 0.0),
    "voice_amplitude": (0.5, 1.0, 0.5),
    "voice_transpose": (-12.0, 12.0, 0.85),
    "voice_tune": (-0.5, 0.5, 0.7),
    # oscillators: a sane level; pitch within two octaves
    "osc_N_level": (0.5, 1.0, 0.0),
    "osc_N_transpose": (-24.0, 24.0, 0.5),
    "osc_N_tune": (None, None, 0.6),
    "osc_N_pan": (None, None, 0.6),
    "sample_level": (0.3, 1.0, 0.0),
    "sample_transpose": (-24.0, 24.0, 0.5),
    # amplitude envelope short enough to be heard in the render (constraint C4 of docs/DATA.md)
    "env_1_delay": (0.0, 0.3, 0.5),
    "env_1_hold": (0.0, 0.3, 0.5),
    "env_1_attack": (0.0, 0.8, 0.0),
    "env_1_decay": (0.3, None, 0.0),
    "env_1_sustain": (0.2, 1.0, 0.0),
    "env_1_release": (0.0, 1.6, 0.0),
    "env_N_attack_power": (None, None, 0.5),
    "env_N_decay_power": (None, None, 0.5),
    "env_N_release_power": (None, None, 0.5),
    # filters: cutoff >= 82 Hz, mostly wet (C5)
    "filter_N_cutoff": (40.0, 136.0, 0.0),
    "filter_N_mix": (0.5, 1.0, 0.3),
    "filter_fx_cutoff": (40.0, 136.0, 0.0),
    "filter_fx_mix": (0.5, 1.0, 0.3),
    # EQ shelves/passes kept in their own region: a high-pass above a low-pass silences everything
    "eq_low_cutoff": (8.0, 72.0, 0.3),
    "eq_band_cutoff": (40.0, 120.0, 0.3),
    "eq_high_cutoff": (84.0, 136.0, 0.3),
    # spectral morph "Low Pass" at amount 0 and "High Pass" at 1 remove every partial
    "osc_N_spectral_morph_amount": (0.15, 0.85, 0.3),
    # bounded gains against clipping (C6)
    "eq_low_gain": (-6.0, 6.0, 0.0),
    "eq_band_gain": (-6.0, 6.0, 0.0),
    "eq_high_gain": (-6.0, 6.0, 0.0),
    "compressor_low_gain": (-6.0, 6.0, 0.3),
    "compressor_band_gain": (-6.0, 6.0, 0.3),
    "compressor_high_gain": (-6.0, 6.0, 0.3),
    "distortion_drive": (-30.0, 18.0, 0.0),
    "delay_feedback": (0.0, 0.85, 0.0),
}

# Probability that each switch is on. At least one oscillator is always on.
SWITCH_PROBABILITIES: dict[str, float] = {
    "osc_1_on": 0.6,
    "osc_2_on": 0.5,
    "osc_3_on": 0.4,
    "sample_on": 0.15,
    "filter_1_on": 0.5,
    "filter_2_on": 0.3,
    "filter_fx_on": 0.15,
    "chorus_on": 0.2,
    "compressor_on": 0.15,
    "delay_on": 0.2,
    "distortion_on": 0.2,
    "eq_on": 0.2,
    "flanger_on": 0.15,
    "phaser_on": 0.15,
    "reverb_on": 0.25,
}

# Categorical controls drawn from a subset or a skewed distribution: name -> {raw value: weight}.
CATEGORICAL_WEIGHTS: dict[str, dict[int, float]] = {
    # 0-4: filter 1, filter 2, both, effects, direct. 5-13 feed a single effect that is often off.
    "osc_N_destination": {0: 1, 1: 1, 2: 1, 3: 1, 4: 1},
    "sample_destination": {0: 1, 1: 1, 2: 1, 3: 1, 4: 1},
    "osc_N_unison_voices": {
        1: 8,
        2: 1,
        3: 1,
        4: 1,
        5: 0.5,
        6: 0.5,
        7: 1,
        8: 1,
        9: 0.3,
        10: 0.3,
        11: 0.3,
        12: 0.3,
        13: 0.3,
        14: 0.3,
        15: 0.3,
        16: 1,
    },
    "osc_N_distortion_type": {0: 12, **{i: 1 for i in range(1, 13)}},
    "osc_N_spectral_morph_type": {0: 11, **{i: 1 for i in range(1, 12)}},
    "osc_N_midi_track": {1: 19, 0: 1},
    "osc_N_stack_style": {0: 10, **{i: 1 for i in range(1, 11)}},
}

# Spectral morph types that remove partials: on a wave with few harmonics (the sine..triangle region of
# Basic Shapes, wave frame below 128) they silence the oscillator (-55 to -170 dBFS), and High Pass above
# amount 0.6 silences any wave. Where a random example draws one of them outside these limits, the type
# is redrawn from the other types (docs/DATA.md). Values: raw type -> (minimum wave frame, maximum amount).
MORPH_LIMITS: dict[int, tuple[float, float]] = {
    1: (128.0, 1.0),  # Vocode
    6: (128.0, 1.0),  # Random Amplitudes
    8: (128.0, 0.6),  # High Pass
}

GEOMETRIC_MEAN_CONNECTIONS = 6.0
MAX_CONNECTIONS = 20
ACTIVE_DESTINATION_SHARE = 0.8


def _generic(name: str) -> str:
    """osc_2_level -> osc_N_level, filter_1_cutoff -> filter_N_cutoff, env_3_attack_power -> env_N_..."""
    for prefix in ("osc", "filter", "env", "lfo", "random"):
        m = re.match(rf"^{prefix}_(\d)_(.*)$", name)
        if m:
            return f"{prefix}_N_{m.group(2)}"
    return name


def _lookup(table: dict, name: str):
    if name in table:
        return table[name]
    return table.get(_generic(name))


def example_rng(seed: int, index: int, tier: int, stream: int = 0) -> np.random.Generator:
    """The random generator of one example: a pure function of its coordinates.

    Streams: 0 the preset, 1 the Latin hypercube jitter, 2 the MIDI note.
    """
    return np.random.default_rng([int(seed), int(tier), int(index), int(stream)])


def example_midi_note(seed: int, index: int, tier: int, midi_notes: Sequence[int]) -> int:
    """The MIDI note example `index` is rendered at: uniform over `midi_notes`, a pure function."""
    notes = tuple(int(n) for n in midi_notes)
    if not notes:
        raise ValueError("midi_notes is empty")
    return notes[int(example_rng(seed, index, tier, 2).integers(len(notes)))]


def sampling_rules_hash() -> str:
    """A hash of the sampling rules (the tables above and SAMPLER_VERSION), for fingerprints."""
    rules = {
        "version": SAMPLER_VERSION,
        "constraints": CONSTRAINTS,
        "switches": SWITCH_PROBABILITIES,
        "categorical": {k: {str(x): w for x, w in v.items()} for k, v in CATEGORICAL_WEIGHTS.items()},
        "modulation": [GEOMETRIC_MEAN_CONNECTIONS, MAX_CONNECTIONS, ACTIVE_DESTINATION_SHARE],
        "morph_limits": {str(k): v for k, v in MORPH_LIMITS.items()},
    }
    text = json.dumps(rules, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclass
class SampledExample:
    """A sampled preset and where it came from."""

    index: int
    preset: Preset
    source: str  # "random" or "bred"
    parents: tuple[str, ...] = ()


class PresetSampler:
    """Draws example i of a (seed, tier) dataset.

    Args:
        tier: 1, 2 or 3.
        seed: dataset seed.
        community: presets to breed from (sorted by name and content for reproducibility); empty for none.
        community_share: fraction of examples bred from them.
        block_size: Latin hypercube block size (consecutive indices stratified together).
        base: structured base of every example ("basic_shapes": sine/triangle/saw/square wavetable).

    A sampler pickles compactly (the community presets travel as their tier vectors), so it can be
    sent to worker processes.
    """

    def __init__(
        self,
        tier: int,
        seed: int = 0,
        community: Sequence[Preset] = (),
        community_share: float = 0.3,
        block_size: int = LHS_BLOCK_SIZE,
        base: str = "basic_shapes",
        space: ParamSpace | None = None,
    ):
        if tier not in TIERS:
            raise ValueError(f"tier must be 1, 2 or 3, got {tier}")
        if not 0.0 <= community_share <= 1.0:
            raise ValueError(f"community_share must be in [0, 1], got {community_share}")
        if block_size < 2:
            raise ValueError(f"block_size must be >= 2, got {block_size}")
        self.tier = tier
        self.seed = int(seed)
        self.base_name = base
        self.block_size = int(block_size)
        self._setup(space)
        ordered = sorted(community, key=lambda p: (p.name, p.content_hash()))
        # Breeding uses only the parents' tier vectors and names.
        self.community_names: tuple[str, ...] = tuple(p.name for p in ordered)
        self.community_hashes: tuple[str, ...] = tuple(p.content_hash() for p in ordered)
        self._parents: list[ParamVector] = [p.to_vector(self.ts, self.space) for p in ordered]
        self.community_share = community_share if ordered else 0.0

    def _setup(self, space: ParamSpace | None = None) -> None:
        self.space = space or param_space()
        self.ts: TierSpace = self.space.tier(self.tier)
        self.base = base_preset(self.base_name)
        self._ranges = self._constrained_ranges()
        self._block_strata = functools.lru_cache(maxsize=4)(self._strata)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for k in ("space", "ts", "base", "_ranges", "_block_strata"):
            state.pop(k, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._setup()

    @property
    def n_community(self) -> int:
        return len(self._parents)

    # -- continuous: blocked Latin hypercube ------------------------------------------------------
    def _constrained_ranges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo, hi, p_def = [], [], []
        for n in self.ts.continuous:
            c = self.space[n]
            rule = _lookup(CONSTRAINTS, n)
            a, b, p = rule if rule else (None, None, 0.0)
            lo.append(c.min if a is None else max(c.min, a))
            hi.append(c.max if b is None else min(c.max, b))
            p_def.append(p)
        return np.array(lo), np.array(hi), np.array(p_def)

    def _strata(self, block: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.tier, block, 0xB10C])
        d = len(self.ts.continuous)
        # (d, block_size): for each control, a permutation assigning strata to the block's examples
        return np.argsort(rng.random((d, self.block_size)), axis=1)

    def unit_sample(self, index: int) -> np.ndarray:
        """The stratified [0, 1) coordinates of example `index` (one per continuous control)."""
        block, pos = divmod(int(index), self.block_size)
        strata = self._block_strata(block)[:, pos]
        jitter = example_rng(self.seed, index, self.tier, 1).random(len(strata))
        return (strata + jitter) / self.block_size

    # -- examples -------------------------------------------------------------------------------
    def sample(self, index: int) -> SampledExample:
        """Example `index` (a pure function of seed, index, tier and the community set)."""
        if index < 0:
            raise ValueError(f"example index must be >= 0, got {index}")
        rng = example_rng(self.seed, index, self.tier)
        if self._parents and rng.random() < self.community_share:
            preset, parents = self._breed(rng, index)
            return SampledExample(index, preset, "bred", parents)
        return SampledExample(index, self._random(rng, index), "random")

    def _random(self, rng: np.random.Generator, index: int) -> Preset:
        ps, ts = self.space, self.ts
        lo, hi, p_def = self._ranges
        u = self.unit_sample(index)
        raw = lo + u * (hi - lo)
        keep_default = rng.random(len(raw)) < p_def
        defaults = np.array([ps[n].default for n in ts.continuous])
        raw = np.where(keep_default, defaults, raw)
        values = dict(self.base.values)
        clamped = np.array([ps[n].clamp(x) for n, x in zip(ts.continuous, raw)])
        # What is rendered is exactly what a dataset stores (float32 normalized vectors, as in
        # Preset.to_vector / from_vector), so Dataset.preset(i) rebuilds this very preset.
        stored = ts.cont_to_unit(clamped).astype(np.float32)
        for n, x in zip(ts.continuous, ts.cont_from_unit(stored.astype(np.float64))):
            values[n] = float(x)
        for n in ts.categorical:
            values[n] = self._categorical(rng, n)
        self._audible_morphs(rng, values)
        self._ensure_oscillator(rng, values)
        preset = self.base.with_values(values)
        if ts.has_modulation:
            preset = preset.with_modulations(self._modulations(rng, values))
        return preset.with_meta(preset_name=f"random {self.seed}/{index}")

    def _categorical(self, rng: np.random.Generator, name: str) -> float:
        c = self.space[name]
        if c.kind == "switch":
            return float(rng.random() < SWITCH_PROBABILITIES.get(name, 0.5))
        weights = _lookup(CATEGORICAL_WEIGHTS, name)
        if weights:
            keys = np.array(list(weights), float)
            w = np.array(list(weights.values()), float)
            return c.clamp(rng.choice(keys, p=w / w.sum()))
        return c.raw_of_index(int(rng.integers(c.n_options)))

    def _audible_morphs(self, rng: np.random.Generator, values: dict) -> None:
        """Redraw spectral morph types that would silence their oscillator (MORPH_LIMITS)."""
        for k in (1, 2, 3):
            name = f"osc_{k}_spectral_morph_type"
            if name not in self.ts.categorical:
                continue
            limits = MORPH_LIMITS.get(int(values[name]))
            frame, amount = values[f"osc_{k}_wave_frame"], values[f"osc_{k}_spectral_morph_amount"]
            if limits is not None and (frame < limits[0] or amount > limits[1]):
                weights = {
                    t: w for t, w in _lookup(CATEGORICAL_WEIGHTS, name).items() if t not in MORPH_LIMITS
                }
                keys = np.array(list(weights), float)
                w = np.array(list(weights.values()), float)
                values[name] = self.space[name].clamp(rng.choice(keys, p=w / w.sum()))

    def _ensure_oscillator(self, rng: np.random.Generator, values: dict) -> None:
        oscs = [n for n in ("osc_1_on", "osc_2_on", "osc_3_on") if n in self.ts.categorical]
        if not any(values[n] >= 0.5 for n in oscs):
            values[oscs[int(rng.integers(len(oscs)))]] = 1.0

    def _active_destinations(self, values: dict) -> list[str]:
        active = []
        for d in self.ts.mod_destinations:
            module = self.space[d].module
            switch = f"{module}_on"
            if switch in values and values[switch] < 0.5:
                continue
            if module.startswith(("lfo_", "random_", "env_")) and module != "env_1":
                continue  # only heard through routing; covered by the uniform share
            active.append(d)
        return active

    def _modulations(self, rng: np.random.Generator, values: dict) -> list[Modulation]:
        p = 1.0 / (1.0 + GEOMETRIC_MEAN_CONNECTIONS)  # geometric on {0, 1, ...} with this mean
        count = min(int(rng.geometric(p)) - 1, MAX_CONNECTIONS)
        active = self._active_destinations(values) or list(self.ts.mod_destinations)
        mods: list[Modulation] = []
        pairs: set[tuple[str, str]] = set()
        attempts = 0
        while len(mods) < count and attempts < 20 * MAX_CONNECTIONS:
            attempts += 1
            src = self.ts.mod_sources[int(rng.integers(len(self.ts.mod_sources)))]
            pool = active if rng.random() < ACTIVE_DESTINATION_SHARE else self.ts.mod_destinations
            dst = pool[int(rng.integers(len(pool)))]
            if (src, dst) in pairs or src == self.space[dst].module:
                continue  # no duplicates, no self-modulation of a source's own controls
            pairs.add((src, dst))
            # amount and power as a dataset stores them (float32 in [0, 1]), see Preset.to_vector
            amount = float(np.float32((rng.uniform(-1, 1) + 1) / 2)) * 2 - 1
            bipolar = bool(rng.random() < 0.5)
            power = float(np.float32((rng.uniform(-10, 10) + 10) / 20)) * 20 - 10
            mods.append(Modulation(src, dst, amount, bipolar, power, stereo=bool(rng.random() < 0.2)))
        return mods

    # -- breeding from community presets ---------------------------------------------------------
    def _breed(self, rng: np.random.Generator, index: int) -> tuple[Preset, tuple[str, ...]]:
        ts, ps = self.ts, self.space
        n = len(self._parents)
        i, j = (int(k) for k in rng.choice(n, size=2, replace=n < 2))
        va, vb = self._parents[i], self._parents[j]
        name_a, name_b = self.community_names[i], self.community_names[j]
        cont, cat = va.continuous.astype(np.float64).copy(), va.categorical.copy()
        modules = sorted({ps[n].module for n in ts.names})
        module_of_cont = np.array([ps[n].module for n in ts.continuous])
        module_of_cat = np.array([ps[n].module for n in ts.categorical])
        for m in modules:
            op = rng.random()
            mc, mk = module_of_cont == m, module_of_cat == m
            if op < 0.4:  # crossover: take the whole module from the other parent
                cont[mc], cat[mk] = vb.continuous[mc], vb.categorical[mk]
            elif op < 0.7:  # interpolation of continuous values
                alpha = rng.random()
                cont[mc] = (1 - alpha) * va.continuous[mc] + alpha * vb.continuous[mc]
        # mutation
        mutate = rng.random(len(cont)) < 0.1
        cont[mutate] += rng.normal(0.0, 0.05, int(mutate.sum()))
        cont = np.clip(cont, 0.0, 1.0)
        flip = np.flatnonzero(rng.random(len(cat)) < 0.03)
        for k in flip:
            cat[k] = int(rng.integers(ts.n_options[k]))
        mods = np.zeros(0, MOD_DTYPE)
        if ts.has_modulation:
            pool = np.concatenate([va.modulation, vb.modulation])
            keep = rng.random(len(pool)) < 0.6
            mods = pool[keep][:MAX_CONNECTIONS]
        child = Preset.from_vector(
            ParamVector(ts.tier, cont.astype(np.float32), cat, mods), base=self.base, space=ps
        )
        values = dict(child.values)
        self._ensure_oscillator(rng, values)
        child = child.with_values(values).with_meta(preset_name=f"bred {name_a} x {name_b}")
        return child, (name_a, name_b)
