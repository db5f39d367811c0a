"""`synthmatch ingest`: the community presets into a real HDF5 file, logging, de-duplication, bad files."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from synthmatch.cli import main
from synthmatch.datagen.ingest import IngestConfig, IngestError, ingest
from synthmatch.datagen.store import (
    ASSET_KINDS,
    Dataset,
    DatasetError,
    DatasetSchema,
    DatasetWriter,
    ExampleRow,
    merge_datasets,
)
from synthmatch.errors import ConfigError
from synthmatch.synth.presets import Preset
from tests.helpers import COMMUNITY_DIR, community_presets, rms_db

# Short renders at one note keep the tests fast (the defaults are 2.0 s at notes 48, 60, 72).
FAST = dict(midi_notes=(60,), sample_rate=22050, duration_s=0.8, note_duration_s=0.5, progress=False)


def _cfg(inputs, output, **kw) -> IngestConfig:
    return IngestConfig(inputs=tuple(inputs), output=output, **{**FAST, **kw})


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture(scope="module")
def community(tmp_path_factory):
    """All 59 community presets ingested at tier 3 (one note, short render), with the log records."""
    out = tmp_path_factory.mktemp("community") / "community.h5"
    handler = _Records()
    logger = logging.getLogger("synthmatch")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        summary = ingest(_cfg([COMMUNITY_DIR], out, tier=3, include_test_presets=True))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return out, summary, handler.records


def test_community_rows_sources_and_names(community):
    out, summary, _ = community
    files = community_presets()
    assert summary.files_found == len(files) == 59
    with Dataset(out) as ds:
        assert len(ds) == summary.rows_written == summary.rows_in_file == summary.presets_ingested
        assert ds.schema.tier == 3 and ds.schema.sample_rate == 22050 and ds.schema.midi_notes == (60,)
        infos = ds.row_infos(0, len(ds))
    assert {r["source"] for r in infos} == {"community"}
    assert {r["seed_index"] for r in infos} == {-1}
    assert {r["midi_note"] for r in infos} == {60}
    written = {Path(r["file"]).name: r["name"] for r in infos}
    skipped = {Path(f).name for f, _ in summary.skipped_files + summary.skipped_by_design}
    # Every file is accounted for: written once, or skipped with a reason (no duplicates among the 59).
    assert not summary.duplicates
    assert set(written) | skipped == {p.name for p in files} and not set(written) & skipped
    for f in files:
        if f.name in written:
            assert written[f.name] == Preset.load(f).name
    assert all(r["rms_db"] > -60 for r in infos)
    assert len(written) >= 50


def test_evaluation_presets_are_left_out_by_default(tmp_path):
    """The 15 presets of presets/community/split.json never reach training data unless asked."""
    from synthmatch.datagen.community import test_preset_names

    reserved = set(test_preset_names())
    assert len(reserved) == 15
    files = [p for p in community_presets() if p.stem in reserved][:2] + [COMMUNITY_DIR / "Synkick.vital"]
    summary = ingest(_cfg(files, tmp_path / "train.h5"))
    assert summary.ok and summary.rows_written == 1
    assert sorted(Path(f).stem for f in summary.left_out_test) == sorted(p.stem for p in files[:2])
    assert "reserved for evaluation left out" in summary.format()
    with pytest.raises(IngestError, match="include-test-presets"):
        ingest(_cfg(files[:2], tmp_path / "only_test.h5"))
    summary = ingest(_cfg(files, tmp_path / "all.h5", include_test_presets=True))
    assert summary.rows_written == 3 and not summary.left_out_test


def test_nier_bass_layer_two_is_skipped_as_unusable(community, renderer):
    """Its volume rises only through an LFO synced to the host transport: a one-shot note is near -67 dBFS.

    split.json declares it unusable; ingest skips it with that reason (deterministically: a render lands
    either side of the -60 dBFS silence threshold at note 72) and the run reports the skip, by design:
    an INFO line, not a failure of the run.
    """
    _, summary, records = community
    nier_file = str(COMMUNITY_DIR / "NierBassLayerTwo.vital")
    nier = dict(summary.skipped_by_design)[nier_file]
    assert "declared unusable" in nier and "host-synced LFO" in nier
    assert nier_file not in dict(summary.skipped_files)
    infos = [r.getMessage() for r in records if r.levelno == logging.INFO]
    assert any("NierBassLayerTwo.vital" in m and "unusable" in m for m in infos)
    assert "skipped by design" in summary.format()
    audio = renderer.render(Preset.load(COMMUNITY_DIR / "NierBassLayerTwo.vital"), 48, 1.5, 2.0)
    assert rms_db(audio) < -60


def test_community_dropped_connections_counted_and_logged(community):
    _, summary, records = community
    # Parsing is deterministic: these are the tier-3 drops of the 59 files (docs/INGEST.md).
    # NierBassLayerTwo (6 connections) is skipped before it is read: declared unusable in split.json.
    read = sum(len(Preset.load(p).modulations) for p in community_presets() if p.stem != "NierBassLayerTwo")
    assert summary.connections_total == read == 267
    dropped = sum(summary.dropped_connections.values())
    assert dropped == 35 and summary.connections_kept == read - dropped
    assert (
        summary.dropped_connections[
            "destination blocked: targets a modulation slot's own control (amount, power, ...): not represented in "
            "tier-3 routing"
        ]
        == 29
    )
    assert summary.dropped_connections["source blocked: no mod wheel movement in a rendered note"] == 4
    info = [
        r.getMessage()
        for r in records
        if r.levelno == logging.INFO and "dropped modulation" in r.getMessage()
    ]
    assert len(info) == dropped
    assert any(m.startswith("SaturnOhNine: dropped modulation mod_wheel -> osc_2_wave_frame") for m in info)
    assert "beats_per_minute" in summary.reset_controls


def test_stored_presets_agree_with_the_audio_and_keep_their_data(community):
    """Dataset.preset(i) is the rendered projection, over the file's own wavetables/LFOs/sample."""
    out, summary, _ = community
    with Dataset(out) as ds:
        for i in range(0, len(ds), 5):
            info = ds.row_info(i)
            original = Preset.load(info["file"])
            rebuilt = ds.preset(i)
            assert rebuilt.content_hash() == info["preset_hash"]
            assert rebuilt.data.key == original.data.key  # the real wavetables, LFO shapes and sample
            assert rebuilt.name == original.name
        catalog = ds.asset_catalog()
        # The catalog also holds the schema's base preset (stored when the file is created).
        for kind in ASSET_KINDS:
            assert len(catalog[kind]) >= summary.unique_assets[kind] > 0
        wavetable = ds.asset("wavetables", next(iter(catalog["wavetables"])), catalog)
        assert isinstance(wavetable, dict) and "groups" in wavetable
    # Hashes de-duplicate: the 59 presets hold far fewer distinct items than 59 x (3 + 8 + 1).
    assert summary.unique_assets["wavetables"] < 3 * summary.presets_ingested
    assert summary.custom_assets["sample"] <= summary.unique_assets["sample"]


