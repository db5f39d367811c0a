"""Facts about vita that docs/VITA.md states, measured here.

    python benchmarks/vita_facts.py [--parts inert,silence] [--n 300]

inert: do the controls the parameter space leaves out really do nothing to a one-shot note? Each control `synth.params` excludes (other than GUI-only ones) is set to its minimum and to its maximum
on a filtered, decaying saw with random phase off, rendered on a fresh Synth (MIDI 60, key held 0.5 s of
1 s), and compared with the same preset at the control's default. With random phase off two fresh renders
of one preset are bit-identical (the first line printed checks it), so any sample that differs is the
control's doing.

silence: how often is a preset drawn uniformly over the controls silent? `--n` presets, every tier-3 plain
control (continuous, categorical and switch: the parameter space's `plain_controls`) drawn uniformly in
its range (discrete ones rounded), rendered at MIDI 60 (key held 1.5 s of 2 s); silent is below -60 dBFS
RMS, the dataset generator's threshold. This is why `datagen.sample` constrains its presets.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine_line, print_table  # noqa: E402


def inert() -> None:
    from synthmatch.audio.distances import match_distance
    from synthmatch.synth.params import param_space
    from synthmatch.synth.presets import Preset
    from synthmatch.synth.render import Renderer

    ps = param_space()
    base = Preset.init().with_values(
        osc_1_random_phase=0, filter_1_on=1, filter_1_cutoff=80, env_1_sustain=0.2, env_1_decay=0.5
    )
    names = [s.name for s in ps.controls.values() if s.excluded_reason and "GUI" not in s.excluded_reason]
    rows = []
    with Renderer(n_threads=1) as r:
        ref = r.render(base, 60, 0.5, 1.0, fresh=True)
        same = np.array_equal(ref, r.render(base, 60, 0.5, 1.0, fresh=True))
        for name in names:
            spec = ps[name]
            worst = dist = 0.0
            for v in (spec.min, spec.max):
                a = r.render(base.with_values(**{name: v}), 60, 0.5, 1.0, fresh=True)
                worst = max(worst, float(np.abs(a - ref).max()))
                dist = max(dist, match_distance(a, ref, 44100))
            rows.append(
                {"control": name, "tried": f"{spec.min:g} / {spec.max:g}", "max sample difference": f"{worst:.3g}",
                 "distance": f"{dist:.3g}", "reason it is left out": spec.excluded_reason}
            )  # fmt: skip
    print(f"two fresh renders of the base preset bit-identical: {same}")
    print_table(list(rows[0]), [list(r.values()) for r in rows])


def silence(n: int) -> None:
    from synthmatch.inference.scoring import rms_db
    from synthmatch.synth.params import param_space
    from synthmatch.synth.presets import Preset
    from synthmatch.synth.render import Renderer

    ps = param_space()
    specs = [c for c in ps.plain_controls if c.tier is not None]
    rng = np.random.default_rng(0)
    presets = [
        Preset.init().with_values(**{c.name: c.clamp(rng.uniform(c.min, c.max)) for c in specs})
        for _ in range(n)
    ]
    with Renderer(n_threads=2) as r:
        results = r.render_batch(presets, 60, 1.5, 2.0, fresh=True)
    levels = np.array([rms_db(x.audio) if x.audio is not None else -200.0 for x in results])
    failed = sum(x.audio is None for x in results)
    print(
        f"\nuniform presets over {len(specs)} controls: {n} rendered, {failed} failed, "
        f"silent (< -60 dBFS RMS) {np.mean(levels < -60):.0%}, median level {np.median(levels):.1f} dBFS"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="inert,silence")
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    print(machine_line())
    parts = args.parts.split(",")
    if "inert" in parts:
        inert()
    if "silence" in parts:
        silence(args.n)


if __name__ == "__main__":
    main()
