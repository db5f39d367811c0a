"""The `Preset` value type and its conversions: .vital file <-> Preset <-> vita Synth <-> tier vectors.

A Preset holds every plain control's raw value, the modulation connections, and the structured data
Vital keeps in its JSON (wavetables, LFO shapes, the sample). It never holds a vita object, so it is
cheap to copy, pickle and send to worker processes.

Safety rules enforced here (docs/VITA.md, "What crashes or hangs vita"):
- modulation names are checked against vita's own source/destination lists before anything reaches
  vita: an unknown name makes `connect_modulation` return True and the next render segfault;
- at most 64 connections (Vital's slot count);
- every control value is clamped to its range and rounded when discrete before it is written.

Writing a `.vital` goes through vita's own JSON (load into a Synth, `to_json`), so what we write is
what Vital itself produces, with real control values. One field is added at the top level, which Vital
ignores: `synthmatch_played_note`, the note a match was made at (`PlayedNote`), which `synthmatch render`
plays by default.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from synthmatch.atomic import atomic_write_text
from synthmatch.synth import _vita
from synthmatch.synth.params import MOD_SLOT_FIELDS, N_MOD_SLOTS, ParamSpace, TierSpace, param_space
from synthmatch.synth.structure import structure_problem
from synthmatch.synth.vital_file import (
    InvalidModulationError,
    PresetError,
    check_version,
    clean_text,
    parse_json,
    read_preset_text,
)

log = logging.getLogger(__name__)

__all__ = [
    "Modulation",
    "Preset",
    "PresetData",
    "PlayedNote",
    "DEFAULT_PLAYED_NOTE",
    "PLAYED_NOTE_KEY",
    "played_note_for",
    "PresetError",
    "InvalidModulationError",
    "ParamVector",
    "MOD_DTYPE",
    "EXPORT_SYNTH_VERSION",
    "base_preset",
    "BASE_PRESETS",
]

# vita is built with JUCE_APP_VERSION=99999.9.9, a placeholder the Vital app would treat as newer than
# itself and refuse. Exported files carry the version of the open-source Vital code vita is built from
# (1.0.x: it lacks 1.5 features such as osc_N_spectral_morph_phase), so a newer Vital upgrades them.
EXPORT_SYNTH_VERSION = "1.0.7"
_STRUCTURED_KEYS = ("wavetables", "lfos", "sample")
_META_KEYS = ("preset_name", "author", "comments", "preset_style", "macro1", "macro2", "macro3", "macro4")

# Controls added by Vital releases newer than vita's code, with their defaults (seen in community presets).
_NEWER_VITAL_DEFAULTS = {"osc_N_spectral_morph_phase": 0.5}
# The top-level field of a .vital that holds the note a match was made at (Vital ignores unknown fields).
PLAYED_NOTE_KEY = "synthmatch_played_note"
MAX_PLAYED_S = 60.0  # render.MAX_DURATION_S: a stored time above it is not one synthmatch wrote


@dataclass(frozen=True)
class PlayedNote:
    """The note a preset is meant to be played at: what `infer` matched it at, stored in the .vital.

    `DEFAULT_PLAYED_NOTE` (C4, 1.5 s held of 2 s) is what `synthmatch render` plays without one.
    """

    midi_note: int
    note_duration_s: float
    duration_s: float

    def as_dict(self) -> dict[str, float]:
        return {
            "midi_note": self.midi_note,
            "note_duration_s": round(self.note_duration_s, 4),
            "duration_s": round(self.duration_s, 4),
        }

    @classmethod
    def from_dict(cls, d: Any) -> PlayedNote | None:
        """The stored note of a .vital, or None when the field is missing or not one synthmatch wrote."""
        if not isinstance(d, Mapping):
            return None
        try:
            midi, held, length = d["midi_note"], float(d["note_duration_s"]), float(d["duration_s"])
        except (KeyError, TypeError, ValueError, OverflowError):
            return None
        if isinstance(midi, bool) or not isinstance(midi, int) or not 0 <= midi <= 127:
            return None
        if not (0 < held <= MAX_PLAYED_S and 0 < length <= MAX_PLAYED_S):
            return None  # (NaN fails too)
        return cls(midi, held, length)


DEFAULT_PLAYED_NOTE = PlayedNote(60, 1.5, 2.0)


def played_note_for(
    preset: Preset,
    midi_note: int | None = None,
    note_duration_s: float | None = None,
    duration_s: float | None = None,
) -> tuple[PlayedNote, str]:
    """The note to play `preset` at, and why that note: a value given wins, then the note stored in the
    preset, then `DEFAULT_PLAYED_NOTE`. A key held longer than the length, with no length given, lengthens
    the render to hold all of it. Values out of range are the renderer's to refuse (`RenderSettingsError`,
    a one-line message that names the value)."""
    stored = preset.played_note
    base = stored or DEFAULT_PLAYED_NOTE
    held = base.note_duration_s if note_duration_s is None else float(note_duration_s)
    length = base.duration_s if duration_s is None else float(duration_s)
    if duration_s is None:
        length = max(length, held)  # a longer key time than the stored or default length: render all of it
    note = PlayedNote(base.midi_note if midi_note is None else int(midi_note), held, length)
    if midi_note is not None:
        why = "the note given"
    elif stored is not None:
        why = "the note it was matched at, stored in the preset"
    else:
        why = "the default: the preset stores no note"
    return note, why


def _generic(name: str) -> str:
    return re.sub(r"^osc_\d_", "osc_N_", name)


# One modulation connection in normalized, index form (what datasets store and the model predicts).
MOD_DTYPE = np.dtype(
    [
        ("source", "<i2"),
        ("destination", "<i2"),
        ("amount", "<f4"),
        ("bipolar", "u1"),
        ("power", "<f4"),
        ("stereo", "u1"),
    ]
)


@dataclass(frozen=True)
class Modulation:
    """One modulation connection in raw units: amount in [-1, 1], power in [-10, 10]."""

    source: str
    destination: str
    amount: float = 0.0
    bipolar: bool = False
    power: float = 0.0
    stereo: bool = False
    bypass: bool = False

    def slot_values(self) -> tuple[float, ...]:
        """Raw values of the slot controls, in MOD_SLOT_FIELDS order (amount, bipolar, bypass, power, stereo)."""
        return (self.amount, float(self.bipolar), float(self.bypass), self.power, float(self.stereo))

    def validate(self) -> None:
        """Raise InvalidModulationError unless vita knows both names (an unknown one segfaults it)."""
        if self.source not in _vita.modulation_sources():
            raise InvalidModulationError(
                f"unknown modulation source {self.source!r}; valid sources: "
                f"{', '.join(_vita.modulation_sources())}"
            )
        if self.destination not in _vita.modulation_destinations():
            raise InvalidModulationError(
                f"unknown modulation destination {self.destination!r} (source {self.source!r}); "
                "see vita.get_modulation_destinations()"
            )


class PresetData:
    """The structured, non-numeric part of a preset: wavetables, LFO shapes, sample, other keys.

    Immutable by convention and shared between presets derived from one another, so its content
    hash (used to decide whether a Synth needs a full `load_json`) is computed once.
    """

    __slots__ = ("_settings", "_key")

    def __init__(self, settings: Mapping[str, Any]):
        self._settings = dict(settings)
        self._key: str | None = None

    def get(self, key: str, default: Any = None) -> Any:
        return self._settings.get(key, default)

    def keys(self) -> Iterable[str]:
        return self._settings.keys()

    def as_settings(self) -> dict:
        """A deep copy, safe to mutate."""
        return copy.deepcopy(self._settings)

    @property
    def key(self) -> str:
        """Content hash of the structured data."""
        if self._key is None:
            text = json.dumps(self._settings, sort_keys=True, separators=(",", ":"))
            self._key = hashlib.sha1(text.encode()).hexdigest()
        return self._key

    def item_hashes(self) -> dict[str, list[str]]:
        """Content hashes of each wavetable, LFO shape and the sample (for de-duplicated storage)."""
        out: dict[str, list[str]] = {}
        for k in _STRUCTURED_KEYS:
            v = self._settings.get(k)
            items = v if isinstance(v, list) else ([v] if v is not None else [])
            out[k] = [hashlib.sha1(json.dumps(i, sort_keys=True).encode()).hexdigest() for i in items]
        return out

    def __getstate__(self):
        return {"settings": self._settings, "key": self._key}

    def __setstate__(self, state):
        self._settings = state["settings"]
        self._key = state["key"]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PresetData) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)


@functools.lru_cache(maxsize=1)
def _init_parts() -> tuple[dict[str, float], PresetData, dict[str, Any]]:
    j = _vita.init_preset_json()
    ps = param_space()
    settings = j["settings"]
    values = {c.name: float(settings.get(c.name, c.default)) for c in ps.plain_controls}
    data = PresetData({k: settings[k] for k in settings if k not in ps and k != "modulations"})
    meta = {k: j[k] for k in _META_KEYS if k in j}
    meta["preset_name"] = "Init"
    return values, data, meta


@dataclass(frozen=True, eq=False)
class Preset:
    """A complete Vital patch as plain data.

    Attributes:
        values: raw value of every plain control (modulation-slot controls excluded).
        modulations: up to 64 connections, in slot order.
        data: wavetables, LFO shapes, sample and any other structured settings.
        meta: preset name, author, comments, style, macro names.
    """

    values: Mapping[str, float]
    modulations: tuple[Modulation, ...] = ()
    data: PresetData = field(default_factory=lambda: _init_parts()[1])
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "modulations", tuple(self.modulations))
        if len(self.modulations) > N_MOD_SLOTS:
            raise PresetError(f"{len(self.modulations)} modulations; Vital has {N_MOD_SLOTS} slots")
        seen = set()
        for m in self.modulations:
            m.validate()
            pair = (m.source, m.destination)
            if pair in seen:
                raise InvalidModulationError(f"duplicate modulation {m.source} -> {m.destination}")
            seen.add(pair)

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def init(cls) -> Preset:
        """Vital's init preset."""
        values, data, meta = _init_parts()
        return cls(values=dict(values), data=data, meta=dict(meta))

    @classmethod
    def from_json(cls, text: str | Mapping, *, origin: str = "<json>", strict: bool = False) -> Preset:
        """Parse the JSON of a .vital file.

        Unknown or invalid modulation connections are dropped with a warning (or raise when strict);
        settings this Vital build does not know are kept aside and reported once per file.
        """
        doc = text if isinstance(text, Mapping) else parse_json(text, origin)
        if not isinstance(doc, Mapping) or not isinstance(doc.get("settings"), Mapping):
            raise PresetError(f"{origin}: not a Vital preset (no 'settings' object)")
        check_version(doc.get("synth_version"), origin)
        ps = param_space()
        settings = doc["settings"]
        init_values, init_data, _ = _init_parts()
        values: dict[str, float] = {}
        for c in ps.plain_controls:
            raw = settings.get(c.name, init_values[c.name])
            try:
                x = float(raw)
            except (TypeError, ValueError):
                raise PresetError(
                    f"{origin}: control {c.name} has a non-numeric value {str(raw)[:40]!r}"
                ) from None
            except OverflowError:
                raise PresetError(f"{origin}: control {c.name} has a value too large for a number") from None
            values[c.name] = x if math.isfinite(x) else c.default
        unknown = sorted(
            k
            for k, v in settings.items()
            if k not in ps
            and k not in _STRUCTURED_KEYS
            and k != "modulations"
            and isinstance(v, (int, float))
            and not isinstance(v, bool)
        )
        # Settings of newer Vital releases at their default values change nothing: say so quietly.
        audible = [k for k in unknown if settings[k] != _NEWER_VITAL_DEFAULTS.get(_generic(k))]
        if audible:
            log.warning(
                "%s: %d setting(s) unknown to this Vital build were ignored (the sound may differ): %s",
                origin,
                len(audible),
                ", ".join(f"{k}={settings[k]}" for k in audible),
            )
        if len(audible) < len(unknown):
            log.debug(
                "%s: newer-Vital settings at their defaults ignored: %s",
                origin,
                ", ".join(k for k in unknown if k not in audible),
            )
        extra = {k: v for k, v in settings.items() if k not in ps and k != "modulations" and k not in unknown}
        for k in _STRUCTURED_KEYS:
            if k not in extra:
                extra[k] = init_data.get(k)
        problem = structure_problem(settings)
        if problem is not None:
            raise PresetError(f"{origin}: not a preset Vital can load safely: {problem}")
        mods = _read_modulations(settings, origin, strict)
        meta = {k: clean_text(doc[k]) for k in _META_KEYS if k in doc}
        if "synth_version" in doc:
            meta["source_synth_version"] = doc["synth_version"]
        if audible:
            meta["ignored_settings"] = {k: settings[k] for k in audible}
        played = PlayedNote.from_dict(doc.get(PLAYED_NOTE_KEY))
        if played is not None:
            meta["played_note"] = played
        elif PLAYED_NOTE_KEY in doc:
            log.warning("%s: its %s field is not a note synthmatch wrote: ignored", origin, PLAYED_NOTE_KEY)
        return cls(values=values, modulations=tuple(mods), data=PresetData(extra), meta=meta)

    @classmethod
    def load(cls, path: str | os.PathLike, *, strict: bool = False) -> Preset:
        """Read a .vital file. Raises PresetError naming the file when it cannot be used."""
        p = Path(path)
        text = read_preset_text(p)
        preset = cls.from_json(text, origin=str(p), strict=strict)
        if "preset_name" not in preset.meta:
            preset = preset.with_meta(preset_name=p.stem)
        return preset

    @classmethod
    def from_synth(cls, synth: Any) -> Preset:
        """The state of a live vita Synth."""
        return cls.from_json(synth.to_json(), origin="<vita Synth>")

    # -- derived presets -------------------------------------------------------------------------
    def with_values(self, updates: Mapping[str, float] | None = None, **kw: float) -> Preset:
        """A copy with some control values replaced (names checked)."""
        ps = param_space()
        new = dict(self.values)
        for k, v in {**(updates or {}), **kw}.items():
            if k not in ps or ps[k].mod_slot is not None:
                raise KeyError(f"unknown Vital control {k!r}")
            new[k] = float(v)
        return replace(self, values=new)

    def with_modulations(self, modulations: Iterable[Modulation]) -> Preset:
        return replace(self, modulations=tuple(modulations))

    def with_meta(self, **meta: Any) -> Preset:
        return replace(self, meta={**self.meta, **meta})

    def with_data(self, **items: Any) -> Preset:
        """A copy with structured settings replaced (wavetables=[...], lfos=[...], sample={...})."""
        settings = self.data.as_settings()
        settings.update(copy.deepcopy(items))
        problem = structure_problem(settings)
        if problem is not None:
            raise PresetError(f"{self.name}: not a preset Vital can load safely: {problem}")
        return replace(self, data=PresetData(settings))

    def with_played_note(self, note: PlayedNote) -> Preset:
        """A copy that stores the note it is meant to be played at (written into the .vital)."""
        return self.with_meta(played_note=note)

    @property
    def name(self) -> str:
        return str(self.meta.get("preset_name") or "Untitled")

    @property
    def played_note(self) -> PlayedNote | None:
        """The note stored with the preset (`infer` stores the one it matched at), or None."""
        note = self.meta.get("played_note")
        return note if isinstance(note, PlayedNote) else None

    # -- serialisation ---------------------------------------------------------------------------
    def settings_dict(self) -> dict:
        """The `settings` object vita reads: all controls clamped, slots filled, structured data."""
        ps = param_space()
        settings: dict[str, Any] = self.data.as_settings()
        for c in ps.plain_controls:
            settings[c.name] = c.clamp(self.values.get(c.name, c.default))
        slots = [{"source": "", "destination": ""} for _ in range(N_MOD_SLOTS)]
        for c in ps.slot_controls:
            settings[c.name] = c.default
        for i, m in enumerate(self.modulations, start=1):
            slots[i - 1] = {"source": m.source, "destination": m.destination}
            for fld, value in zip(MOD_SLOT_FIELDS, m.slot_values()):
                settings[f"modulation_{i}_{fld}"] = ps[f"modulation_{i}_{fld}"].clamp(value)
        settings["modulations"] = slots
        return settings

    def to_dict(self, synth_version: str = _vita.VITAL_SYNTH_VERSION) -> dict:
        doc: dict[str, Any] = {"author": "", "comments": "", "preset_style": ""}
        doc.update({k: v for k, v in self.meta.items() if k in _META_KEYS})
        doc["synth_version"] = synth_version
        doc["settings"] = self.settings_dict()
        return doc

    def to_json(self) -> str:
        """JSON that `vita.Synth.load_json` accepts (vita's own version string)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def to_vital_json(self) -> str:
        """The text of a .vital file, produced by vita itself from this preset."""
        synth = _vita.new_synth()
        self.apply_to(synth)
        doc = json.loads(synth.to_json())
        doc["synth_version"] = EXPORT_SYNTH_VERSION
        for k in _META_KEYS:
            if k in self.meta:
                doc[k] = self.meta[k]
        if self.played_note is not None:
            doc[PLAYED_NOTE_KEY] = self.played_note.as_dict()
        return json.dumps(doc, indent=None)

    def save(self, path: str | os.PathLike) -> Path:
        """Write a .vital file atomically (through vita's JSON, so Vital loads it)."""
        p = Path(path)
        atomic_write_text(p, self.to_vital_json())
        return p

    def apply_to(self, synth: Any) -> None:
        """Load this preset into a vita Synth with `load_json` (validates first; never poisons it)."""
        ok = synth.load_json(self.to_json())
        if not ok:
            raise PresetError(f"vita refused preset {self.name!r} (load_json returned False)")

    @property
    def structure_key(self) -> str:
        """Hash of what a Synth can only take through `load_json`: data, routing, oversampling."""
        routing = "|".join(f"{m.source}>{m.destination}" for m in self.modulations)
        over = self.values.get("oversampling", 1.0)
        return hashlib.sha1(f"{self.data.key}/{routing}/{over}".encode()).hexdigest()

    def content_hash(self) -> str:
        """A stable hash of everything that defines the sound (values, routing, structured data)."""
        ps = param_space()
        vals = ",".join(f"{ps[k].clamp(v):.6g}" for k, v in sorted(self.values.items()))
        mods = ";".join(
            f"{m.source}>{m.destination}:{m.amount:.6g}:{int(m.bipolar)}:{m.power:.6g}:"
            f"{int(m.stereo)}:{int(m.bypass)}"
            for m in self.modulations
        )
        return hashlib.sha1(f"{vals}/{mods}/{self.data.key}".encode()).hexdigest()[:16]

    def differences(self, other: Preset, atol: float = 1e-5) -> list[str]:
        """Human-readable differences in control values and modulations (for tests and debugging)."""
        ps = param_space()
        out = []
        for k in sorted(set(self.values) | set(other.values)):
            a = ps[k].clamp(self.values.get(k, ps[k].default))
            b = ps[k].clamp(other.values.get(k, ps[k].default))
            if abs(a - b) > atol * max(1.0, abs(a)):
                out.append(f"{k}: {a} != {b}")
        ma = [
            (m.source, m.destination, round(m.amount, 5), m.bipolar, round(m.power, 5), m.stereo, m.bypass)
            for m in self.modulations
        ]
        mb = [
            (m.source, m.destination, round(m.amount, 5), m.bipolar, round(m.power, 5), m.stereo, m.bypass)
            for m in other.modulations
        ]
        if ma != mb:
            out.append(f"modulations: {ma} != {mb}")
        return out

    # -- vectors -------------------------------------------------------------------------------
    def to_vector(self, tier: int | TierSpace, space: ParamSpace | None = None) -> ParamVector:
        """Normalized vectors of a tier: continuous in [0, 1], categorical indices, modulation list."""
        ps = space or param_space()
        ts = tier if isinstance(tier, TierSpace) else ps.tier(tier)
        raw = np.array([self.values.get(n, ps[n].default) for n in ts.continuous], np.float64)
        cont = ts.cont_to_unit(np.array([ps[n].clamp(x) for n, x in zip(ts.continuous, raw)]))
        cat = np.array([ps[n].index_of(self.values.get(n, ps[n].default)) for n in ts.categorical], np.int64)
        kept, _ = self.routing_for_tier(ts, ps)
        mods = np.zeros(len(kept), MOD_DTYPE)
        for i, m in enumerate(kept):
            mods[i] = (
                ts.source_index(m.source),
                ts.destination_index(m.destination),
                (np.clip(m.amount, -1, 1) + 1) / 2,
                int(m.bipolar),
                (np.clip(m.power, -10, 10) + 10) / 20,
                int(m.stereo),
            )
        return ParamVector(ts.tier, cont.astype(np.float32), cat, mods)

    def routing_for_tier(
        self, ts: TierSpace, space: ParamSpace | None = None
    ) -> tuple[list[Modulation], list[tuple[Modulation, str]]]:
        """Split the modulations into those the tier represents and those dropped, with reasons."""
        ps = space or param_space()
        kept: list[Modulation] = []
        dropped: list[tuple[Modulation, str]] = []
        for m in self.modulations:
            if not ts.has_modulation:
                dropped.append((m, f"tier {ts.tier} has no modulation routing"))
            elif m.bypass:
                dropped.append((m, "bypassed slot"))
            elif (r := ps.modulation_source_reason(m.source)) is not None:
                dropped.append((m, f"source blocked: {r}"))
            elif (r := ps.modulation_destination_reason(m.destination)) is not None:
                dropped.append((m, f"destination blocked: {r}"))
            else:
                kept.append(m)
        return kept, dropped

    @classmethod
    def from_vector(
        cls, vec: ParamVector, base: Preset | None = None, space: ParamSpace | None = None
    ) -> Preset:
        """Rebuild a preset from tier vectors; controls outside the tier come from `base` (init)."""
        ps = space or param_space()
        ts = ps.tier(vec.tier)
        base = base or cls.init()
        values = dict(base.values)
        raw = ts.cont_from_unit(np.asarray(vec.continuous, np.float64))
        for n, x in zip(ts.continuous, raw):
            values[n] = float(x)
        for n, idx in zip(ts.categorical, np.asarray(vec.categorical)):
            values[n] = ps[n].raw_of_index(int(idx))
        mods = base.modulations
        if ts.has_modulation:
            mods = tuple(
                Modulation(
                    source=ts.mod_sources[int(r["source"])],
                    destination=ts.mod_destinations[int(r["destination"])],
                    amount=float(np.clip(r["amount"], 0, 1)) * 2 - 1,
                    bipolar=bool(r["bipolar"]),
                    power=float(np.clip(r["power"], 0, 1)) * 20 - 10,
                    stereo=bool(r["stereo"]),
                )
                for r in _unique_pairs(vec.modulation)[:N_MOD_SLOTS]
            )
        return replace(base, values=values, modulations=mods)


@dataclass
class ParamVector:
    """A preset as a tier's normalized vectors."""

    tier: int
    continuous: np.ndarray  # (Nc,) float32 in [0, 1]
    categorical: np.ndarray  # (Nk,) int64 option indices
    modulation: np.ndarray = field(default_factory=lambda: np.zeros(0, MOD_DTYPE))  # (M,) MOD_DTYPE


def _unique_pairs(mods: np.ndarray) -> np.ndarray:
    if len(mods) == 0:
        return mods
    _, first = np.unique(np.stack([mods["source"], mods["destination"]], 1), axis=0, return_index=True)
    return mods[np.sort(first)]


def _read_modulations(settings: Mapping, origin: str, strict: bool) -> list[Modulation]:
    slots = settings.get("modulations") or []
    if not isinstance(slots, list):
        raise PresetError(f"{origin}: 'modulations' is not a list")
    mods: list[Modulation] = []
    seen: set[tuple[str, str]] = set()
    for i, slot in enumerate(slots[:N_MOD_SLOTS], start=1):
        if not isinstance(slot, Mapping):
            continue
        src, dst = str(slot.get("source") or ""), str(slot.get("destination") or "")
        if not src and not dst:
            continue

        def val(fld: str, default: float = 0.0, i: int = i) -> float:
            try:
                x = float(settings.get(f"modulation_{i}_{fld}", default))
            except (TypeError, ValueError, OverflowError):
                return default
            return x if math.isfinite(x) else default

        m = Modulation(
            src,
            dst,
            amount=val("amount"),
            bipolar=val("bipolar") >= 0.5,
            power=val("power"),
            stereo=val("stereo") >= 0.5,
            bypass=val("bypass") >= 0.5,
        )
        try:
            m.validate()
        except InvalidModulationError as exc:
            if strict:
                raise InvalidModulationError(f"{origin}: slot {i}: {exc}") from None
            log.warning("%s: modulation slot %d dropped: %s", origin, i, exc)
            continue
        if (src, dst) in seen:
            log.warning("%s: modulation slot %d dropped: duplicate %s -> %s", origin, i, src, dst)
            continue
        seen.add((src, dst))
        mods.append(m)
    return mods


BASE_PRESETS = ("init", "basic_shapes")


@functools.lru_cache(maxsize=len(BASE_PRESETS))
def _base_preset(name: str) -> Preset:
    init = Preset.init()
    if name == "init":
        return init
    if name == "basic_shapes":
        from synthmatch.synth.wavetables import basic_shapes_wavetable

        table = basic_shapes_wavetable()
        return init.with_data(wavetables=[table, table, table]).with_meta(preset_name="Basic Shapes")
    raise PresetError(f"unknown base preset {name!r}; known: {', '.join(BASE_PRESETS)}")


def base_preset(name: str = "basic_shapes") -> Preset:
    """The fixed structured part under generated and predicted presets.

    "basic_shapes": Vital's init preset with the Basic Shapes wavetable on all three oscillators, so
    `wave_frame` morphs sine -> triangle -> saw -> square. "init": Vital's init preset (saw only).
    """
    return _base_preset(name)