def test_modulation_logging_at_info_bypass_and_unknown_names(tmp_path, caplog):
    doc = json.loads((COMMUNITY_DIR / "SaturnOhNine.vital").read_text())
    s = doc["settings"]
    slots = s["modulations"]
    first = next(i for i, slot in enumerate(slots) if slot["source"])
    s[f"modulation_{first + 1}_bypass"] = 1.0  # a bypassed slot is skipped, not lost
    free = next(i for i, slot in enumerate(slots) if not slot["source"])
    slots[free] = {"source": "lfo_99", "destination": "filter_1_cutoff"}  # unknown to vita
    doc["preset_name"] = "Saturn Edited"
    (tmp_path / "edited.vital").write_text(json.dumps(doc))
    with caplog.at_level(logging.DEBUG, logger="synthmatch"):
        summary = ingest(_cfg([tmp_path / "edited.vital"], tmp_path / "out.h5"))
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(
        m == "Saturn Edited: dropped modulation mod_wheel -> osc_2_wave_frame (amount +0.0995): "
        "source blocked: no mod wheel movement in a rendered note"
        for m in info
    ), info
    assert any(
        "Saturn Edited: dropped modulation lfo_99 -> filter_1_cutoff: unknown modulation source" in m
        for m in info
    )
    assert summary.dropped_connections["bypassed slot"] == 1
    assert summary.dropped_connections["unknown modulation source"] == 1
    bypass_logs = [r for r in caplog.records if "bypassed slot" in r.getMessage()]
    assert bypass_logs and all(r.levelno == logging.DEBUG for r in bypass_logs)
    assert "bypassed slot" in summary.format() and "unknown modulation source" in summary.format()
    with Dataset(tmp_path / "out.h5") as ds:
        assert ds.row_info(0)["n_modulations"] == summary.connections_kept


