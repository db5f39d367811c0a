"""`synthmatch params` and `synthmatch render`: the parameter space and rendering a preset."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from synthmatch.defaults import DEFAULT_SAMPLE_RATE
from synthmatch.synth.params import TIERS

log = logging.getLogger("synthmatch")


def run_params(args: argparse.Namespace) -> int:
    from synthmatch.synth.params import param_space

    ps = param_space()
    rows = ps.records(tier=args.tier, include_excluded=args.all)
    if args.json:
        ts = ps.tier(args.tier) if args.tier else None
        doc = {"tier": args.tier, "controls": rows}
        if ts is not None:
            doc["counts"] = {
                "continuous": len(ts.continuous),
                "categorical": len(ts.categorical),
                "modulation_sources": len(ts.mod_sources),
                "modulation_destinations": len(ts.mod_destinations),
            }
            if ts.has_modulation:
                doc["modulation_sources"] = list(ts.mod_sources)
                doc["modulation_destinations"] = list(ts.mod_destinations)
        json.dump(doc, sys.stdout, indent=1)
        print()
        return 0
    print(f"{'name':34} {'kind':11} {'module':12} {'range':>24} {'default':>10} tier")
    for r in rows:
        rng = f"[{r['min']:g}, {r['max']:g}]"
        tier = r["tier"] if r["tier"] is not None else f"- ({r['excluded_reason']})"
        print(f"{r['name']:34} {r['kind']:11} {r['module']:12} {rng:>24} {r['default']:>10.4g} {tier}")
    if args.tier:
        ts = ps.tier(args.tier)
        print(
            f"\ntier {args.tier}: {len(ts.continuous)} continuous, {len(ts.categorical)} categorical/switch"
            + (
                f", modulation {len(ts.mod_sources)} sources x {len(ts.mod_destinations)} destinations"
                if ts.has_modulation
                else ""
            )
        )
    return 0


def add_params(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tier", type=int, choices=TIERS, help="only the controls of this tier (default: every control)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--all", action="store_true", help="with --tier: also list controls outside it")


def run_render(args: argparse.Namespace) -> int:
    from synthmatch.audio.io import write_wav
    from synthmatch.audio.pitch import note_name
    from synthmatch.synth.presets import Preset, played_note_for
    from synthmatch.synth.render import Renderer

    preset = Preset.init() if args.preset == "init" else Preset.load(args.preset)
    note, why = played_note_for(preset, args.midi_note, args.note_duration, args.duration)
    with Renderer(sample_rate=args.sample_rate, n_threads=1) as r:
        audio = r.render(preset, note.midi_note, note.note_duration_s, note.duration_s, stereo=args.stereo)
    write_wav(args.output, audio, args.sample_rate)
    print(
        f"wrote {args.output}: MIDI note {note.midi_note} ({note_name(note.midi_note)}, {why}), key held "
        f"{note.note_duration_s:g} s of {note.duration_s:g} s, {args.sample_rate} Hz"
    )
    return 0


def add_render(p: argparse.ArgumentParser) -> None:
    p.add_argument("preset", help="a .vital file, or 'init' for Vital's init preset")
    p.add_argument("-o", "--output", type=Path, required=True, help="WAV file to write")
    p.add_argument(
        "--midi-note",
        type=int,
        help="note to play (default: the note `infer` matched the preset at, stored in it; else 60 = C4)",
    )
    p.add_argument(
        "--note-duration",
        type=float,
        help="seconds the key is held (default: the stored key time, else 1.5)",
    )
    p.add_argument("--duration", type=float, help="seconds rendered (default: the stored length, else 2)")
    p.add_argument("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE, help="Hz (default %(default)s)")
    p.add_argument("--stereo", action="store_true")
