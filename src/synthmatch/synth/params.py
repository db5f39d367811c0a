"""Vital's parameter space: every control, its range and kind, normalisation, and the tiers.

Built from a live `vita.Synth()` so it always matches the installed Vital build. Three kinds:

- ``continuous``: real-valued controls, and integer controls with many ordered values (transposes,
  effect chain order) that are encoded like continuous ones and rounded on the way back;
- ``categorical``: discrete controls with labelled options (filter model, distortion type...), or a
  few unlabelled values (unison voices);
- ``switch``: the 15 ``*_on`` module switches.

Normalisation is linear in raw units (`to_unit`/`from_unit`), exact on round trip. Vita's own
`set_normalized` is never used: it is wrong for the 30 Exponential-scale controls (docs/VITA.md, "Values and units the code converts").
Every value that reaches vita passes through `ControlSpec.clamp`, because out-of-range values crash it.

Tiers are data: tier 1 is a small subtractive synth, tier 2 everything that shapes one rendered note,
tier 3 adds modulation routing. Controls that cannot affect a one-shot render are excluded with a reason.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from synthmatch.synth import _vita

__all__ = [
    "ControlSpec",
    "ParamSpace",
    "TierSpace",
    "TIERS",
    "param_space",
    "module_of",
    "MOD_SLOT_FIELDS",
    "N_MOD_SLOTS",
]

TIERS = (1, 2, 3)
N_MOD_SLOTS = 64
MOD_SLOT_FIELDS = ("amount", "bipolar", "bypass", "power", "stereo")
_MOD_SLOT_RE = re.compile(r"^modulation_(\d+)_(amount|bipolar|bypass|power|stereo)$")

# Integer controls with more unlabelled values than this are encoded as continuous (ordinal).
_MAX_UNLABELLED_CATEGORIES = 16

_MODULE_RE = re.compile(
    r"^(osc_\d|env_\d|lfo_\d|random_\d|filter_fx|filter_\d|sample|chorus|compressor|delay|distortion"
    r"|eq|flanger|phaser|reverb|macro_control_\d|modulation_\d+)(?:_|$)"
)

# Controls that cannot change a one-shot render, with the reason recorded next to them (each measured
# inert by benchmarks/vita_facts.py: docs/VITA.md, "Controls that do nothing to one note").
_EXCLUDED_EXACT: dict[str, str] = {
    "bypass": "global bypass switch: renders identically",
    "view_spectrogram": "GUI only",
    "mpe_enabled": "MPE: no effect on a single rendered note",
    "pitch_wheel": "performance control: no effect measured",
    "mod_wheel": "performance control: acts only as a modulation source",
    "pitch_bend_range": "performance control: no pitch bend in a one-shot render",
    "polyphony": "voice management: inert for a single note",
    "voice_priority": "voice management: inert for a single note",
    "voice_override": "voice management: inert for a single note",
    "legato": "voice management: inert for a single note",
    "portamento_time": "voice management: glide needs two notes",
    "portamento_slope": "voice management: glide needs two notes",
    "portamento_force": "voice management: glide needs two notes",
    "portamento_scale": "voice management: glide needs two notes",
    "beats_per_minute": "host tempo: held at 120 BPM; synced times are reachable in 'Seconds' sync mode",
    "oversampling": "render quality: vita applies it only through JSON; held at 2x",
    "velocity_track": "inert: notes are rendered at full velocity",
}
_EXCLUDED_PATTERNS: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"^osc_\d_view_2d$"), "GUI only"),
    (
        re.compile(r"^(osc_\d|sample)_transpose_quantize$"),
        "bitmask of allowed notes: acts only on modulated pitch; held at default",
    ),
)

_TIER1_MODULES = frozenset({"osc_1", "osc_2", "filter_1", "env_1"})
_TIER1_GLOBALS = frozenset({"volume"})
_TIER2_GLOBALS = frozenset(
    {
        "volume",
        "voice_amplitude",
        "voice_transpose",
        "voice_tune",
        "stereo_mode",
        "stereo_routing",
        "effect_chain_order",
    }
)
# Modulation sources that are constant in a one-shot render without performance input.
_INERT_MOD_SOURCES: dict[str, str] = {
    "aftertouch": "no aftertouch in a rendered note",
    "lift": "no release-velocity variation in a rendered note",
    "mod_wheel": "no mod wheel movement in a rendered note",
    "pitch_wheel": "no pitch wheel movement in a rendered note",
    "slide": "no MPE slide in a rendered note",
}


def module_of(name: str) -> str:
    """The module a control belongs to: ``osc_1``, ``filter_fx``, ``env_3``, ``chorus``, ``global``..."""
    m = _MODULE_RE.match(name)
    return m.group(1) if m else "global"


# vita's value scales as (raw -> shown before multiply and offset, its inverse): what `ControlSpec.shown`
# and `raw_of_shown` compute with.
_DISPLAY_SCALES = {
    "Linear": (lambda v: v, lambda v: v),
    "Quadratic": (lambda v: v * v, lambda v: math.sqrt(max(0.0, v))),
    "Quartic": (lambda v: v**4, lambda v: max(0.0, v) ** 0.25),
    "SquareRoot": (lambda v: math.sqrt(max(0.0, v)), lambda v: max(0.0, v) ** 2),
}


@dataclass(frozen=True)
class ControlSpec:
    """Everything the project knows about one Vital control.

    Raw values are Vital's own units (the numbers in a .vital file); unit values are [0, 1].
    """

    name: str
    kind: str  # "continuous" | "categorical" | "switch"
    module: str
    min: float
    max: float
    default: float
    scale: str  # vita ValueScale name: Linear, Quadratic, Quartic, Exponential, SquareRoot, Indexed
    display_name: str
    units: str
    display_multiply: float
    post_offset: float
    integer: bool  # discrete in vita: values are rounded before they reach it
    options: tuple[str, ...] = ()
    tier: int | None = None  # lowest tier that includes it; None when excluded
    excluded_reason: str | None = None
    mod_slot: int | None = None  # 1..64 for modulation_N_* controls

    @property
    def n_options(self) -> int:
        """Number of values of a discrete control (0 for real-valued controls)."""
        return int(round(self.max - self.min)) + 1 if self.integer else 0

    @property
    def span(self) -> float:
        return self.max - self.min

    def clamp(self, raw: float) -> float:
        """The value vita can safely take: clamped to [min, max], rounded if discrete, NaN -> default."""
        x = float(raw)
        if not math.isfinite(x):
            x = self.default if math.isnan(x) else (self.max if x > 0 else self.min)
        x = min(max(x, self.min), self.max)
        if self.integer:
            x = float(min(max(round(x), math.ceil(self.min)), math.floor(self.max)))
        return x

    def shown(self, raw: float) -> float:
        """The number Vital shows for `raw` (in `units`: dB for Volume, seconds for an envelope time):
        scale(raw) * display_multiply + post_offset, before `display` turns note-valued cutoffs into Hz.
        ValueError for a scale not handled here (Exponential, Indexed)."""
        forward = _DISPLAY_SCALES.get(self.scale)
        if forward is None:
            raise ValueError(f"{self.name}: no display number for its {self.scale} scale")
        return forward[0](self.clamp(raw)) * self.display_multiply + self.post_offset

    def raw_of_shown(self, shown: float) -> float:
        """The raw value Vital shows as `shown`, clamped: the inverse of `shown`."""
        inverse = _DISPLAY_SCALES.get(self.scale)
        if inverse is None:
            raise ValueError(f"{self.name}: no inverse display for its {self.scale} scale")
        return self.clamp(inverse[1]((float(shown) - self.post_offset) / (self.display_multiply or 1.0)))

    def to_unit(self, raw: float) -> float:
        """Linear map of a raw value onto [0, 1] (clamped)."""
        if self.span == 0:
            return 0.0
        return (self.clamp(raw) - self.min) / self.span

    def from_unit(self, unit: float) -> float:
        """Inverse of `to_unit`: a safe raw value for vita (clamped, rounded if discrete)."""
        u = float(unit)
        if not math.isfinite(u):
            u = 0.0 if math.isnan(u) else (1.0 if u > 0 else 0.0)
        return self.clamp(self.min + min(max(u, 0.0), 1.0) * self.span)

    def index_of(self, raw: float) -> int:
        """Categorical index (0-based) of a raw value of a discrete control."""
        return int(round(self.clamp(raw) - self.min))

    def raw_of_index(self, index: int) -> float:
        return self.clamp(self.min + int(index))

    def option_label(self, raw: float) -> str:
        """Vital's label for a discrete value, or the number when it has none."""
        i = self.index_of(raw)
        if 0 <= i < len(self.options):
            return self.options[i]
        return f"{self.clamp(raw):g}"

    def record(self) -> dict:
        """A JSON-friendly description (what `synthmatch params --json` prints)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "module": self.module,
            "min": self.min,
            "max": self.max,
            "default": self.default,
            "scale": self.scale,
            "integer": self.integer,
            "display_name": self.display_name,
            "units": self.units,
            "options": list(self.options),
            "tier": self.tier,
            "excluded_reason": self.excluded_reason,
        }


def _excluded_reason(name: str) -> str | None:
    if name in _EXCLUDED_EXACT:
        return _EXCLUDED_EXACT[name]
    for pattern, reason in _EXCLUDED_PATTERNS:
        if pattern.match(name):
            return reason
    return None


def _tier_of(name: str, module: str, kind: str) -> int | None:
    if module.startswith("modulation_"):
        return None  # slot controls are the modulation list of tier 3, handled apart
    if _excluded_reason(name) is not None:
        return None
    if module in _TIER1_MODULES or name in _TIER1_GLOBALS:
        return 1
    if module.startswith("macro_control_"):
        return 3  # macros only act through modulation routing
    if module == "global":
        return 2 if name in _TIER2_GLOBALS else None
    return 2


@dataclass(frozen=True)
class TierSpace:
    """The normalized vector layout of one tier: what the model predicts and CMA-ES searches."""

    tier: int
    continuous: tuple[str, ...]
    categorical: tuple[str, ...]
    n_options: tuple[int, ...]
    mod_sources: tuple[str, ...]
    mod_destinations: tuple[str, ...]
    cont_min: np.ndarray = field(repr=False, compare=False)
    cont_max: np.ndarray = field(repr=False, compare=False)
    cont_integer: np.ndarray = field(repr=False, compare=False)
    cat_min: np.ndarray = field(repr=False, compare=False)

    if TYPE_CHECKING:
        # Set in __post_init__; declared for the type checker only, so at runtime they are not fields.
        _source_idx: dict[str, int] = field(init=False, repr=False, compare=False)
        _dest_idx: dict[str, int] = field(init=False, repr=False, compare=False)

    @property
    def has_modulation(self) -> bool:
        return bool(self.mod_sources)

    @property
    def names(self) -> tuple[str, ...]:
        return self.continuous + self.categorical

    def cont_to_unit(self, raw: np.ndarray) -> np.ndarray:
        """Vectorised `to_unit` over the continuous layout: (..., Nc) raw -> (..., Nc) in [0, 1]."""
        span = np.where(self.cont_max > self.cont_min, self.cont_max - self.cont_min, 1.0)
        return np.clip((np.asarray(raw, np.float64) - self.cont_min) / span, 0.0, 1.0)

    def cont_from_unit(self, unit: np.ndarray) -> np.ndarray:
        """Vectorised `from_unit`: (..., Nc) unit -> raw, clamped and rounded where discrete."""
        u = np.nan_to_num(np.asarray(unit, np.float64), nan=0.0, posinf=1.0, neginf=0.0)
        raw = self.cont_min + np.clip(u, 0.0, 1.0) * (self.cont_max - self.cont_min)
        raw = np.where(self.cont_integer, np.round(raw), raw)
        return np.clip(raw, self.cont_min, self.cont_max)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_source_idx", {n: i for i, n in enumerate(self.mod_sources)})
        object.__setattr__(self, "_dest_idx", {n: i for i, n in enumerate(self.mod_destinations)})

    def source_index(self, name: str) -> int:
        """Index of a modulation source in this tier's source list (KeyError if not usable)."""
        return self._source_idx[name]

    def destination_index(self, name: str) -> int:
        """Index of a modulation destination in this tier's destination list."""
        return self._dest_idx[name]

    def __hash__(self) -> int:
        return hash((self.tier, self.continuous, self.categorical))


