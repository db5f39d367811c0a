"""What refinement searches: the controls of a preset that can be heard and that CMA-ES may move.

    space = search_space(preset, tier=2, template=slots)
    x = space.encode(preset)              # (space.size,) coordinates in [0, 1]
    candidate = space.decode(x, preset)   # the preset with those coordinates set

`search_space` keeps the tier's continuous controls that `synth.audibility.Audibility` says can be heard
in the preset, less those refinement holds on purpose (`_search_reason`: integers, overall gain, stereo
placement, random phase, tune), plus the modulation template's amounts and the envelope and LFO controls
they make audible, plus at tier 3 the amounts of the preset's own connections. Every control left out is
listed in `SearchSpace.skipped` with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np

from synthmatch.inference.calibrate import RANDOM_PHASE, TUNE_CONTROLS
from synthmatch.synth.audibility import Audibility
from synthmatch.synth.params import ParamSpace, param_space
from synthmatch.synth.presets import Preset
from synthmatch.synth.template import TemplateSlot

__all__ = ["SearchSpace", "search_space"]

_STEREO_RE = re.compile(r"(_pan|_stereo_spread)$|^stereo_routing$")
_GAIN = {
    "volume": "overall gain: the objective compares the sounds at equal loudness",
    "voice_amplitude": "overall gain: the objective compares the sounds at equal loudness",
}


@dataclass(frozen=True)
class SearchSpace:
    """The coordinates CMA-ES moves, all in [0, 1].

    controls: normalized control values; mod_slots: the preset's own connection amounts, (amount + 1) / 2;
    template: the template's connection amounts, (amount / max_amount + 1) / 2.
    """

    controls: tuple[str, ...]
    mod_slots: tuple[int, ...]  # indices into the preset's modulations whose amount is searched
    skipped: dict[str, str]  # control -> why it is not searched
    space: ParamSpace = field(repr=False, compare=False)
    template: tuple[tuple[int, float], ...] = ()  # (index into modulations, max |amount|)

    @property
    def size(self) -> int:
        return len(self.controls) + len(self.mod_slots) + len(self.template)

    @property
    def names(self) -> list[str]:
        return (
            list(self.controls)
            + [f"modulation_{i + 1}_amount" for i in self.mod_slots]
            + [f"modulation_{i + 1}_amount (template)" for i, _ in self.template]
        )

    def encode(self, preset: Preset) -> np.ndarray:
        """(size,) normalized coordinates of a preset."""
        ps = self.space
        x = [ps[n].to_unit(preset.values.get(n, ps[n].default)) for n in self.controls]
        x += [(float(np.clip(preset.modulations[i].amount, -1, 1)) + 1) / 2 for i in self.mod_slots]
        x += [(float(np.clip(preset.modulations[i].amount / m, -1, 1)) + 1) / 2 for i, m in self.template]
        return np.clip(np.asarray(x, np.float64), 0.0, 1.0)

    def decode(self, x: np.ndarray, base: Preset) -> Preset:
        """`base` with the searched coordinates set from x (clipped to [0, 1])."""
        ps = self.space
        x = np.clip(np.nan_to_num(np.asarray(x, np.float64), nan=0.5), 0.0, 1.0)
        values = dict(base.values)
        nc, nm = len(self.controls), len(self.mod_slots)
        for n, u in zip(self.controls, x[:nc]):
            values[n] = ps[n].from_unit(u)
        mods = base.modulations
        if self.mod_slots or self.template:
            edited = list(mods)
            for i, u in zip(self.mod_slots, x[nc : nc + nm]):
                edited[i] = replace(edited[i], amount=float(u) * 2 - 1)
            for (i, m), u in zip(self.template, x[nc + nm :]):
                edited[i] = replace(edited[i], amount=(float(u) * 2 - 1) * m)
            mods = tuple(edited)
        # replace() skips with_values' name checks: every name here comes from the parameter space
        return replace(base, values=values, modulations=mods)


def _search_reason(name: str, ps: ParamSpace) -> str | None:
    """Audible controls refinement still leaves alone, and why."""
    if ps[name].integer:
        return "integer control (transpose, effect order): held fixed like the categoricals"
    if name in _GAIN:
        return _GAIN[name]
    if _STEREO_RE.search(name):
        return "stereo placement: the objective compares mono mixes"
    if name in RANDOM_PHASE:
        return "random phase: held at 0 while searching (repeatable renders), restored afterwards"
    if name in TUNE_CONTROLS:
        return "tune: held so the match stays in tune (the pitch alignment sets it and checks it after)"
    return None


def search_space(
    preset: Preset,
    tier: int,
    space: ParamSpace | None = None,
    template: tuple[TemplateSlot, ...] = (),
) -> SearchSpace:
    """The audible continuous controls of `preset` at `tier`, the template's amounts and source controls,
    and at tier 3 the amounts of its own connections."""
    ps = space or param_space()
    ts = ps.tier(tier)
    aud = Audibility(preset, ps)
    kept_mods = aud.connections
    template_index = {s.index for s in template}
    # a source only the template uses is searched through its curated controls, not all of them
    own_sources = {m.source for i, m in enumerate(preset.modulations) if i not in template_index}
    template_only = {s.source for s in template} - own_sources
    curated = {n for s in template for n in s.searched_controls}
    controls, skipped = [], {}
    names = list(ts.continuous) + [n for n in sorted(curated) if n not in ts.continuous]
    for name in names:
        if ps[name].module in template_only and name not in curated:
            skipped[name] = f"{ps[name].module} is the template's: only its main controls are searched"
            continue
        reason = _search_reason(name, ps) or aud.reason(name)
        if reason is None:
            controls.append(name)
        else:
            skipped[name] = reason
    kept_pairs = {(m.source, m.destination) for m in kept_mods}
    mod_slots = (
        tuple(
            i
            for i, m in enumerate(preset.modulations)
            if (m.source, m.destination) in kept_pairs and i not in template_index
        )
        if ts.has_modulation
        else ()
    )
    slots = tuple((s.index, s.connection.max_amount) for s in template)
    return SearchSpace(tuple(controls), mod_slots, skipped, ps, slots)
