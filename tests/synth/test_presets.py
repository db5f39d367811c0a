"""Presets: reading real files, round trips through vita, safety checks, tier vectors."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from synthmatch.synth import _vita
from synthmatch.synth.presets import (
    EXPORT_SYNTH_VERSION,
    MOD_DTYPE,
    PLAYED_NOTE_KEY,
    InvalidModulationError,
    Modulation,
    ParamVector,
    PlayedNote,
    Preset,
    PresetError,
    played_note_for,
)
from tests.helpers import community_presets, rms_db


def test_init_preset(space):
    p = Preset.init()
    assert p.values["osc_1_on"] == 1 and p.values["osc_2_on"] == 0
    assert p.modulations == ()
    assert set(p.values) == {c.name for c in space.plain_controls}


@pytest.mark.parametrize("path", community_presets(), ids=lambda p: p.stem)
def test_community_preset_round_trips(path, tmp_path):
    original = Preset.load(path)
    out = original.save(tmp_path / "rt.vital")
    doc = json.loads(out.read_text())
    assert doc["synth_version"] == EXPORT_SYNTH_VERSION
    again = Preset.load(out)
    assert original.differences(again) == []
    # and vita itself, loading the written file, holds the same values
    synth = _vita.new_synth()
    assert synth.load_json(out.read_text().replace(EXPORT_SYNTH_VERSION, _vita.VITAL_SYNTH_VERSION, 1))
    assert Preset.from_synth(synth).differences(original) == []


# Presets whose level depends on something a headless one-note render does not have.
QUIET_BY_DESIGN = {
    # volume is 0 and only an LFO in "Sync" mode (locked to the host's transport) raises it: a layer
    # meant to pump under a playing song. Rendered alone it sits near -67 dBFS.
    "NierBassLayer2": -90.0,
}


def test_community_presets_render_non_silent(renderer):
    presets = [Preset.load(p) for p in community_presets()]
    assert len(presets) == 59
    results = renderer.render_batch(presets, 60, note_duration_s=1.0, duration_s=2.0)
    for p, r in zip(presets, results):
        assert r.ok, (p.name, r.error)
        assert np.all(np.isfinite(r.audio))
        assert rms_db(r.audio) > QUIET_BY_DESIGN.get(p.name, -60.0), p.name


def test_written_file_has_real_values(tmp_path):
    p = Preset.init().with_values(filter_1_on=1, filter_1_cutoff=100.0, filter_1_model=2, reverb_on=1)
    doc = json.loads(p.save(tmp_path / "x.vital").read_text())
    s = doc["settings"]
    assert s["filter_1_cutoff"] == pytest.approx(100.0)  # raw semitones, not [0, 1]
    assert s["filter_1_model"] == 2 and s["reverb_on"] == 1


def test_the_played_note_is_stored_in_the_file_and_read_back(tmp_path, caplog):
    note = PlayedNote(57, 0.6, 1.0)
    path = Preset.init().with_played_note(note).save(tmp_path / "m.vital")
    doc = json.loads(path.read_text())
    assert doc[PLAYED_NOTE_KEY] == {"midi_note": 57, "note_duration_s": 0.6, "duration_s": 1.0}
    assert _vita.new_synth().load_json(path.read_text())  # a field Vital ignores
    assert Preset.load(path).played_note == note and Preset.init().played_note is None
    assert played_note_for(Preset.load(path)) == (note, "the note it was matched at, stored in the preset")
    assert played_note_for(Preset.init(), note_duration_s=3.0)[0] == PlayedNote(60, 3.0, 3.0)  # all of it
    given = played_note_for(Preset.load(path), midi_note=40, note_duration_s=2.0)
    assert given == (PlayedNote(40, 2.0, 2.0), "the note given")  # held longer: rendered whole
    doc[PLAYED_NOTE_KEY] = {"midi_note": 300, "note_duration_s": 0.6, "duration_s": 1.0}
    bad = tmp_path / "bad.vital"
    bad.write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING):
        assert Preset.load(bad).played_note is None
    assert "not a note synthmatch wrote" in caplog.text


def test_out_of_range_values_are_clamped_before_vita(tmp_path):
    p = Preset.init().with_values(
        chorus_voices=14, effect_chain_order=-1, filter_1_cutoff=1e6, osc_1_level=5.0
    )
    s = json.loads(p.to_json())["settings"]
    assert (s["chorus_voices"], s["effect_chain_order"], s["filter_1_cutoff"], s["osc_1_level"]) == (
        4,
        0,
        136.0,
        1.0,
    )
    # and it renders (these values segfault vita when passed through unclamped)
    from synthmatch.synth.render import Renderer

    with Renderer(n_threads=1) as r:
        assert np.all(np.isfinite(r.render(p.with_values(chorus_on=1), 60, 0.2, 0.4)))


def test_invalid_modulation_name_rejected_without_crash(renderer):
    with pytest.raises(InvalidModulationError, match="nope"):
        Preset.init().with_modulations([Modulation("nope", "filter_1_cutoff", 0.5)])
    with pytest.raises(InvalidModulationError, match="osc_1_on"):
        Preset.init().with_modulations([Modulation("lfo_1", "osc_1_on", 0.5)])
    # the process is alive and the renderer still works
    assert renderer.render(Preset.init(), 60, 0.2, 0.3).shape == (int(0.3 * 44100),)


def test_unknown_modulation_in_file_is_dropped_with_warning(tmp_path, caplog):
    doc = json.loads(Preset.init().to_json())
    doc["settings"]["modulations"][0] = {"source": "nope", "destination": "filter_1_cutoff"}
    doc["settings"]["modulations"][1] = {"source": "lfo_1", "destination": "filter_1_cutoff"}
    doc["settings"]["modulation_2_amount"] = 0.25
    f = tmp_path / "bad_mod.vital"
    f.write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING):
        p = Preset.load(f)
    assert [(m.source, m.destination, m.amount) for m in p.modulations] == [
        ("lfo_1", "filter_1_cutoff", 0.25)
    ]
    assert "bad_mod.vital" in caplog.text and "nope" in caplog.text
    with pytest.raises(InvalidModulationError):
        Preset.load(f, strict=True)


def test_too_many_and_duplicate_modulations_rejected():
    srcs = _vita.modulation_sources()
    dests = [d for d in _vita.modulation_destinations() if not d.startswith("modulation_")]
    mods = [Modulation(srcs[i % len(srcs)], dests[i], 0.1) for i in range(65)]
    with pytest.raises(PresetError, match="64"):
        Preset.init().with_modulations(mods)
    with pytest.raises(InvalidModulationError, match="duplicate"):
        Preset.init().with_modulations(
            [Modulation("lfo_1", "osc_1_level"), Modulation("lfo_1", "osc_1_level")]
        )


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json at all {", "invalid JSON"),
        ('{"synth_version": "1.0.7"}', "no 'settings'"),
        ('{"settings": {}}', "no 'synth_version'"),
        ('{"synth_version": "100000.1.0", "settings": {}}', "newer"),
        ('{"synth_version": "1.0.7", "settings": {"osc_1_level": "loud"}}', "non-numeric"),
    ],
)
def test_malformed_files_give_clear_errors(tmp_path, content, message):
    f = tmp_path / "broken.vital"
    f.write_text(content)
    with pytest.raises(PresetError, match=message) as info:
        Preset.load(f)
    assert "broken.vital" in str(info.value)


def test_binary_missing_and_directory(tmp_path):
    b = tmp_path / "noise.vital"
    b.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(PresetError, match="noise.vital"):
        Preset.load(b)
    with pytest.raises(PresetError, match="no such file"):
        Preset.load(tmp_path / "missing.vital")
    with pytest.raises(PresetError, match="directory"):
        Preset.load(tmp_path)


def test_unknown_control_is_warned_and_ignored(tmp_path, caplog):
    doc = json.loads(Preset.init().to_json())
    doc["settings"]["osc_9_level"] = 0.3
    f = tmp_path / "future.vital"
    f.write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING):
        p = Preset.load(f)
    assert "future.vital" in caplog.text and "osc_9_level" in caplog.text
    assert p.differences(Preset.init()) == []


@pytest.mark.parametrize("tier", [1, 2, 3])
def test_vector_round_trip(space, tier):
    path = next(p for p in community_presets() if p.stem == "TechnoReese")
    preset = Preset.load(path)
    vec = preset.to_vector(tier)
    ts = space.tier(tier)
    assert vec.continuous.shape == (len(ts.continuous),) and vec.continuous.dtype == np.float32
    assert np.all((vec.continuous >= 0) & (vec.continuous <= 1))
    assert vec.categorical.shape == (len(ts.categorical),)
    assert all(0 <= i < n for i, n in zip(vec.categorical, ts.n_options))
    back = Preset.from_vector(vec, base=Preset.init())
    for n in ts.names:
        assert back.values[n] == pytest.approx(space.clamp(n, preset.values[n]), rel=1e-5, abs=1e-5), n
    if tier == 3:
        assert len(vec.modulation) == len(preset.modulations) > 0
        assert [(m.source, m.destination) for m in back.modulations] == [
            (m.source, m.destination) for m in preset.modulations
        ]
        for a, b in zip(back.modulations, preset.modulations):
            assert a.amount == pytest.approx(b.amount, abs=1e-6)
            assert a.power == pytest.approx(b.power, abs=1e-5)
    else:
        assert len(vec.modulation) == 0


def test_vector_drops_blocked_modulations(space):
    p = Preset.init().with_modulations(
        [
            Modulation("lfo_1", "filter_1_cutoff", 0.5),
            Modulation("mod_wheel", "osc_1_level", 0.5),  # inert source
            Modulation("lfo_2", "modulation_1_amount", 0.5),  # modulation of a modulation
            Modulation("lfo_3", "osc_1_tune", 0.5, bypass=True),
        ]
    )
    kept, dropped = p.routing_for_tier(space.tier(3))
    assert [m.source for m in kept] == ["lfo_1"]
    assert len(dropped) == 3 and all(reason for _, reason in dropped)


def test_from_vector_ignores_duplicate_connections(space):
    ts = space.tier(3)
    base = Preset.init().to_vector(3)
    mods = np.zeros(2, MOD_DTYPE)
    mods[:] = (ts.source_index("lfo_1"), ts.destination_index("filter_1_cutoff"), 0.75, 0, 0.5, 0)
    p = Preset.from_vector(ParamVector(3, base.continuous, base.categorical, mods))
    assert len(p.modulations) == 1 and p.modulations[0].amount == pytest.approx(0.5)


def test_a_preset_from_a_newer_vital_release_loads_with_a_warning(caplog):
    import json

    from tests.helpers import community_presets

    doc = json.loads(community_presets()[0].read_text())
    doc["synth_version"] = "2.0.1"
    with caplog.at_level("WARNING"):
        Preset.from_json(doc, origin="future.vital")
    assert any("made by Vital 2.0.1, newer than" in r.getMessage() for r in caplog.records)
