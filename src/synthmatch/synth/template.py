"""The standard modulation moves of one-shot sound design, as data: what refinement adds to every start.

A pluck's brightness dies away, a kick's pitch drops, a lead has vibrato: moves made by an envelope or an
LFO through Vital's modulation matrix. A start without them (every tier-2 prediction, Vital's init
preset) cannot reach those sounds by moving its controls. So before refinement each start is offered the
template's connections it does not have yet (`add_template`, at amount 0: the sound is unchanged);
refinement probes each on the target and searches the amounts of those that help, together with the
few envelope or LFO controls each one makes audible (`inference.refine`).

Each connection is a *role* (the filter envelope, the pitch envelope, vibrato...) played by a preferred
source (Envelope 2 for the filter, Envelope 3 for pitch, LFO 1 for vibrato...). A source the start
already uses for something else is left alone: the role moves to the next free envelope or LFO, whose
settings (`source_settings`: a decaying envelope, an LFO in seconds mode) are then set, which changes
nothing while the amount is 0. Amounts are searched within +-`max_amount` (in Vital's units: a fraction
of the destination's range), and a connection whose amount ends below `negligible_amount` is left out
of the exported preset.

`CANDIDATES` holds every connection measured; `DEFAULT_TEMPLATE` the ones refinement offers by default,
chosen by measurement (benchmarks/template.py, docs/BENCHMARKS.md "Modulation template").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from synthmatch.synth.presets import Modulation, Preset

__all__ = [
    "TemplateConnection",
    "CANDIDATES",
    "DEFAULT_TEMPLATE",
    "template_connections",
    "TemplateSlot",
    "add_template",
    "prune_template",
]

_ENVELOPES = tuple(f"env_{i}" for i in range(2, 7))
_LFOS = tuple(f"lfo_{i}" for i in range(1, 9))
_N_SLOTS = 64

# Settings a role's source gets when the template takes it (they change nothing while the amount is 0).
# Envelopes: a short attack and a 0.5 s decay to 0 (raw 0.84 is 0.84^4 = 0.5 s: the times are quartic).
_DECAYING_ENVELOPE = {"env_N_attack": 0.1495, "env_N_decay": 0.84, "env_N_sustain": 0.0, "env_N_hold": 0.0}
_PITCH_ENVELOPE = {"env_N_attack": 0.0, "env_N_decay": 0.56, "env_N_sustain": 0.0, "env_N_hold": 0.0}
# LFOs in "Seconds" mode (sync 0), where frequency x means 2^x Hz: 2.32 is 5 Hz.
_LFO_5HZ = {"lfo_N_sync": 0.0, "lfo_N_frequency": 2.32}
_LFO_2HZ = {"lfo_N_sync": 0.0, "lfo_N_frequency": 1.0}
_ENV_SEARCHED = ("env_N_attack", "env_N_decay", "env_N_sustain", "env_N_release")


@dataclass(frozen=True)
class TemplateConnection:
    """One standard connection.

    Attributes:
        key: short name ("filter_env_1"), used by benchmarks and the refinement info.
        role: connections of one role share a source (both filter envelopes use one envelope).
        source: the preferred source (env_2, lfo_1...).
        destination: the Vital control it moves.
        max_amount: the search covers amounts in [-max_amount, max_amount].
        negligible_amount: below this |amount| it is not exported (inaudible on its own).
        bipolar: the source swings both ways (LFOs) or from 0 up (envelopes).
        source_settings: source controls set when the template takes a source ("env_N_..." names).
        searched: source controls CMA-ES moves with the amount ("env_N_..." names).
        label: how the tutorial and the docs name the move.
    """

    key: str
    role: str
    source: str
    destination: str
    max_amount: float
    negligible_amount: float
    bipolar: bool = False
    source_settings: Mapping[str, float] = field(default_factory=dict)
    searched: tuple[str, ...] = ()
    label: str = ""

    def source_control(self, generic: str, source: str) -> str:
        """ "env_N_decay" for source "env_3" -> "env_3_decay"."""
        return source + generic[generic.index("_N_") + 2 :]


CANDIDATES: tuple[TemplateConnection, ...] = (
    TemplateConnection(
        "filter_env_1", "filter_env", "env_2", "filter_1_cutoff", 0.75, 0.01,
        source_settings=_DECAYING_ENVELOPE, searched=_ENV_SEARCHED,
        label="filter envelope: the cutoff of filter 1 follows envelope 2 (a pluck's brightness dying away)",
    ),
    TemplateConnection(
        "filter_env_2", "filter_env", "env_2", "filter_2_cutoff", 0.75, 0.01,
        source_settings=_DECAYING_ENVELOPE, searched=_ENV_SEARCHED,
        label="the same envelope on filter 2's cutoff",
    ),
    TemplateConnection(
        "pitch_env", "pitch_env", "env_3", "voice_transpose", 0.25, 0.002,
        source_settings=_PITCH_ENVELOPE, searched=_ENV_SEARCHED,
        label="pitch envelope: the pitch starts off and settles (a kick's or a tom's drop)",
    ),
    TemplateConnection(
        "frame_env", "filter_env", "env_2", "osc_1_wave_frame", 0.5, 0.01,
        source_settings=_DECAYING_ENVELOPE, searched=_ENV_SEARCHED,
        label="the filter envelope also moves oscillator 1 through its wavetable (timbre that evolves)",
    ),
    TemplateConnection(
        "vibrato", "vibrato", "lfo_1", "voice_tune", 0.25, 0.005, bipolar=True,
        source_settings=_LFO_5HZ, searched=("lfo_N_frequency", "lfo_N_fade_time"),
        label="vibrato: an LFO on the pitch",
    ),
    TemplateConnection(
        "filter_lfo", "filter_lfo", "lfo_2", "filter_1_cutoff", 0.25, 0.005, bipolar=True,
        source_settings=_LFO_2HZ, searched=("lfo_N_frequency",),
        label="an LFO on filter 1's cutoff (wah, wobble)",
    ),
    TemplateConnection(
        "tremolo", "tremolo", "lfo_3", "voice_amplitude", 0.5, 0.01, bipolar=True,
        source_settings=_LFO_5HZ, searched=("lfo_N_frequency",),
        label="tremolo: an LFO on the level",
    ),
)  # fmt: skip

# Measured (benchmarks/template.py, docs/BENCHMARKS.md "Modulation template"): on 20 targets from the
# default model's start at 300 renders, each of these was exported (removing it raised the loss) on 2-6
# targets; filter_env_2 was never usable there (filter 2 off in every start), so it is left to
# `RefineConfig(template=...)` until it is measured.
DEFAULT_TEMPLATE: tuple[str, ...] = (
    "filter_env_1", "pitch_env", "frame_env", "vibrato", "filter_lfo", "tremolo",
)  # fmt: skip


def template_connections(keys: Iterable[str] | None = None) -> tuple[TemplateConnection, ...]:
    """The connections of `keys` (None: DEFAULT_TEMPLATE), in CANDIDATES order; unknown keys raise."""
    wanted = DEFAULT_TEMPLATE if keys is None else tuple(keys)
    known = {c.key: c for c in CANDIDATES}
    unknown = [k for k in wanted if k not in known]
    if unknown:
        raise ValueError(f"unknown template connection(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(c for c in CANDIDATES if c.key in wanted)


@dataclass(frozen=True)
class TemplateSlot:
    """A template connection as added to one preset: its index in `preset.modulations` and its source."""

    index: int
    connection: TemplateConnection
    source: str

    @property
    def searched_controls(self) -> tuple[str, ...]:
        return tuple(self.connection.source_control(g, self.source) for g in self.connection.searched)


def _free_source(preferred: str, used: set[str]) -> str | None:
    pool = _ENVELOPES if preferred.startswith("env_") else _LFOS
    for s in (preferred, *pool):
        if s not in used:
            return s
    return None


def add_template(
    preset: Preset,
    connections: Iterable[TemplateConnection],
    usable: Callable[[TemplateConnection], bool] = lambda c: True,
) -> tuple[Preset, tuple[TemplateSlot, ...]]:
    """`preset` with the template's connections it lacks added at amount 0.

    Args:
        preset: the start.
        connections: the template (see `template_connections`).
        usable: whether a connection can be heard in this preset (its destination's module is on and fed):
            the caller's audibility rules; unusable connections are left out.
    Returns:
        (the preset, the slots added). A connection whose destination already has a connection from an
        envelope or LFO of the same kind, or that finds no free source or slot, is not added.
    """
    mods = list(preset.modulations)
    used = {m.source for m in mods}
    values = dict(preset.values)
    role_source: dict[str, str] = {}
    slots: list[TemplateSlot] = []
    for conn in connections:
        if len(mods) >= _N_SLOTS or not usable(conn):
            continue
        kind = "env_" if conn.source.startswith("env_") else "lfo_"
        if any(m.destination == conn.destination and m.source.startswith(kind) for m in mods):
            continue  # the start already moves this destination with a source of that kind
        source = role_source.get(conn.role)
        if source is None:
            source = _free_source(conn.source, used)
            if source is None:
                continue
            role_source[conn.role] = source
            used.add(source)
            for generic, value in conn.source_settings.items():
                values[conn.source_control(generic, source)] = float(value)
        slots.append(TemplateSlot(len(mods), conn, source))
        mods.append(Modulation(source, conn.destination, amount=0.0, bipolar=conn.bipolar))
    if not slots:
        return preset, ()
    return preset.with_values(values).with_modulations(mods), tuple(slots)


def prune_template(
    preset: Preset, slots: Iterable[TemplateSlot], original: Preset | None = None
) -> tuple[Preset, dict[str, float]]:
    """Drop the template connections whose amount is negligible.

    Args:
        preset: a refined preset holding the template's slots.
        slots: what `add_template` returned.
        original: the start before the template: a source left with no connection gets its settings back.
    Returns:
        (the preset, template key -> amount of the connections kept).
    """
    slots = list(slots)
    drop = set()
    kept: dict[str, float] = {}
    for s in slots:
        amount = float(preset.modulations[s.index].amount)
        if abs(amount) < s.connection.negligible_amount:
            drop.add(s.index)
        else:
            kept[s.connection.key] = round(amount, 4)
    if not drop:
        return preset, kept
    mods = [m for i, m in enumerate(preset.modulations) if i not in drop]
    out = preset.with_modulations(mods)
    if original is not None:
        still_used = {m.source for m in mods}
        restore = {}
        for s in slots:
            if s.index in drop and s.source not in still_used:
                for generic in (*s.connection.source_settings, *s.connection.searched):
                    name = s.connection.source_control(generic, s.source)
                    if name in original.values:
                        restore[name] = original.values[name]
        if restore:
            out = out.with_values(restore)
    return out, kept