class ParamSpace:
    """All 772 Vital controls, classified, with ranges, display metadata and tier membership."""

    def __init__(
        self, controls: Mapping[str, ControlSpec], mod_sources: Iterable[str], mod_destinations: Iterable[str]
    ):
        self.controls: dict[str, ControlSpec] = dict(controls)
        self.all_mod_sources: tuple[str, ...] = tuple(mod_sources)
        self.all_mod_destinations: tuple[str, ...] = tuple(mod_destinations)
        self._tiers: dict[int, TierSpace] = {}

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_vita(cls) -> ParamSpace:
        """Introspect a live `vita.Synth()` (about 70 ms)."""
        synth = _vita.reference_synth()
        controls: dict[str, ControlSpec] = {}
        for name in sorted(synth.get_controls()):
            controls[name] = _spec_from_vita(synth, name)
        return cls(controls, _vita.modulation_sources(), _vita.modulation_destinations())

    # -- lookup ---------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> ControlSpec:
        try:
            return self.controls[name]
        except KeyError:
            raise KeyError(f"unknown Vital control {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.controls

    def __len__(self) -> int:
        return len(self.controls)

    def clamp(self, name: str, raw: float) -> float:
        return self[name].clamp(raw)

    def to_unit(self, name: str, raw: float) -> float:
        return self[name].to_unit(raw)

    def from_unit(self, name: str, unit: float) -> float:
        return self[name].from_unit(unit)

    @property
    def slot_controls(self) -> list[ControlSpec]:
        return [c for c in self.controls.values() if c.mod_slot is not None]

    @property
    def plain_controls(self) -> list[ControlSpec]:
        """Every control except the modulation-slot ones."""
        return [c for c in self.controls.values() if c.mod_slot is None]

    def in_tier(self, name: str, tier: int) -> bool:
        t = self[name].tier
        return t is not None and t <= tier

    def excluded(self) -> list[ControlSpec]:
        return [c for c in self.plain_controls if c.tier is None]

    def modulation_source_reason(self, source: str) -> str | None:
        """Why a source is left out of tier-3 routing, or None if it is usable."""
        if source not in self.all_mod_sources:
            return "unknown modulation source"
        return _INERT_MOD_SOURCES.get(source)

    def modulation_destination_reason(self, destination: str) -> str | None:
        """Why a destination is left out of tier-3 routing, or None if it is usable."""
        if destination not in self.all_mod_destinations:
            return "unknown modulation destination"
        spec = self.controls.get(destination)
        if spec is None:
            return "destination is not a control of this Vital build"
        if spec.mod_slot is not None:
            return "targets a modulation slot's own control (amount, power, ...): not represented in tier-3 routing"
        if spec.tier is None:
            return f"destination control is excluded: {spec.excluded_reason}"
        return None

    # -- tiers ----------------------------------------------------------------------------------
    def tier(self, tier: int) -> TierSpace:
        """The vector layout of a tier (1, 2 or 3), cached."""
        if tier not in TIERS:
            raise ValueError(f"tier must be one of {TIERS}, got {tier!r}")
        if tier not in self._tiers:
            self._tiers[tier] = self._build_tier(tier)
        return self._tiers[tier]

    def _build_tier(self, tier: int) -> TierSpace:
        members = [c for c in self.plain_controls if c.tier is not None and c.tier <= tier]
        cont = [c for c in members if c.kind == "continuous"]
        cat = [c for c in members if c.kind in ("categorical", "switch")]
        if tier >= 3:
            sources = tuple(s for s in self.all_mod_sources if self.modulation_source_reason(s) is None)
            dests = tuple(
                d for d in self.all_mod_destinations if self.modulation_destination_reason(d) is None
            )
        else:
            sources, dests = (), ()
        return TierSpace(
            tier=tier,
            continuous=tuple(c.name for c in cont),
            categorical=tuple(c.name for c in cat),
            n_options=tuple(c.n_options for c in cat),
            mod_sources=sources,
            mod_destinations=dests,
            cont_min=np.array([c.min for c in cont], np.float64),
            cont_max=np.array([c.max for c in cont], np.float64),
            cont_integer=np.array([c.integer for c in cont], bool),
            cat_min=np.array([c.min for c in cat], np.float64),
        )

    def records(self, tier: int | None = None, include_excluded: bool = False) -> list[dict]:
        """Rows for `synthmatch params`: tier members (or all plain controls with exclusions)."""
        rows = []
        for c in self.plain_controls:
            if tier is not None and not include_excluded and not self.in_tier(c.name, tier):
                continue
            rows.append(c.record())
        return rows


def _scale_name(scale: object) -> str:
    text = str(scale)
    return text.split(".")[-1]


def _spec_from_vita(synth, name: str) -> ControlSpec:
    d = synth.get_control_details(name)
    module = module_of(name)
    lo, hi = float(d.min), float(d.max)
    integer = bool(d.is_discrete)
    options = tuple(str(o) for o in (d.options or ()))
    n_values = int(round(hi - lo)) + 1 if integer else 0
    slot_match = _MOD_SLOT_RE.match(name)
    mod_slot = int(slot_match.group(1)) if slot_match else None
    if integer and name.endswith("_on") and n_values == 2:
        kind = "switch"
    elif integer and (options or n_values <= _MAX_UNLABELLED_CATEGORIES):
        kind = "categorical"
    else:
        kind = "continuous"  # real-valued, or many ordered integers (transposes, chain order)
    if kind == "categorical" and len(options) != n_values:
        options = _labels_for(synth, name, lo, n_values, options, float(d.display_multiply))
    tier = _tier_of(name, module, kind)
    reason = None
    if tier is None and mod_slot is None:
        reason = _excluded_reason(name) or "global control that does not shape a one-shot note"
    return ControlSpec(
        name=name,
        kind=kind,
        module=module,
        min=lo,
        max=hi,
        default=float(d.default_value),
        scale=_scale_name(d.scale),
        display_name=str(d.display_name),
        units=str(d.display_units).strip(),
        display_multiply=float(d.display_multiply),
        post_offset=float(d.post_offset),
        integer=integer,
        options=options if kind != "continuous" else (),
        tier=tier,
        excluded_reason=reason,
        mod_slot=mod_slot,
    )


def _labels_for(
    synth, name: str, lo: float, n_values: int, options: tuple[str, ...], display_multiply: float
) -> tuple[str, ...]:
    """Labels for every value of a categorical control whose option list is short or missing.

    Known labels are kept; the rest show the number as Vital would (value x display multiply),
    so `filter_1_style` 5..9 and `chorus_voices` get readable names without poking vita.
    """
    labels = list(options[:n_values])
    for i in range(len(labels), n_values):
        labels.append(f"{(lo + i) * display_multiply:g}")
    return tuple(labels)


@functools.lru_cache(maxsize=1)
def param_space() -> ParamSpace:
    """The process-wide ParamSpace built from the installed vita (cached)."""
    return ParamSpace.from_vita()
