"""The modulation template: added at amount 0 (the sound unchanged), pruned, exported and read back."""

from __future__ import annotations

import numpy as np
import pytest

from synthmatch.inference.refine import _template_usable
from synthmatch.inference.tutorial import tutorial_markdown
from synthmatch.synth.presets import Modulation, Preset
from synthmatch.synth.template import CANDIDATES, add_template, prune_template, template_connections


def _start() -> Preset:
    return Preset.init().with_values(
        osc_1_random_phase=0, filter_1_on=1, filter_1_cutoff=70, env_1_sustain=0.3, env_1_decay=0.8
    )


def test_added_at_amount_zero_the_sound_is_unchanged(renderer):
    start = _start()
    with_template, slots = add_template(start, CANDIDATES, _template_usable(start, 2))
    assert slots and all(with_template.modulations[s.index].amount == 0.0 for s in slots)
    a, b = (x.audio for x in renderer.render_batch([start, with_template], 57, 0.6, 1.2, fresh=True))
    assert np.array_equal(a, b)


def test_only_audible_destinations_and_free_sources():
    start = _start()
    _, slots = add_template(start, CANDIDATES, _template_usable(start, 2))
    keys = {s.connection.key for s in slots}
    assert "filter_env_1" in keys and "filter_env_2" not in keys  # filter 2 is off
    assert "frame_env" not in keys  # the init saw has one frame: Wave Frame does nothing
    # a start that already uses envelope 2 keeps it: the filter envelope moves to envelope 3, the pitch
    # envelope to the next free one
    used = start.with_modulations([Modulation("env_2", "osc_1_level", 0.3)])
    _, slots = add_template(used, CANDIDATES, _template_usable(used, 2))
    sources = {s.connection.key: s.source for s in slots}
    assert sources["filter_env_1"] == "env_3" and sources["pitch_env"] == "env_4"


def test_pruned_connections_are_gone_and_their_source_restored():
    start = _start()
    preset, slots = add_template(start, template_connections(("filter_env_1", "vibrato")), lambda c: True)
    by_key = {s.connection.key: s for s in slots}
    mods = list(preset.modulations)
    mods[by_key["filter_env_1"].index] = Modulation("env_2", "filter_1_cutoff", 0.35)
    mods[by_key["vibrato"].index] = Modulation("lfo_1", "voice_tune", 0.001, bipolar=True)  # negligible
    pruned, kept = prune_template(preset.with_modulations(mods), slots, original=start)
    assert kept == {"filter_env_1": 0.35}
    assert [(m.source, m.destination) for m in pruned.modulations] == [("env_2", "filter_1_cutoff")]
    assert pruned.values["lfo_1_sync"] == start.values["lfo_1_sync"]  # LFO 1 back as it was
    assert pruned.values["env_2_sustain"] == 0.0  # envelope 2 still drives the cutoff


def test_exported_connections_round_trip_through_vital_and_the_tutorial(tmp_path):
    start = _start()
    preset, slots = add_template(start, template_connections(("filter_env_1",)), lambda c: True)
    mods = [Modulation("env_2", "filter_1_cutoff", 0.35)]
    preset, _ = prune_template(preset.with_modulations(mods), slots, original=start)
    loaded = Preset.load(preset.save(tmp_path / "m.vital"))
    (m,) = loaded.modulations
    assert (m.source, m.destination, m.bipolar) == ("env_2", "filter_1_cutoff", False)
    assert m.amount == pytest.approx(0.35, abs=1e-6)
    assert loaded.differences(preset) == []
    md = tutorial_markdown(loaded, title="t.wav", midi_note=57, note_duration_s=0.6, duration_s=1.2)
    assert "- Envelope 2 -> Filter 1 Cutoff, amount +35%" in md.splitlines()
    assert "Envelope 2 Sustain" in md  # its envelope is listed too: it shapes the cutoff


def test_unknown_template_keys_are_refused():
    with pytest.raises(ValueError, match="unknown template connection"):
        template_connections(("filter_env_1", "nope"))
