"""The preset sampler: a pure function of (seed, index, tier), stratified, constrained, compact to pickle."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from synthmatch.datagen.sample import (
    CATEGORICAL_WEIGHTS,
    CONSTRAINTS,
    MAX_CONNECTIONS,
    MORPH_LIMITS,
    PresetSampler,
    _lookup,
    example_midi_note,
    sampling_rules_hash,
)
from synthmatch.synth.presets import Preset
from tests.helpers import COMMUNITY_DIR


@pytest.fixture(scope="module")
def tier2():
    return PresetSampler(tier=2, seed=11)


@pytest.fixture(scope="module")
def tier3_presets():
    s = PresetSampler(tier=3, seed=5)
    return [s.sample(i).preset for i in range(300)]


def test_same_seed_same_parameters_in_any_order(tier2):
    other = PresetSampler(tier=2, seed=11)
    forward = [tier2.sample(i).preset.content_hash() for i in range(0, 600, 37)]
    backward = [other.sample(i).preset.content_hash() for i in reversed(range(0, 600, 37))][::-1]
    assert forward == backward
    different_seed = PresetSampler(tier=2, seed=12)
    assert different_seed.sample(3).preset.content_hash() != tier2.sample(3).preset.content_hash()
    different_tier = PresetSampler(tier=1, seed=11)
    assert different_tier.sample(3).preset.content_hash() != tier2.sample(3).preset.content_hash()


def test_pickled_sampler_draws_the_same_examples():
    community = [
        Preset.load(COMMUNITY_DIR / n) for n in ("Airhorn.vital", "PS-20-Oboe.vital", "Synkick.vital")
    ]
    s = PresetSampler(tier=3, seed=2, community=community, community_share=0.5)
    blob = pickle.dumps(s)
    assert len(blob) < 100_000  # parents travel as tier vectors, not as presets with wavetables
    t = pickle.loads(blob)
    for i in range(0, 200, 9):
        a, b = s.sample(i), t.sample(i)
        assert (a.source, a.parents, a.preset.content_hash()) == (
            b.source,
            b.parents,
            b.preset.content_hash(),
        )


def test_latin_hypercube_strata_within_a_block():
    s = PresetSampler(tier=2, seed=3, block_size=16)
    for block in (0, 3):
        u = np.stack([s.unit_sample(block * 16 + k) for k in range(16)])  # (16, Nc)
        assert u.min() >= 0 and u.max() < 1
        strata = np.floor(u * 16).astype(int)
        # every control visits each of the 16 strata exactly once within the block
        assert (np.sort(strata, axis=0) == np.arange(16)[:, None]).all()
    assert not np.allclose(s.unit_sample(0), s.unit_sample(16))


def test_constraints_are_respected(tier2):
    ps, ts = tier2.space, tier2.ts
    for i in range(150):
        values = tier2.sample(i).preset.values
        assert any(values[f"osc_{k}_on"] >= 0.5 for k in (1, 2, 3)), f"example {i}: no oscillator on"
        for name in ts.continuous:
            rule = _lookup(CONSTRAINTS, name)
            if rule is None:
                continue
            lo, hi, _ = rule
            lo = ps[name].min if lo is None else max(lo, ps[name].min)
            hi = ps[name].max if hi is None else min(hi, ps[name].max)
            x = values[name]
            assert lo - 1e-6 <= x <= hi + 1e-6 or x == pytest.approx(ps[name].default), (i, name, x)
        for name in ts.categorical:
            weights = _lookup(CATEGORICAL_WEIGHTS, name)
            if weights:
                assert values[name] in weights, (i, name, values[name])


def test_spectral_morphs_that_silence_a_sine_are_redrawn(tier2):
    for i in range(300):
        v = tier2.sample(i).preset.values
        for k in (1, 2, 3):
            limits = MORPH_LIMITS.get(int(v[f"osc_{k}_spectral_morph_type"]))
            if limits is not None:
                assert v[f"osc_{k}_wave_frame"] >= limits[0], (i, k)
                assert v[f"osc_{k}_spectral_morph_amount"] <= limits[1], (i, k)


def test_tier1_has_an_oscillator_on():
    s = PresetSampler(tier=1, seed=0)
    for i in range(50):
        v = s.sample(i).preset.values
        assert v["osc_1_on"] >= 0.5 or v["osc_2_on"] >= 0.5


def test_tier3_modulation(tier3_presets):
    ts = PresetSampler(tier=3, seed=5).ts
    counts = [len(p.modulations) for p in tier3_presets]
    assert max(counts) <= MAX_CONNECTIONS
    assert 4 <= np.mean(counts) <= 8  # geometric with mean ~6, capped at 20
    assert min(counts) == 0
    for p in tier3_presets:
        pairs = [(m.source, m.destination) for m in p.modulations]
        assert len(pairs) == len(set(pairs))
        for m in p.modulations:
            assert m.source in ts.mod_sources and m.destination in ts.mod_destinations
            assert -1 <= m.amount <= 1 and -10 <= m.power <= 10


def test_midi_note_is_a_pure_function_over_the_given_notes():
    notes = [example_midi_note(4, i, 2, (48, 60, 72)) for i in range(300)]
    assert notes == [example_midi_note(4, i, 2, [48, 60, 72]) for i in range(300)]
    assert set(notes) == {48, 60, 72}
    assert min(notes.count(n) for n in (48, 60, 72)) > 60
    assert [example_midi_note(5, i, 2, (48, 60, 72)) for i in range(300)] != notes
    with pytest.raises(ValueError):
        example_midi_note(0, 0, 2, ())


def test_bred_share_and_parents():
    community = [Preset.load(COMMUNITY_DIR / n) for n in ("Airhorn.vital", "PS-20-Oboe.vital")]
    s = PresetSampler(tier=2, seed=1, community=community, community_share=0.4)
    examples = [s.sample(i) for i in range(200)]
    bred = [e for e in examples if e.source == "bred"]
    assert 0.25 < len(bred) / len(examples) < 0.55
    names = {p.name for p in community}
    assert all(set(e.parents) <= names for e in bred)
    plain = PresetSampler(tier=2, seed=1)
    assert all(plain.sample(i).source == "random" for i in range(20))


def test_rules_hash_is_stable():
    assert sampling_rules_hash() == sampling_rules_hash()
    assert len(sampling_rules_hash()) == 16
