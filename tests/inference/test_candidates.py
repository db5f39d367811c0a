"""Discrete search, ranked candidates and the retrieval index, with the real vita."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from synthmatch.audio.distances import match_distance
from synthmatch.inference.candidates import SAME_SOUND, Start, alternative_starts, match_candidates
from synthmatch.inference.match import MatchTarget
from synthmatch.inference.refine import RefineConfig, StopReason, keep_best_on_interrupt, refine
from synthmatch.synth.presets import Preset
from tests.inference.helpers import DURATION_S, NOTE, NOTE_S, SR

COMB = 6  # filter_1_model: Analog 0 ... Comb 6


def _filtered(model: int) -> Preset:
    return Preset.init().with_values(
        filter_1_on=1, filter_1_model=float(model), filter_1_cutoff=80, filter_1_resonance=0.6
    )


def _model_probabilities() -> dict[str, np.ndarray]:
    """A model that guesses Analog for the filter, with Comb its second choice."""
    p = np.full(8, 0.05)
    p[0], p[COMB] = 0.45, 0.25
    return {"filter_1_model": p / p.sum()}


@pytest.fixture(scope="module")
def comb_target(renderer) -> MatchTarget:
    audio = renderer.render(_filtered(COMB), NOTE, NOTE_S, DURATION_S, fresh=True)
    return MatchTarget.of(audio, SR, NOTE, note_duration_s=NOTE_S, name="comb")


def test_restarts_find_the_filter_model_the_continuous_search_cannot(renderer, comb_target):
    """The target's filter is a Comb, the start's an Analog: restarting from the model's second choice
    ends on the Comb; CMA-ES over the continuous controls keeps the Analog."""
    start, probs = _filtered(0), _model_probabilities()
    alts = alternative_starts(start, probs, 2, 1)
    assert [a.preset.values["filter_1_model"] for a in alts] == [COMB]
    starts = [Start(start, "model", "model", probs), *alts]
    result = match_candidates(starts, 2, comb_target, renderer, RefineConfig(max_evals=90), k=2)
    assert result.renders <= 90
    assert result.best.match.preset.values["filter_1_model"] == COMB
    t = comb_target
    kw = dict(midi_note=NOTE, note_duration_s=NOTE_S, duration_s=DURATION_S, tier=2, renderer=renderer)
    continuous = refine(start, t.audio, SR, config=RefineConfig(max_evals=90), **kw)
    assert continuous.preset.values["filter_1_model"] == 0
    assert "discrete_tried" not in continuous.info


def test_catcma_searches_the_filter_model_with_the_continuous_controls(renderer, comb_target):
    """CatCMA tries several filter models, the model's second choice among them, and returns the best it
    heard. (Whether that is the Comb varies with the seed: benchmarks/discrete_search.py counts it.)"""
    start, probs = _filtered(0), _model_probabilities()
    kw = dict(midi_note=NOTE, note_duration_s=NOTE_S, duration_s=DURATION_S, tier=2, renderer=renderer)
    cfg = RefineConfig(max_evals=90, discrete="catcma", discrete_controls=1)
    mixed = refine(start, comb_target.audio, SR, config=cfg, probabilities=probs, **kw)
    assert mixed.info["discrete_params"] == ["filter_1_model"]
    tried = mixed.info["discrete_tried"]["filter_1_model"]
    assert len(tried) >= 3 and float(COMB) in tried and 0.0 in tried
    assert mixed.final_loss <= mixed.aligned_loss and mixed.n_evals <= 90
    if mixed.improved:  # (the fresh-render check may keep the start: then the start's option stays)
        chosen = mixed.preset.values["filter_1_model"]
        assert tried[chosen] == min(tried.values())  # the search's best point carries the best option seen
    else:
        assert mixed.preset.values["filter_1_model"] == 0.0


def test_ctrl_c_in_the_rounds_finishes_every_candidate_so_far(renderer, comb_target):
    """A KeyboardInterrupt in the rounds (here from the progress report after the first search's share;
    under keep_best_on_interrupt) ends them: every search set up is finished with its best so far."""
    calls: list[int] = []

    def ctrl_c_after_the_first_share(progress: dict) -> None:
        calls.append(progress["n_evals"])
        if len(calls) == 2:  # the screening's report, then one after each search's share
            raise KeyboardInterrupt

    starts = [Start(_filtered(0), "preset", "analog filter"), Start(Preset.init(), "init", "init")]
    cfg = RefineConfig(max_evals=150, timeout_s=600.0)
    with keep_best_on_interrupt() as guard:
        result = match_candidates(
            starts, 2, comb_target, renderer, cfg, k=2, callback=ctrl_c_after_the_first_share
        )
    assert guard.interrupted and result.info["interrupted"] and result.candidates
    assert result.renders <= 150
    for c in result.candidates:
        refined = c.match.refine
        assert refined is not None and refined.stop_reason is StopReason.INTERRUPTED
        assert refined.final_loss <= refined.aligned_loss


def test_candidates_are_distinct_and_ranked(renderer, comb_target):
    """Two identical starts count once; the candidates come best first and no two sound the same."""
    init = Preset.init()
    saw_square = init.with_values(osc_1_wave_frame=200.0)
    starts = [
        Start(init, "init", "init"),
        Start(init, "init", "init again"),
        Start(_filtered(0), "preset", "analog filter"),
        Start(saw_square, "preset", "another frame"),
    ]
    result = match_candidates(starts, 2, comb_target, renderer, RefineConfig(max_evals=120), k=3)
    assert result.renders <= 120
    screened = [s["loss"] for s in result.info["screen"]]
    assert screened[0] == screened[1]  # the same preset, rendered the same
    distances = [c.match.distance for c in result.candidates]
    assert 1 <= len(distances) <= 3 and distances == sorted(distances)
    labels = [c.start.label for c in result.candidates]
    assert not {"init", "init again"} <= set(labels)
    for i, a in enumerate(result.candidates):
        for b in result.candidates[i + 1 :]:
            d = match_distance(a.match.audio.mean(axis=0), b.match.audio.mean(axis=0), SR)
            assert d >= SAME_SOUND
    for c in result.candidates:  # every candidate is a finished match: in tune, levelled, audible
        assert c.match.steps.level is not None and not c.match.steps.silent


# ---------------------------------------------------------------------------------------------------
# the retrieval index
@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    from synthmatch.datagen.generate import GenerateConfig, generate

    out = tmp_path_factory.mktemp("index") / "t2.h5"
    generate(
        GenerateConfig(
            output=out, n=24, tier=2, seed=5, workers=1, sample_rate=22050, duration_s=0.5,
            note_duration_s=0.3, part_size=24, progress=False,
        )
    )  # fmt: skip
    return out


def test_index_rebuilds_presets_exactly_and_finds_an_example_itself(generated, tmp_path, cli):
    from synthmatch.datagen.store import Dataset, audio_from_storage
    from synthmatch.inference.retrieval import RetrievalIndex

    path = tmp_path / "t2.index"
    r = cli("index", "-d", generated, "-o", path)
    assert r.code == 0, r.err
    assert "indexed" in r.out
    index = RetrievalIndex.load(path)
    with Dataset(generated) as ds:
        seed_index = list(ds.column("seed_index"))
        hashes = [h.decode() for h in ds.column("preset_hash")]
        assert len(index) == len(ds)
        for row in range(len(index)):
            i = seed_index.index(int(index.seed_index[row]))
            assert index.preset(row).content_hash() == hashes[i]
        audio = audio_from_storage(ds.h5["audio"][3])
        want = int(ds.column("seed_index")[3])
    hit = index.query(audio, 22050, k=2)
    assert hit[0].seed_index == want and hit[0].distance < 0.05
    assert len({h.seed_index for h in hit}) == 2
    again = cli("index", "-d", generated, "-o", path)
    assert again.code == 2 and "exists" in again.err and "--overwrite" in again.err


def test_bad_candidates_and_index_give_one_line_errors(cli, tmp_path, known):
    out = tmp_path / "o"
    cases = [
        (["--refine", "--candidates", "0"], "--candidates must be in 1..8"),
        (["--refine", "--candidates", "99"], "--candidates must be in 1..8"),
        (["--candidates", "2"], "--candidates needs --refine"),
        (["--refine", "--starts", "model,friends"], "--starts takes"),
        (["--refine", "--index", tmp_path / "missing.index"], "no such index file"),
    ]
    junk = tmp_path / "junk.index"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    cases.append((["--refine", "--index", junk], "not a readable index"))
    for args, message in cases:
        r = cli("infer", "-i", known.wav, "-o", out, *args)
        assert r.code == 2, (args, r.err)
        assert message in r.err, (args, r.err)
        assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, r.err


def test_a_stale_or_foreign_index_is_refused(generated, tmp_path):
    from safetensors.numpy import save_file

    from synthmatch.inference.retrieval import RetrievalIndex, RetrievalIndexError, build_index

    path = tmp_path / "t2.index"
    build_index(generated, path)
    index = RetrievalIndex.load(path)
    index.meta = {**index.meta, "sampling_rules": "something else"}
    index.save(tmp_path / "stale.index")
    with pytest.raises(RetrievalIndexError, match="other sampling rules"):
        RetrievalIndex.load(tmp_path / "stale.index")
    save_file({"x": np.zeros(3, np.float32)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(RetrievalIndexError, match="not a synthmatch index"):
        RetrievalIndex.load(tmp_path / "other.safetensors")


def test_infer_writes_ranked_candidates(cli, tmp_path, known, generated):
    from synthmatch.inference.retrieval import build_index

    index = build_index(generated, tmp_path / "t2.index")["index"]
    out = tmp_path / "cands"
    r = cli(
        "infer", "-i", known.wav, "-o", out, "--start", "init", "--refine", "--refine-evals", "100",
        "--candidates", "3", "--index", index, "--render", "--json",
    )  # fmt: skip
    assert r.code == 0, r.err
    res = json.loads(r.out)[0]
    cands = res["candidates"]
    assert 1 <= len(cands) <= 3
    assert [c["rank"] for c in cands] == list(range(1, len(cands) + 1))
    assert [c["distance"] for c in cands] == sorted(c["distance"] for c in cands)
    assert res["match_distance"] == cands[0]["distance"]
    best = {k: cands[0][k] for k in ("similarity", "verdict")}
    assert {k: res["verdict"][k] for k in best} == best  # the summary's verdict is the best candidate's
    assert [c["similarity"] for c in cands] == sorted((c["similarity"] for c in cands), reverse=True)
    assert res["renders"] <= 100
    starts = res["candidate_search"]["starts"]
    assert starts[0] == "Vital's init preset" and sum(s.startswith("nearest neighbour") for s in starts) == 2
    stem = known.wav.stem
    assert (out / f"{stem}.vital").exists() and (out / f"{stem}.wav").exists()
    for rank in range(2, len(cands) + 1):
        assert (out / f"{stem}.{rank}.vital").exists() and (out / f"{stem}.{rank}.wav").exists()
        assert res["outputs"][f"preset.{rank}"] == str(out / f"{stem}.{rank}.vital")
    for rank in range(1, len(cands) + 1):
        name = f"{stem}.vital" if rank == 1 else f"{stem}.{rank}.vital"
        Preset.load(out / name)


def test_a_dataset_not_made_by_generate_cannot_be_indexed(tmp_path, cli):
    from tests.training.helpers import make_dataset

    ds = make_dataset(tmp_path / "hand.h5", tier=2, n=4)
    r = cli("index", "-d", ds, "-o", tmp_path / "x.index")
    assert r.code == 2 and "not written by `synthmatch generate`" in r.err
    assert len(r.err.strip().splitlines()) == 1 and not (tmp_path / "x.index").exists()
    r = cli("index", "-d", tmp_path / "missing.h5", "-o", tmp_path / "x.index")
    assert r.code == 2 and "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, r.err


def test_candidate_names_that_would_collide_are_refused_before_any_work(cli, tmp_path, known):
    import shutil

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(known.wav, folder / "kick.wav")
    shutil.copy(known.wav, folder / "kick.2.wav")
    r = cli("infer", "-i", folder, "-o", tmp_path / "o", "--refine")
    assert r.code == 2 and "would both write" in r.err and "kick.2.vital" in r.err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    out = tmp_path / "one.vital"
    (tmp_path / "one.2.vital").write_text("{}")
    r = cli("infer", "-i", known.wav, "-o", out, "--refine", "--refine-evals", "100")
    assert r.code == 2 and "one.2.vital: exists" in r.err and not out.exists()