def test_tier2_drops_every_connection(tmp_path):
    summary = ingest(_cfg([COMMUNITY_DIR / "TechnoReese.vital"], tmp_path / "t2.h5", tier=2))
    n = len(Preset.load(COMMUNITY_DIR / "TechnoReese.vital").modulations)
    assert summary.dropped_connections == {"tier 2 has no modulation routing": n}
    with Dataset(tmp_path / "t2.h5") as ds:
        assert ds.schema.tier == 2 and ds.row_info(0)["n_modulations"] == 0


def _write_bad_files(folder: Path) -> dict[str, str]:
    """Real-world breakage next to good presets; returns file name -> expected words of the reason."""
    folder.mkdir(parents=True, exist_ok=True)
    base = json.loads((COMMUNITY_DIR / "Synkick.vital").read_text())

    def variant(name: str, **settings) -> dict:
        doc = json.loads(json.dumps(base))
        doc["preset_name"] = name
        doc["settings"].update(settings)
        return doc

    (folder / "broken.vital").write_text('{"settings": {"volume": ')
    (folder / "binary.vital").write_bytes(bytes(range(256)) * 4)
    (folder / "notes.txt").write_text("not a preset")  # inside a folder: ignored
    newer = variant("From The Future")
    newer["synth_version"] = "100000.0.0"
    (folder / "newer.vital").write_text(json.dumps(newer))
    (folder / "silent.vital").write_text(json.dumps(variant("Muted", volume=0.0)))
    (folder / "nonnumeric.vital").write_text(json.dumps(variant("Bad Value", filter_1_cutoff="loud")))
    (folder / "no_settings.vital").write_text(json.dumps({"synth_version": "1.0.7", "preset_name": "x"}))
    # Kept, with a warning: a control this Vital build does not know.
    (folder / "unknown_control.vital").write_text(
        json.dumps(variant("Future Knob", osc_1_future_knob=0.7, osc_1_transpose=7.0))
    )
    sub = folder / "sub"
    sub.mkdir(exist_ok=True)
    shutil.copy(COMMUNITY_DIR / "Synkick.vital", sub / "Synkick.vital")
    return {
        "broken.vital": "invalid JSON",
        "binary.vital": "binary file",
        "newer.vital": "newer than this vita build",
        "silent.vital": "renders silent",
        "nonnumeric.vital": "non-numeric value",
        "no_settings.vital": "no 'settings' object",
    }


