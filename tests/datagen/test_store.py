"""The dataset store: rows round-trip, merge copies compressed audio as stored, schema and generation checks."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from synthmatch.datagen.store import (
    Dataset,
    DatasetError,
    DatasetSchema,
    DatasetWriter,
    ExampleRow,
    audio_to_storage,
    generation_info,
    merge_datasets,
)
from synthmatch.synth.presets import MOD_DTYPE


def _schema(**kw) -> DatasetSchema:
    base = dict(sample_rate=8000, duration_s=0.25, note_duration_s=0.1, midi_notes=(60,))
    return DatasetSchema.for_tier(kw.pop("tier", 3), **{**base, **kw})


def _rows(schema: DatasetSchema, n: int, seed: int, first_index: int = 0) -> list[ExampleRow]:
    rng = np.random.default_rng(seed)
    nc, nk = len(schema.continuous_names), len(schema.categorical_names)
    rows = []
    for k in range(n):
        t = np.arange(schema.n_samples) / schema.sample_rate
        audio = (0.3 * np.sin(2 * np.pi * rng.uniform(100, 1000) * t)).astype(np.float32)
        mods = np.zeros(int(rng.integers(0, 4)) if schema.mod_sources else 0, MOD_DTYPE)
        if len(mods):
            mods["source"] = rng.integers(0, len(schema.mod_sources), len(mods))
            mods["destination"] = rng.choice(len(schema.mod_destinations), len(mods), replace=False)
            mods["amount"] = rng.random(len(mods))
        rows.append(
            ExampleRow(
                audio=audio,
                continuous=rng.random(nc).astype(np.float32),
                categorical=rng.integers(0, 2, nk),
                modulation=mods,
                midi_note=60,
                source="random",
                preset_hash=f"{k:016x}",
                seed_index=first_index + k,
                name=f"example {first_index + k}",
            )
        )
    return rows


def _write(path, schema, rows, rejected=(), **attrs):
    with DatasetWriter(path, schema, atomic=True) as w:
        w.append(rows)
        w.reject(rejected)
        w.set_attrs(**attrs)
    return path


def _generation(start: int, stop: int, fingerprint: str = "abc") -> dict:
    return {
        "generate_fingerprint": fingerprint,
        "generate_config": json.dumps({"seed": 0}),
        "index_start": start,
        "index_stop": stop,
    }


def test_rows_round_trip(tmp_path):
    s = _schema()
    rows = _rows(s, 5, 0)
    _write(tmp_path / "a.h5", s, rows, [(7, "silent"), (9, "crash")])
    with Dataset(tmp_path / "a.h5") as ds:
        assert len(ds) == 5 and ds.schema == s
        for i, r in enumerate(rows):
            np.testing.assert_allclose(ds.audio(i), r.audio, atol=1 / 32767)
            np.testing.assert_array_equal(ds.vector(i).continuous, r.continuous)
            np.testing.assert_array_equal(ds.modulation(i), r.modulation)
        assert ds.rejections()["silent"] == 1 and ds.rejections()["crash"] == 1
        assert ds.rejected().tolist() == [(7, 0), (9, 5)]
        assert ds.generation is None


def test_stored_audio_passes_through_unchanged():
    a = np.array([0, 1, -32767, 32767], np.int16)
    assert audio_to_storage(a, "int16") is a
    f = np.array([0.5, -0.25], np.float32)
    assert audio_to_storage(f, "int16").tolist() == [16384, -8192]
    assert audio_to_storage(f.astype(np.float16), "float16").dtype == np.float16


def test_merge_copies_rows_and_compressed_audio(tmp_path):
    s = _schema()
    a = _write(tmp_path / "a.h5", s, _rows(s, 4, 1, 0), [(4, "silent")], **_generation(0, 5))
    b = _write(tmp_path / "b.h5", s, _rows(s, 3, 2, 5), [(8, "clipped")], **_generation(5, 9))
    out = merge_datasets(tmp_path / "m.h5", [a, b], chunk=2)
    with h5py.File(a) as fa, h5py.File(b) as fb, h5py.File(out) as fm:
        for name in ("continuous", "categorical", "midi_note", "seed_index", "preset_hash", "rms_db", "peak"):
            np.testing.assert_array_equal(fm[name][:], np.concatenate([fa[name][:], fb[name][:]]))
        # compressed chunks are copied byte for byte
        assert fm["audio"].id.read_direct_chunk((5, 0)) == fb["audio"].id.read_direct_chunk((1, 0))
        assert fm["rejections/rejected"][:].tolist() == [(4, 0), (8, 1)]
    with Dataset(out) as m, Dataset(a) as da, Dataset(b) as db:
        assert len(m) == 7
        for i in range(3):
            np.testing.assert_array_equal(m.modulation(4 + i), db.modulation(i))
            np.testing.assert_array_equal(m.audio(4 + i), db.audio(i))
        np.testing.assert_array_equal(m.modulation(1), da.modulation(1))
        assert m.generation == {
            "fingerprint": "abc",
            "config": {"seed": 0},
            "index_start": 0,
            "index_stop": 9,
        }


def test_merge_float16_stereo_and_without_generation(tmp_path):
    s = _schema(tier=1, audio_dtype="float16", channels=2)
    rows = _rows(s, 2, 3)
    for r in rows:
        r.audio = np.stack([r.audio, -r.audio])
    a = _write(tmp_path / "a.h5", s, rows)
    out = merge_datasets(tmp_path / "m.h5", [a, a])
    with Dataset(out) as m:
        assert len(m) == 4 and m.audio(3).shape == (2, s.n_samples)
        np.testing.assert_array_equal(m.audio(2), m.audio(0))
        assert m.generation is None


def test_merge_refuses_mismatched_schemas(tmp_path):
    s1, s2 = _schema(tier=1), _schema(tier=2)
    a = _write(tmp_path / "a.h5", s1, _rows(s1, 1, 0))
    b = _write(tmp_path / "b.h5", s2, _rows(s2, 1, 0))
    with pytest.raises(DatasetError, match="schemas differ"):
        merge_datasets(tmp_path / "m.h5", [a, b])
    s3 = _schema(tier=1, sample_rate=16000)
    c = _write(tmp_path / "c.h5", s3, _rows(s3, 1, 0))
    with pytest.raises(DatasetError, match="sample_rate"):
        merge_datasets(tmp_path / "m.h5", [a, c])
    assert not (tmp_path / "m.h5").exists()


def test_merge_refuses_overlapping_pieces_of_one_generation(tmp_path):
    s = _schema(tier=1)
    a = _write(tmp_path / "a.h5", s, _rows(s, 2, 0, 0), **_generation(0, 2))
    b = _write(tmp_path / "b.h5", s, _rows(s, 2, 0, 1), **_generation(1, 3))
    with pytest.raises(DatasetError, match="duplicate examples"):
        merge_datasets(tmp_path / "m.h5", [a, b])
    with pytest.raises(DatasetError, match="duplicate examples"):
        merge_datasets(tmp_path / "m.h5", [a, a])
    # different generations merge, without a fingerprint
    c = _write(tmp_path / "c.h5", s, _rows(s, 2, 0, 0), **_generation(0, 2, fingerprint="other"))
    with Dataset(merge_datasets(tmp_path / "m.h5", [a, c])) as m:
        assert len(m) == 4 and m.generation is None


def test_generation_info_of_attrs(tmp_path):
    s = _schema(tier=1)
    p = _write(tmp_path / "a.h5", s, _rows(s, 1, 0), **_generation(3, 4))
    with h5py.File(p) as f:
        assert generation_info(f.attrs)["index_start"] == 3
