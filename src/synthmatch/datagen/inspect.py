"""What a dataset file holds: counts, schema, levels, parameter and modulation statistics, rejections.

`inspect_dataset(path)` returns a JSON-friendly summary and `format_inspection` renders it as text
(`synthmatch inspect FILE.h5`). `example_info(path, i)` describes one example: its metadata, every
parameter of its tier in Vital's display text grouped by module, and its modulation connections
(`synthmatch inspect FILE.h5 --sample I [--wav PATH]`).

Columns are read in slices, so a 200k-example file is summarised without loading it whole.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import numpy as np

from synthmatch.synth.params import module_of, param_space

from .store import REJECTION_REASONS, SOURCES, Dataset

__all__ = ["inspect_dataset", "format_inspection", "example_info", "format_example"]

_ROWS_PER_READ = 8192
# Categorical controls whose histograms the summary shows (generic names; osc_N = every oscillator).
_HISTOGRAMS = (
    "osc_N_destination",
    "osc_N_unison_voices",
    "osc_N_distortion_type",
    "osc_N_spectral_morph_type",
    "filter_N_model",
    "filter_fx_model",
    "sample_destination",
)
_TOP = 10


def _generic(name: str) -> str:
    return re.sub(r"^(osc|filter|env|lfo|random)_\d_", r"\1_N_", name)


def _stats(x: np.ndarray) -> dict:
    x = np.asarray(x, np.float64)
    if x.size == 0:
        return {}
    p = np.percentile(x, [5, 50, 95])
    return {
        "mean": float(x.mean()),
        "std": float(x.std()),
        "min": float(x.min()),
        "p5": float(p[0]),
        "median": float(p[1]),
        "p95": float(p[2]),
        "max": float(x.max()),
    }


def inspect_dataset(path: str | os.PathLike) -> dict:
    """A summary of a dataset file (see the module docstring). Raises DatasetError for a bad file."""
    path = Path(path)
    with Dataset(path) as ds:
        s, h, n = ds.schema, ds.h5, len(ds)
        ps = param_space()
        size = path.stat().st_size
        out: dict = {
            "file": str(path),
            "bytes": size,
            "bytes_per_example": size / n if n else 0.0,
            "schema": {
                "schema_version": s.schema_version,
                "tier": s.tier,
                "sample_rate": s.sample_rate,
                "duration_s": s.duration_s,
                "note_duration_s": s.note_duration_s,
                "midi_notes": list(s.midi_notes),
                "velocity": s.velocity,
                "audio_dtype": s.audio_dtype,
                "channels": s.channels,
                "base_preset": s.base_preset,
                "seed": s.seed,
                "vita_version": s.vita_version,
                "synthmatch_version": s.synthmatch_version,
                "n_continuous": len(s.continuous_names),
                "n_categorical": len(s.categorical_names),
                "n_mod_sources": len(s.mod_sources),
                "n_mod_destinations": len(s.mod_destinations),
            },
            "generation": ds.generation,
        }
        source = ds.column("source")
        notes = ds.column("midi_note")
        hashes = ds.column("preset_hash")
        rms, peak = ds.column("rms_db"), ds.column("peak")
        out["counts"] = {
            "examples": n,
            "by_source": {SOURCES[k]: int(v) for k, v in sorted(Counter(source.tolist()).items())},
            "by_midi_note": {str(k): int(v) for k, v in sorted(Counter(notes.tolist()).items())},
            "unique_presets": int(len(np.unique(hashes))) if n else 0,
        }
        out["levels"] = {
            "rms_db": _stats(rms),
            "peak": _stats(peak),
            "at_full_scale": int(np.sum(peak >= 0.999)),
        }

        # continuous: pooled mean/std per module, streamed
        names = s.continuous_names
        modules = [module_of(x) for x in names]
        acc_sum = np.zeros(len(names))
        acc_sq = np.zeros(len(names))
        cat_counts: list[Counter[int]] = [Counter() for _ in s.categorical_names]
        for a in range(0, n, _ROWS_PER_READ):
            b = min(a + _ROWS_PER_READ, n)
            c = h["continuous"][a:b].astype(np.float64)
            acc_sum += c.sum(0)
            acc_sq += np.square(c).sum(0)
            k = h["categorical"][a:b]
            for j in range(k.shape[1]):
                cat_counts[j].update(k[:, j].tolist())
        per_module: dict[str, dict] = {}
        for m in dict.fromkeys(modules):
            idx = [i for i, x in enumerate(modules) if x == m]
            count = n * len(idx)
            mean = acc_sum[idx].sum() / count if count else 0.0
            var = acc_sq[idx].sum() / count - mean * mean if count else 0.0
            per_module[m] = {
                "parameters": len(idx),
                "mean": float(mean),
                "std": float(np.sqrt(max(var, 0.0))),
            }
        out["continuous_by_module"] = per_module

        switches, histograms = {}, {}
        for j, name in enumerate(s.categorical_names):
            spec = ps.controls.get(name)
            if name.endswith("_on") and spec is not None and spec.kind == "switch":
                switches[name] = cat_counts[j].get(1, 0) / n if n else 0.0
            elif _generic(name) in _HISTOGRAMS:
                histograms[name] = {
                    (spec.option_label(spec.min + int(k)) if spec is not None else str(k)): int(v)
                    for k, v in sorted(cat_counts[j].items())
                }
        out["switch_on_rate"] = switches
        out["categorical_histograms"] = histograms

        if s.mod_sources:
            counts = h["mod_index"][:, 1] if n else np.zeros(0, np.int64)
            mods = h["modulations"][:]
            src = Counter(mods["source"].tolist())
            dst = Counter(mods["destination"].tolist())
            out["modulation"] = {
                "connections": int(len(mods)),
                "examples_with_modulation": int(np.sum(counts > 0)),
                "per_example": _stats(counts) if n else {},
                "amount_abs_mean": float(np.mean(np.abs(mods["amount"] * 2 - 1))) if len(mods) else 0.0,
                "top_sources": [[s.mod_sources[k], int(v)] for k, v in src.most_common(_TOP)],
                "top_destinations": [[s.mod_destinations[k], int(v)] for k, v in dst.most_common(_TOP)],
            }
        rej = ds.rejections()
        rejected = sum(rej.values())
        out["rejections"] = {
            "counts": {r: int(rej.get(r, 0)) for r in REJECTION_REASONS},
            "rejected": int(rejected),
            "attempted": int(n + rejected),
            "rate": rejected / (n + rejected) if n + rejected else 0.0,
        }
    return out


def _fmt_stats(d: dict, unit: str = "") -> str:
    if not d:
        return "-"
    return (
        f"mean {d['mean']:.2f}{unit}, median {d['median']:.2f}, p5 {d['p5']:.2f}, p95 {d['p95']:.2f}, "
        f"min {d['min']:.2f}, max {d['max']:.2f}"
    )


def format_inspection(info: dict) -> str:
    """The summary as text."""
    s, c = info["schema"], info["counts"]
    lines = [
        f"{info['file']}: {c['examples']} examples, {info['bytes'] / 1e6:.1f} MB "
        f"({info['bytes_per_example'] / 1e3:.1f} KB per example)",
        "",
        "schema",
        f"  version {s['schema_version']}, tier {s['tier']}, {s['sample_rate']} Hz, {s['duration_s']:g} s renders, "
        f"note held {s['note_duration_s']:g} s, velocity {s['velocity']:g}",
        f"  audio {s['audio_dtype']} {'mono' if s['channels'] == 1 else 'stereo'}; base preset {s['base_preset']}; "
        f"MIDI notes {', '.join(map(str, s['midi_notes']))}",
        f"  parameters: {s['n_continuous']} continuous, {s['n_categorical']} categorical/switch"
        + (
            f", modulation {s['n_mod_sources']} sources x {s['n_mod_destinations']} destinations"
            if s["n_mod_sources"]
            else ""
        ),
        f"  vita {s['vita_version']}, synthmatch {s['synthmatch_version']}, seed {s['seed']}",
    ]
    g = info.get("generation")
    if g:
        cfg = g["config"]
        lines.append(
            f"  generated: indices [{g['index_start']}, {g['index_stop']}), fingerprint {g['fingerprint']}, "
            f"silence below {cfg.get('silence_db')} dBFS, part size {cfg.get('part_size')}, "
            f"{cfg.get('community_presets', 0)} community presets (share {cfg.get('community_share', 0):g})"
        )
    lines += [
        "",
        "counts",
        "  by source: " + (", ".join(f"{k} {v}" for k, v in c["by_source"].items()) or "-"),
        "  by MIDI note: " + (", ".join(f"{k}: {v}" for k, v in c["by_midi_note"].items()) or "-"),
        f"  unique presets: {c['unique_presets']}",
        "",
        "levels",
        f"  RMS dBFS: {_fmt_stats(info['levels']['rms_db'])}",
        f"  peak:     {_fmt_stats(info['levels']['peak'])}",
        f"  at full scale (peak >= 0.999): {info['levels']['at_full_scale']}",
        "",
        "rejections",
    ]
    r = info["rejections"]
    lines.append(
        f"  {r['rejected']} of {r['attempted']} attempted ({r['rate']:.1%}): "
        + ", ".join(f"{k} {v}" for k, v in r["counts"].items())
    )
    lines += ["", "continuous parameters (normalized [0, 1]) by module: parameters, mean, std"]
    for m, d in info["continuous_by_module"].items():
        lines.append(f"  {m:<16} {d['parameters']:>4}  {d['mean']:.3f}  {d['std']:.3f}")
    if info["switch_on_rate"]:
        lines += ["", "switches (share on)"]
        items = list(info["switch_on_rate"].items())
        for k in range(0, len(items), 4):
            lines.append("  " + "   ".join(f"{n:<14} {v:5.1%}" for n, v in items[k : k + 4]))
    if info["categorical_histograms"]:
        lines += ["", "categorical histograms"]
        for name, hist in info["categorical_histograms"].items():
            lines.append(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in hist.items()))
    mod = info.get("modulation")
    if mod:
        lines += [
            "",
            "modulation",
            f"  {mod['connections']} connections; {mod['examples_with_modulation']} examples have some; "
            f"per example {_fmt_stats(mod['per_example'])}; mean |amount| {mod['amount_abs_mean']:.2f}",
            "  top sources: " + ", ".join(f"{k} {v}" for k, v in mod["top_sources"]),
            "  top destinations: " + ", ".join(f"{k} {v}" for k, v in mod["top_destinations"]),
        ]
    return "\n".join(lines)


def example_info(path: str | os.PathLike, index: int, wav: str | os.PathLike | None = None) -> dict:
    """One example: metadata, its tier's parameters (raw, normalized, Vital's display text) and connections.

    Args:
        path: the dataset file.
        index: row index (negative counts from the end).
        wav: also write the example's audio to this WAV file.

    Raises:
        IndexError: no such row. DatasetError: a bad file.
    """
    from synthmatch.synth.display import display_text

    with Dataset(path) as ds:
        i = ds._check(int(index))
        info = ds.row_info(i)
        preset = ds.preset(i)
        vec = ds.vector(i)
        s = ds.schema
        ps = param_space()
        params = []
        for name, u in zip(s.continuous_names, vec.continuous):
            raw = preset.values[name]
            params.append(
                {
                    "name": name,
                    "module": module_of(name),
                    "raw": float(raw),
                    "unit": float(u),
                    "text": display_text(name, raw),
                }
            )
        for name in s.categorical_names:
            raw = preset.values[name]
            params.append(
                {
                    "name": name,
                    "module": module_of(name),
                    "raw": float(raw),
                    "index": ps[name].index_of(raw),
                    "text": display_text(name, raw),
                }
            )
        info["parameters"] = params
        info["modulations"] = [
            {
                "source": m.source,
                "destination": m.destination,
                "amount": m.amount,
                "bipolar": m.bipolar,
                "power": m.power,
                "stereo": m.stereo,
            }
            for m in preset.modulations
        ]
        if wav is not None:
            from synthmatch.audio.io import write_wav

            write_wav(wav, ds.audio(i), s.sample_rate)
            info["wav"] = str(wav)
    return info


def format_example(info: dict) -> str:
    """An example's description as text: metadata, then parameters grouped by module."""
    ps = param_space()
    lines = [
        f"example {info['index']}: {info['name']!r} (source {info['source']}, generator index {info['seed_index']}, "
        f"MIDI note {info['midi_note']})",
        f"  preset hash {info['preset_hash']}, RMS {info['rms_db']:.1f} dBFS, peak {info['peak']:.3f}, "
        f"{info['n_modulations']} modulation connections"
        + (f", file {info['file']}" if info["file"] else ""),
    ]
    values = {p["name"]: p for p in info["parameters"]}
    groups: dict[str, list[dict]] = {}
    for p in info["parameters"]:
        groups.setdefault(p["module"], []).append(p)
    off = []
    for module, members in groups.items():
        switch = values.get(f"{module}_on")
        if switch is not None and switch["raw"] < 0.5:
            off.append(module)
            continue
        lines.append(f"{module}")
        for p in members:
            spec = ps.controls.get(p["name"])
            label = spec.display_name if spec is not None else p["name"]
            norm = f"  (u={p['unit']:.3f})" if "unit" in p else ""
            lines.append(f"  {label:<32} {p['text']}{norm}")
    if off:
        lines.append("off: " + ", ".join(off))
    if info["modulations"]:
        lines.append(f"modulation ({len(info['modulations'])} connections)")
        for m in info["modulations"]:
            flags = "".join(f", {f}" for f in ("bipolar", "stereo") if m[f])
            lines.append(
                f"  {m['source']} -> {m['destination']}: amount {m['amount']:+.3f}, power {m['power']:+.2f}{flags}"
            )
    if "wav" in info:
        lines.append(f"wrote {info['wav']}")
    return "\n".join(lines)