def test_bad_files_are_skipped_with_one_warning_each(tmp_path, caplog):
    expected = _write_bad_files(tmp_path / "in")
    stray = tmp_path / "README.md"
    stray.write_text("hello")
    with caplog.at_level(logging.INFO, logger="synthmatch"):
        summary = ingest(_cfg([tmp_path / "in", stray], tmp_path / "out.h5"))
    reasons = {Path(f).name: r for f, r in summary.skipped_files}
    for name, words in expected.items():
        assert words in reasons[name], (name, reasons.get(name))
    assert "not a .vital file" in reasons["README.md"]
    assert "notes.txt" not in reasons  # non-.vital files inside folders are ignored
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for name in [*expected, "README.md"]:
        assert sum(1 for m in warnings if m.startswith("skipped ") and name in m) == 1, name
    assert any("osc_1_future_knob" in m for m in warnings)  # the unknown control, named
    assert [Path(f).name for f, _ in summary.ignored_settings] == ["unknown_control.vital"]
    assert summary.presets_ingested == 2 and not summary.ok
    with Dataset(tmp_path / "out.h5") as ds:
        assert sorted(ds.name(i) for i in range(len(ds))) == ["Future Knob", "Synkick"]


def test_cli_exit_status_and_summary(tmp_path, capsys):
    _write_bad_files(tmp_path / "in")
    flags = ["--midi-notes", "60", "--sample-rate", "22050", "--duration", "0.8", "--note-duration", "0.5"]
    rc = main(
        ["ingest", str(tmp_path / "in"), "-o", str(tmp_path / "a.h5"), *flags, "--include-test-presets"]
    )
    out = capsys.readouterr().out
    assert rc == 1 and "file(s) skipped" in out and "exit status 1" in out
    rc = main(
        ["ingest", str(COMMUNITY_DIR / "Synkick.vital"), "-o", str(tmp_path / "b.h5"), "--json", *flags]
    )
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["ok"] and doc["rows_written"] == 1
    # Skips by design (declared unusable, reserved for evaluation) do not fail the run.
    by_design = [COMMUNITY_DIR / "NierBassLayerTwo.vital", COMMUNITY_DIR / "Synkick.vital"]
    rc = main(["ingest", *map(str, by_design), "-o", str(tmp_path / "design.h5"), *flags])
    out = capsys.readouterr().out
    assert rc == 0 and "1 file(s) skipped by design" in out and "exit status 1" not in out
    # An existing output is never replaced by accident; errors print without a traceback.
    rc = main(["ingest", str(COMMUNITY_DIR / "Synkick.vital"), "-o", str(tmp_path / "b.h5"), *flags])
    err = capsys.readouterr().err
    assert rc == 2 and "exists" in err and "--append" in err and "Traceback" not in err
    assert main(["ingest", str(tmp_path / "nothing-here"), "-o", str(tmp_path / "c.h5"), *flags]) == 2
    assert "every input was skipped" in capsys.readouterr().err


