"""`synthmatch generate`, `merge` and `inspect` with the real vita and real HDF5 files.

Small runs (tier 1 or 2, tens of examples, 0.5 s renders, parts of 20) keep this module to well under a
minute on two cores. The kill tests run the CLI as a subprocess and signal it for real.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import psutil
import pytest
import soundfile as sf

from synthmatch.cli import main
from synthmatch.datagen.generate import (
    GenerateConfig,
    GenerateError,
    generate,
    load_community,
    parts_dir_for,
    shard_range,
)
from synthmatch.datagen.sample import PresetSampler, example_midi_note
from synthmatch.datagen.store import REJECTION_REASONS, Dataset
from synthmatch.errors import ConfigError
from tests.helpers import COMMUNITY_DIR, REPO

FAST = dict(duration_s=0.5, note_duration_s=0.3, part_size=20, progress=False)
# The CLI form of the tier-1 run the kill, resume and shard tests compare against.
T1_ARGS = ["--tier", "1", "-n", "100", "--duration", "0.5", "--note-duration", "0.3", "--part-size", "20",
           "--sample-rate", "22050", "--no-progress"]  # fmt: skip


def _cli(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-m", "synthmatch", *args], env=env, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, **kw,
    )  # fmt: skip


def _run_cli(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    p = _cli(args)
    out, err = p.communicate(timeout=timeout)
    return subprocess.CompletedProcess(args, p.returncode, out, err)


def _contents(path: Path) -> tuple[dict, dict]:
    """Every dataset and root attribute of an HDF5 file."""
    data, attrs = {}, {}
    with h5py.File(path) as f:
        f.visititems(lambda n, o: data.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
        attrs = {k: f.attrs[k] for k in f.attrs}
    return data, attrs


def assert_same_dataset(a: Path, b: Path) -> None:
    da, aa = _contents(a)
    db, ab = _contents(b)
    assert da.keys() == db.keys()
    for k in da:
        assert np.array_equal(da[k], db[k]), f"{k} differs between {a.name} and {b.name}"
    assert aa.keys() == ab.keys()
    for k in aa:
        assert np.array_equal(aa[k], ab[k]), f"attribute {k} differs"


def _wait_for(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _parts(output: Path) -> list[Path]:
    d = parts_dir_for(output)
    return sorted(d.glob("part-*.h5")) if d.exists() else []


@pytest.fixture(scope="module")
def tier2(tmp_path_factory) -> Path:
    """40 tier-2 examples at 22050 Hz, two workers."""
    out = tmp_path_factory.mktemp("tier2") / "t2.h5"
    report = generate(GenerateConfig(output=out, n=40, tier=2, seed=3, workers=2, sample_rate=22050, **FAST))
    assert report.attempted == 40 and report.accepted > 20
    return out


@pytest.fixture(scope="module")
def tier1_reference(tmp_path_factory) -> Path:
    """The uninterrupted tier-1 run (T1_ARGS) through the CLI."""
    out = tmp_path_factory.mktemp("reference") / "ref.h5"
    r = _run_cli(["generate", *T1_ARGS, "-o", str(out), "--workers", "2"])
    assert r.returncode == 0, r.stderr
    assert "rejected" in r.stdout
    return out


# ---------------------------------------------------------------------------------------------------
def test_rows_are_the_sampler_examples(tier2):
    """Same seed, same parameters: each row is sampler.sample(seed_index) at its own MIDI note."""
    sampler = PresetSampler(tier=2, seed=3)
    with Dataset(tier2) as ds:
        idx = ds.column("seed_index")
        assert (np.diff(idx) > 0).all()
        for row, i in enumerate(idx):
            vec = sampler.sample(int(i)).preset.to_vector(2)
            np.testing.assert_array_equal(ds.vector(row).continuous, vec.continuous)
            np.testing.assert_array_equal(ds.vector(row).categorical, vec.categorical)
            assert ds.h5["midi_note"][row] == example_midi_note(3, int(i), 2, (48, 60, 72))
            assert ds.preset(row).content_hash() == ds.h5["preset_hash"][row].decode()


def test_schema_attributes(tier2, space):
    ts = space.tier(2)
    with h5py.File(tier2) as f:
        a = f.attrs
        assert a["format"] == "synthmatch-dataset" and a["schema_version"] == 1
        assert a["tier"] == 2 and a["sample_rate"] == 22050
        assert a["duration_s"] == 0.5 and a["note_duration_s"] == 0.3
        assert list(a["midi_notes"]) == [48, 60, 72]
        assert a["audio_dtype"] == "int16" and a["channels"] == 1 and a["seed"] == 3
        assert tuple(a["continuous_names"]) == ts.continuous
        np.testing.assert_array_equal(a["continuous_min"], ts.cont_min)
        np.testing.assert_array_equal(a["continuous_max"], ts.cont_max)
        assert tuple(a["categorical_names"]) == ts.categorical
        assert tuple(a["categorical_n_options"]) == ts.n_options
        assert len(a["mod_sources"]) == 0 and len(a["mod_destinations"]) == 0
        assert a["vita_version"] and a["index_start"] == 0 and a["index_stop"] == 40
        config = json.loads(a["generate_config"])
        assert config["tier"] == 2 and config["seed"] == 3 and config["part_size"] == 20
        n = f["audio"].shape[0]
        assert f["audio"].shape == (n, 11025) and f["audio"].dtype == np.int16
        assert f["audio"].chunks == (1, 11025) and f["audio"].compression == "gzip"
        rejected = f["rejections/rejected"][:]
        assert n + len(rejected) == 40
        assert sum(int(f["rejections"].attrs[r]) for r in REJECTION_REASONS) == len(rejected)
        covered = sorted([*f["seed_index"][:].tolist(), *rejected["seed_index"].tolist()])
        assert covered == list(range(40))
    assert not parts_dir_for(tier2).exists()


def test_a_22050_hz_dataset_sounds_at_its_notes(tier2):
    with Dataset(tier2) as ds:
        audio = ds.audio_batch(range(len(ds)))
        assert audio.shape == (len(ds), 11025)
        rms = 20 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2, axis=1)) + 1e-12)
        assert (rms >= -60.5).all() and (np.abs(audio).max(axis=1) <= 1.0).all()
        np.testing.assert_allclose(ds.column("rms_db"), rms, atol=0.01)


def test_inspect_shows_counts_schema_parameters_and_rejections(tier2, tmp_path, capsys):
    assert main(["inspect", str(tier2)]) == 0
    text = capsys.readouterr().out
    with Dataset(tier2) as ds:
        n, rejected = len(ds), sum(ds.rejections().values())
    assert f"{n} examples" in text
    assert "tier 2, 22050 Hz, 0.5 s renders" in text and "int16 mono" in text
    assert f"by source: random {n}" in text and "by MIDI note:" in text
    assert f"{rejected} of 40 attempted" in text
    assert re.search(r"osc_1\s+\d+\s+0\.\d+\s+0\.\d+", text)  # continuous mean/std per module
    assert "filter_1_on" in text and "filter_1_model:" in text
    assert main(["inspect", str(tier2), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["counts"]["examples"] == n and info["rejections"]["attempted"] == 40
    assert info["schema"]["sample_rate"] == 22050 and info["generation"]["index_stop"] == 40
    assert set(info["levels"]) == {"rms_db", "peak", "at_full_scale"}

    wav = tmp_path / "ex.wav"
    assert main(["inspect", str(tier2), "--sample", "1", "--wav", str(wav)]) == 0
    text = capsys.readouterr().out
    assert "example 1:" in text and "Volume" in text and " dB" in text and "Envelope 1 Attack" in text
    audio, sr = sf.read(wav)
    assert sr == 22050
    with Dataset(tier2) as ds:
        np.testing.assert_allclose(audio, ds.audio(1), atol=1.5 / 32767)
    assert main(["inspect", str(tier2), "--sample", "9999"]) == 2


def test_already_complete_and_a_different_command(tier2, capsys):
    cfg = GenerateConfig(output=tier2, n=40, tier=2, seed=3, workers=2, sample_rate=22050, **FAST)
    before = tier2.stat().st_mtime_ns
    report = generate(cfg)
    assert report.already_complete and report.rendered == 0 and tier2.stat().st_mtime_ns == before
    with pytest.raises(GenerateError, match=r"seed: 3 then, 4 now.*--overwrite"):
        generate(GenerateConfig(output=tier2, n=40, tier=2, seed=4, workers=2, sample_rate=22050, **FAST))
    with pytest.raises(GenerateError, match=r"holds generator indices \[0, 40\), this command \[0, 20\)"):
        generate(GenerateConfig(output=tier2, n=20, tier=2, seed=3, workers=2, sample_rate=22050, **FAST))


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(n=0), "-n"),
        (dict(tier=4), "--tier"),
        (dict(shard=(2, 2)), "--shard"),
        (dict(part_size=0), "--part-size"),
        (dict(midi_notes=(60, 200)), "--midi-notes"),
        (dict(note_duration_s=3.0), "--note-duration"),
        (dict(audio_dtype="int8"), "--audio-dtype"),
        (dict(output="data.wav"), ".h5"),
    ],
)
def test_bad_settings_are_refused(kw, match):
    with pytest.raises(ConfigError, match=re.escape(match)):
        GenerateConfig(**{"output": "d.h5", "n": 10, **kw})


def test_cli_reports_bad_input_without_traceback(tmp_path, capsys):
    assert main(["generate", "-o", str(tmp_path / "x.h5"), "-n", "10", "--shard", "3/2"]) == 2
    err = capsys.readouterr().err
    assert "error: --shard" in err and "Traceback" not in err
    assert main(["generate", "-o", str(tmp_path / "x.h5"), "-n", "1", "--shard", "0/2"]) == 2
    assert "is empty" in capsys.readouterr().err


def test_shard_ranges_cover_every_index_once():
    for n, size, k in ((100, 20, 2), (1000, 256, 3), (5, 256, 1), (513, 256, 3)):
        parts = [p for i in range(k) for p in shard_range(n, size, (i, k))]
        assert [a for a, _ in parts] == list(range(0, n, size))
        assert parts[-1][1] == n and all(b == c for (_, b), (c, _) in zip(parts, parts[1:]))


# ---------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_resume_after_sigkill_equals_an_uninterrupted_run(tier1_reference, tmp_path):
    out = tmp_path / "killed.h5"
    args = ["generate", *T1_ARGS, "-o", str(out), "--workers", "2"]
    p = _cli(args, start_new_session=True)
    _wait_for(lambda: len(_parts(out)) >= 2 or p.poll() is not None, what="two parts")
    os.killpg(p.pid, signal.SIGKILL)
    p.communicate()
    assert p.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not out.exists() and 2 <= len(_parts(out)) < 5

    other = _run_cli([*args, "--seed", "1"])  # a different command cannot take over the parts
    assert other.returncode == 2 and "holds parts of a different generate command" in other.stderr
    assert "seed: 0 then, 1 now" in other.stderr and "Traceback" not in other.stderr

    resumed = _run_cli(args)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr and "parts reused" in resumed.stdout
    assert_same_dataset(out, tier1_reference)
    assert not parts_dir_for(out).exists()

    again = _run_cli(args)
    assert again.returncode == 0 and "already complete" in again.stdout


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_resumes(tier1_reference, tmp_path):
    out = tmp_path / "interrupted.h5"
    args = ["generate", *T1_ARGS, "-o", str(out), "--workers", "1"]
    p = _cli(args)
    _wait_for(lambda: len(_parts(out)) >= 1 or p.poll() is not None, what="a part")
    workers = psutil.Process(p.pid).children(recursive=True)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert "rerun the same command to resume" in err and "Traceback" not in err
    assert _parts(out) and not out.exists()
    _wait_for(
        lambda: not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers), 10, "workers"
    )
    resumed = _run_cli(args)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_dataset(out, tier1_reference)


@pytest.mark.slow
def test_shards_merged_equal_a_single_run(tier1_reference, tier2, tmp_path):
    shards = []
    for i in range(2):
        path = tmp_path / f"shard{i}.h5"
        r = _run_cli(["generate", *T1_ARGS, "-o", str(path), "--workers", "2", "--shard", f"{i}/2"])
        assert r.returncode == 0, r.stderr
        shards.append(path)
    with Dataset(shards[0]) as ds:
        assert (ds.generation["index_start"], ds.generation["index_stop"]) == (0, 40)  # 2 of 5 parts
    merged = tmp_path / "merged.h5"
    r = _run_cli(["merge", str(merged), *map(str, shards)])
    assert r.returncode == 0, r.stderr
    assert_same_dataset(merged, tier1_reference)
    # the merged file is the full run: generate recognises it as complete
    done = _run_cli(["generate", *T1_ARGS, "-o", str(merged), "--workers", "2"])
    assert done.returncode == 0 and "already complete" in done.stdout

    bad = _run_cli(["merge", str(tmp_path / "bad.h5"), str(shards[0]), str(tier2)])
    assert bad.returncode == 2 and "schemas differ" in bad.stderr and "tier" in bad.stderr
    twice = _run_cli(["merge", str(tmp_path / "twice.h5"), str(shards[0]), str(shards[0])])
    assert twice.returncode == 2 and "duplicate examples" in twice.stderr
    assert not (tmp_path / "bad.h5").exists() and not (tmp_path / "twice.h5").exists()
    exists = _run_cli(["merge", str(merged), str(shards[0])])
    assert exists.returncode == 2 and "--overwrite" in exists.stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig, reason", [(signal.SIGSEGV, "crash"), (signal.SIGSTOP, "timeout")])
def test_a_worker_killed_or_hung_mid_run_does_not_stop_the_run(sig, reason, tmp_path):
    """The in-flight example is recorded as rejected, a new worker goes on, every index is accounted for."""
    out = tmp_path / f"{reason}.h5"
    args = ["-vv", "generate", "--tier", "2", "-n", "40", "-o", str(out), "--workers", "1", "--part-size", "40",
            "--duration", "0.5", "--note-duration", "0.3", "--no-progress", "--timeout", "8"]  # fmt: skip
    p = _cli(args)
    lines = []
    for line in p.stderr:
        lines.append(line)
        m = re.search(r"worker pid (\d+) ready", line)
        if m:
            time.sleep(0.4)  # a few examples in
            os.kill(int(m.group(1)), sig)
            break
    rest = p.communicate(timeout=120)[1]
    log = "".join(lines) + rest
    assert p.returncode == 0, log
    assert re.search(rf"example (\d+): worker pid \d+ .*recorded as rejected \({reason}\)", log), log
    index = int(re.search(r"example (\d+): worker pid", log).group(1))
    with Dataset(out) as ds:
        assert ds.rejections()[reason] == 1
        assert (index, REJECTION_REASONS.index(reason)) in ds.rejected().tolist()
        idx = ds.column("seed_index").tolist()
        assert sorted(idx + ds.rejected()["seed_index"].tolist()) == list(range(40))
        assert any(i > index for i in idx)  # the replacement worker rendered the rest of the part
        sampler = PresetSampler(tier=2, seed=0)
        row = idx.index(max(idx))
        np.testing.assert_array_equal(
            ds.vector(row).continuous, sampler.sample(max(idx)).preset.to_vector(2).continuous
        )


def test_community_presets_are_bred_and_test_presets_left_out(tmp_path, caplog):
    d = tmp_path / "presets"
    d.mkdir()
    for name in ("Airhorn", "PS-20-Oboe", "AccidentalMagic"):  # AccidentalMagic is reserved for evaluation
        (d / f"{name}.vital").write_bytes((COMMUNITY_DIR / f"{name}.vital").read_bytes())
    (d / "broken.vital").write_text("{not json")
    presets = load_community([d])
    assert len(presets) == 2 and not any("Accidental" in p.name for p in presets)
    assert "broken.vital" in caplog.text
    assert len(load_community([d], include_test=True)) == 3
    with pytest.raises(ConfigError, match="no such file"):
        load_community([tmp_path / "missing"])

    out = tmp_path / "bred.h5"
    cfg = GenerateConfig(
        output=out,
        n=12,
        tier=2,
        workers=1,
        community_dirs=(d,),
        community_share=1.0,
        **{**FAST, "part_size": 12},
    )
    report = generate(cfg)
    with Dataset(out) as ds:
        assert report.accepted == len(ds) > 0
        assert set(ds.column("source").tolist()) == {1}  # "bred"
        assert all(ds.name(i).startswith("bred ") for i in range(len(ds)))
        config = ds.generation["config"]
        assert config["community_presets"] == 2 and config["community_share"] == 1.0


def test_a_ctrl_c_while_a_worker_starts_is_kept_not_dropped():
    """Workers start with SIGINT held back; a Ctrl-C that arrives meanwhile (right after a part is written,
    when the next worker starts) stops the run once the worker is up, instead of being lost."""
    from synthmatch.datagen.generate.workers import _sigint_held

    with pytest.raises(KeyboardInterrupt):
        with _sigint_held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # held: nothing is raised here
            held = True
        assert not held  # not reached: the interrupt arrives as the block ends


def test_a_full_disk_is_one_line_and_resumable(tmp_path):
    """No traceback, no crash of the parent, no temporary left; the parts written so far stay."""
    import shutil
    import subprocess
    import sys

    mount = tmp_path / "small"
    mount.mkdir()
    if (
        shutil.which("mount") is None
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)], capture_output=True
        ).returncode
    ):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        run = subprocess.run(
            [sys.executable, "-m", "synthmatch", "generate", "-n", "8", "-o", str(mount / "ds.h5")]
            + ["--workers", "1", "--part-size", "8"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
        errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "resumes once there is room" in errors[0]
        assert not list((mount / "ds.h5.parts").glob(".*.tmp*"))
    finally:
        subprocess.run(["umount", str(mount)])
