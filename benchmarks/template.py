"""Which modulation connections belong in refinement's template: each measured on real targets.

    python benchmarks/template.py --targets data/devset data/in_domain --per-set 12 --evals 300

For each target (the first `--per-set` files of each target-set folder, in name order, spread over the
set) the bundled default model predicts a start, and `inference.match.match_preset` refines it with the
same budget once per variant: no template, every candidate connection (`synth.template.CANDIDATES`), the
envelope ones, the LFO ones, or each candidate alone (`--variants`); refinement probes the offered ones on
the target and searches those that help. Every result is scored as the user hears it (`Match.distance`: a fresh render of
the exported preset over the whole target). The table gives, per variant, the median and mean distance,
the paired win rate against no template, and how often the variant's connections were kept in the
exported preset (a connection is exported only when removing it raises the loss).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import load_monitor, machine_line, print_table  # noqa: E402


def _targets(folders: list[str], per_set: int) -> list[tuple[str, Path, object]]:
    from synthmatch.evaluation.manifest import read_manifest

    out = []
    for folder in folders:
        manifest = read_manifest(folder)
        files = sorted(manifest)
        step = max(1, len(files) // per_set)
        for f in files[::step][:per_set]:
            out.append((Path(folder).name, Path(folder) / f, manifest[f]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", nargs="+", required=True)
    ap.add_argument("--per-set", type=int, default=12)
    ap.add_argument("--evals", type=int, default=300)
    ap.add_argument(
        "--variants", help="comma-separated: none,all,envelopes,lfos,<key>,... (default: none, all, each key)"
    )
    ap.add_argument("--out", default="runs/template.json")
    ap.add_argument("--template-step", type=float, default=0.3, help="RefineConfig.template_step")
    a = ap.parse_args()

    import soundfile as sf

    from synthmatch.audio.pitch import estimate_pitch
    from synthmatch.inference.match import MatchTarget, match_preset
    from synthmatch.inference.predict import Predictor, default_model_path
    from synthmatch.inference.refine import RefineConfig
    from synthmatch.synth.render import Renderer
    from synthmatch.synth.template import CANDIDATES

    keys = [c.key for c in CANDIDATES]
    variants = a.variants.split(",") if a.variants else ["none", "all", *keys]
    envelopes = tuple(c.key for c in CANDIDATES if c.source.startswith("env_"))
    lfos = tuple(c.key for c in CANDIDATES if c.source.startswith("lfo_"))
    template_of = {
        "none": (),
        "all": tuple(keys),
        "envelopes": envelopes,
        "lfos": lfos,
        **{k: (k,) for k in keys},
    }
    predictor = Predictor.load(default_model_path())
    targets = _targets(a.targets, a.per_set)
    out = Path(a.out)
    results: dict = json.loads(out.read_text()) if out.exists() else {}
    load: dict = {}
    t0 = time.perf_counter()
    with Renderer(sample_rate=predictor.sample_rate) as renderer, load_monitor(load):
        for set_name, path, item in targets:
            audio, sr = sf.read(str(path), dtype="float32")
            pitch = estimate_pitch(audio, sr)
            note = item.midi_note if item.midi_note is not None else pitch.midi_note
            target = MatchTarget.of(audio, sr, note, None, name=path.name)
            start = predictor.predict(target.audio, sr, note)
            for v in variants:
                key = f"{set_name}/{path.name}/{v}"
                if key in results:
                    continue
                cfg = RefineConfig(
                    max_evals=a.evals, timeout_s=3600, template=template_of[v], template_step=a.template_step
                )
                m = match_preset(start.preset, start.tier, target, renderer, refine=cfg)
                ri = m.refine
                results[key] = {
                    "distance": m.distance,
                    "renders": m.renders,
                    "kept": sorted(ri.template) if ri is not None else [],
                    "added": ri.details.get("template_added", []) if ri is not None else [],
                }
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(results, indent=1))
                print(f"{key}: {m.distance:.4f} kept {results[key]['kept']}", flush=True)
    rows = []
    names = [f"{s}/{p.name}" for s, p, _ in targets]
    base = {n: results[f"{n}/none"]["distance"] for n in names if f"{n}/none" in results}
    for v in variants:
        d = {n: results[f"{n}/{v}"]["distance"] for n in names if f"{n}/{v}" in results}
        paired = [(d[n], base[n]) for n in d if n in base]
        wins = sum(x < y for x, y in paired)
        losses = sum(x > y for x, y in paired)
        added = sum(bool(results[f"{n}/{v}"]["added"]) for n in d)
        kept = sum(bool(results[f"{n}/{v}"]["kept"]) for n in d)
        vals = np.array(list(d.values()))
        rows.append(
            [v, len(d), float(np.median(vals)), float(np.mean(vals)), f"{wins}/{wins + losses}", added, kept]
        )
    print(
        machine_line(),
        f"; {time.perf_counter() - t0:.0f} s; machine busy cores {load.get('machine_busy_cores', 0):.2f}",
    )
    print_table(
        [
            "variant",
            "targets",
            "median distance",
            "mean distance",
            "wins vs none",
            "targets it was added to",
            "targets it was kept in",
        ],
        rows,
        title=f"Template variants, model start + CMA-ES, {a.evals} renders per target (whole-note fresh renders)",
    )


if __name__ == "__main__":
    main()