def test_content_identical_presets_are_ingested_once(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(COMMUNITY_DIR / "Synkick.vital", folder / "Synkick.vital")
    shutil.copy(COMMUNITY_DIR / "Synkick.vital", folder / "Synkick copy.vital")
    doc = json.loads((COMMUNITY_DIR / "Synkick.vital").read_text())
    doc["preset_name"] = "Renamed Kick"  # the name is not content
    (folder / "renamed.vital").write_text(json.dumps(doc))
    summary = ingest(_cfg([folder, folder / "Synkick.vital"], tmp_path / "out.h5"))
    assert summary.rows_written == 1 and summary.ok
    assert len(summary.duplicates) == 2 and all("same content as" in w for _, w in summary.duplicates)
    # Again into the same file: nothing new, and the file is left exactly as it was.
    before = (tmp_path / "out.h5").read_bytes()
    with pytest.raises(IngestError, match="no rows were written"):
        ingest(_cfg([folder], tmp_path / "out.h5", append=True))
    assert (tmp_path / "out.h5").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out.h5"]  # no temporary left behind


def test_append_adds_rows_and_refuses_a_different_schema(tmp_path):
    out = tmp_path / "data.h5"
    ingest(_cfg([COMMUNITY_DIR / "Synkick.vital"], out))
    summary = ingest(
        IngestConfig(
            inputs=(COMMUNITY_DIR / "WakkaWakka.vital",),
            output=out,
            append=True,
            midi_notes=(48, 60),
            progress=False,
        )
    )
    assert summary.rows_written == 2 and summary.rows_in_file == 3
    with Dataset(out) as ds:
        assert [ds.name(i) for i in range(3)] == ["Synkick", "WakkaWakka", "WakkaWakka"]
        assert ds.schema.sample_rate == 22050 and ds.schema.duration_s == 0.8  # taken from the file
        assert ds.schema.midi_notes == (48, 60)
        assert ds.audio(2).shape == (int(0.8 * 22050),)
    before = out.read_bytes()
    with pytest.raises(DatasetError, match="sample_rate"):
        ingest(_cfg([COMMUNITY_DIR / "TechnoReese.vital"], out, append=True, sample_rate=44100))
    with pytest.raises(DatasetError, match="tier"):
        ingest(_cfg([COMMUNITY_DIR / "TechnoReese.vital"], out, append=True, tier=2))
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.h5"]
    with pytest.raises(IngestError, match="no such dataset"):
        ingest(_cfg([COMMUNITY_DIR / "TechnoReese.vital"], tmp_path / "missing.h5", append=True))


def test_ingested_rows_merge_with_generated_rows(tmp_path, renderer):
    """Same schema as generate: an ingested file and a generated one merge."""
    from synthmatch.datagen.sample import PresetSampler

    ingested = tmp_path / "community.h5"
    ingest(
        IngestConfig(
            inputs=(COMMUNITY_DIR / "Synkick.vital",),
            output=ingested,
            midi_notes=(60,),
            progress=False,
            duration_s=2.0,
            note_duration_s=1.5,
        )
    )
    schema = DatasetSchema.for_tier(3, midi_notes=(60,))
    sampler = PresetSampler(3, seed=1)
    generated = tmp_path / "generated.h5"
    with DatasetWriter(generated, schema, atomic=True) as w:
        ex = sampler.sample(0)
        audio = renderer.render(ex.preset, 60, 1.5, 2.0)
        w.append([ExampleRow.from_preset(ex.preset, audio, schema, 60, ex.source, seed_index=0)])
    merged = merge_datasets(tmp_path / "merged.h5", [generated, ingested])
    with Dataset(merged) as ds:
        assert [ds.row_info(i)["source"] for i in range(len(ds))] == ["random", "community"]


def test_config_validation():
    with pytest.raises(ConfigError, match="midi-notes"):
        IngestConfig(inputs=("x",), output="o.h5", midi_notes=(60, 200))
    with pytest.raises(ConfigError, match="tier"):
        IngestConfig(inputs=("x",), output="o.h5", tier=4)
    with pytest.raises(ConfigError, match="exclude"):
        IngestConfig(inputs=("x",), output="o.h5", append=True, overwrite=True)
    with pytest.raises(ConfigError):
        IngestConfig(inputs=(), output="o.h5")


def test_audio_is_the_render_of_the_stored_preset(community, renderer):
    """Re-rendering Dataset.preset(i) gives the stored audio (up to vita's run-to-run noise)."""
    from synthmatch.audio.distances import log_mel_l1
    from synthmatch.audio.features import MelSettings
    from synthmatch.synth.render import Renderer

    out, _, _ = community
    with Dataset(out) as ds, Renderer(sample_rate=ds.schema.sample_rate, n_threads=2) as r:
        idx = [i for i in range(len(ds)) if ds.name(i) in ("Synkick", "WakkaWakka", "PS-20 Strings")]
        s = ds.schema
        results = r.render_batch([ds.preset(i) for i in idx], 60, s.note_duration_s, s.duration_s)
        for i, res in zip(idx, results):
            stored = ds.audio(i)
            assert np.isfinite(stored).all()
            assert log_mel_l1(stored, res.audio, MelSettings(sample_rate=s.sample_rate)) < 0.5, ds.name(i)
