"""`synthmatch devset`: target sets in a producer's format, with a manifest eval reads; soundfonts optional."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from synthmatch.audio.pitch import estimate_pitch
from synthmatch.evaluation.devset import (
    INSTALL_COMMAND,
    SOUNDFONTS,
    DevsetUnavailable,
    read_manifest,
    write_devset,
)
from synthmatch.evaluation.testsets import audio_targets

HAVE_SOUNDFONTS = shutil.which("fluidsynth") is not None and all(os.path.isfile(p) for _, p in SOUNDFONTS)


def _check_files(folder, items):
    manifest = read_manifest(folder)
    assert set(manifest) == {i.file for i in items}
    for item in items:
        audio, sr = sf.read(folder / item.file, dtype="float32")
        assert sr == 44100 and audio.ndim == 1 and len(audio) == 4 * sr
        assert np.abs(audio).max() == pytest.approx(0.999, abs=1e-3)  # peak-normalised
        assert item.note_duration_s == 1.5
        if item.midi_note is not None and item.name != "fm_bell":
            p = estimate_pitch(audio, sr)
            assert p.pitched and abs(p.midi - item.midi_note) < 0.5, (item.file, p.midi)


def test_synth_patches_are_written_with_their_notes_and_resume(tmp_path):
    out = tmp_path / "set"
    items = write_devset(out, "synth", limit=5)
    assert len(items) == 5 and all(i.source == "numpy" for i in items)
    _check_files(out, items)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.wav")}
    again = write_devset(out, "synth", limit=5)  # resumes: nothing is made twice
    assert again == items and {p.name: p.stat().st_mtime_ns for p in out.glob("*.wav")} == stamps
    # eval's audio test set uses the manifest's notes and key-held times
    targets = {t.name: t for t in audio_targets(out)}
    assert {t.midi_note for t in targets.values()} == {i.midi_note for i in items}
    assert all(
        t.note_duration_s == pytest.approx(1.5) and t.duration_s == pytest.approx(4.0)
        for t in targets.values()
    )


@pytest.mark.skipif(
    not HAVE_SOUNDFONTS, reason=f"fluidsynth or the soundfonts are missing: {INSTALL_COMMAND}"
)
def test_soundfont_instruments_from_both_soundfonts(tmp_path):
    items = write_devset(tmp_path, "soundfont", limit=2)
    assert [i.source for i in items] == ["timgm6mb", "musescore"]  # alternating soundfonts
    assert [i.family for i in items] == ["keys", "keys"]
    _check_files(tmp_path, items)


def test_missing_fluidsynth_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no fluidsynth on this PATH
    with pytest.raises(DevsetUnavailable, match="apt-get install fluidsynth"):
        write_devset(tmp_path / "set", "soundfont")
    assert not (tmp_path / "set").exists()


def test_in_domain_set_records_the_note_it_sounds_at(tmp_path):
    items = write_devset(tmp_path, "in_domain", n=2)
    assert len(items) == 2 and all(i.kind == "in_domain" and i.source == "vital" for i in items)
    for item in items:
        audio, sr = sf.read(tmp_path / item.file, dtype="float32")
        p = estimate_pitch(audio, sr)
        assert (item.midi_note is None) == (not p.pitched)


def test_community_set_renders_the_evaluation_presets(tmp_path):
    from synthmatch.datagen.community import test_preset_names
    from synthmatch.evaluation.manifest import read_manifest

    items = write_devset(tmp_path, "community", limit=2)
    assert len(items) == 2 and all(i.kind == "community" and i.source == "vital" for i in items)
    reserved = set(test_preset_names())
    for item in items:
        assert item.name.rsplit("_", 1)[0] in reserved  # only presets kept out of training
        audio, sr = sf.read(tmp_path / item.file, dtype="float32")
        assert len(audio) == 4 * sr and 0.9 < np.abs(audio).max() <= 1.0
    assert set(read_manifest(tmp_path)) == {i.file for i in items}
