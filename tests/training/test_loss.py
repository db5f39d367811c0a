"""Masking and the modulation set loss."""

from __future__ import annotations

import numpy as np
import torch

from synthmatch.synth.params import param_space
from synthmatch.training.loss import LossWeights, MetricSums, ParamLayout, compute_loss, modulation_targets


def _layout(tier: int) -> ParamLayout:
    ts = param_space().tier(tier)
    return ParamLayout.from_names(
        tier, ts.continuous, ts.categorical, ts.n_options, len(ts.mod_sources), len(ts.mod_destinations)
    )


def _batch(layout: ParamLayout, b: int = 2, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    cat = torch.stack([torch.randint(0, n, (b,), generator=g) for n in layout.categorical_sizes], 1)
    nc = len(layout.continuous_names)
    batch = {
        "continuous": torch.rand(b, nc, generator=g),
        "categorical": cat,
        "mod_count": torch.zeros(b, dtype=torch.long),
    }
    for k in ("source", "destination"):
        batch[f"mod_{k}"] = torch.zeros(b, 1, dtype=torch.long)
    for k in ("amount", "power", "bipolar", "stereo"):
        batch[f"mod_{k}"] = torch.zeros(b, 1)
    return batch


def _outputs(layout: ParamLayout, b: int, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "continuous": torch.rand(b, len(layout.continuous_names), generator=g),
        "categorical_logits": torch.randn(b, int(sum(layout.categorical_sizes)), generator=g),
    }


def test_switched_off_module_is_masked():
    layout = _layout(2)
    cat_names = list(layout.categorical_names)
    batch = _batch(layout)
    batch["categorical"][0, cat_names.index("filter_2_on")] = 0
    batch["categorical"][1, cat_names.index("filter_2_on")] = 1
    cmask, kmask = layout.masks(batch["categorical"])
    cols = [i for i, n in enumerate(layout.continuous_names) if n.startswith("filter_2_")]
    assert cmask[0, cols].sum() == 0 and cmask[1, cols].sum() == len(cols)
    model_col = cat_names.index("filter_2_model")
    assert kmask[0, model_col] == 0 and kmask[1, model_col] == 1
    assert kmask[0, cat_names.index("filter_2_on")] == 1  # a switch always counts


def test_modulation_only_modules_masked_below_tier3():
    for tier, expect_masked in ((2, True), (3, False)):
        layout = _layout(tier)
        cmask, _ = layout.masks(_batch(layout)["categorical"])
        for name in ("lfo_1_frequency", "env_3_attack", "random_2_frequency", "env_2_decay"):
            j = layout.continuous_names.index(name)
            assert bool(cmask[:, j].sum() == 0) == expect_masked, (tier, name)
        j = layout.continuous_names.index("env_1_attack")
        assert cmask[:, j].sum() > 0


def test_masked_prediction_does_not_change_loss():
    layout = _layout(2)
    batch = _batch(layout)
    batch["categorical"][:, list(layout.categorical_names).index("reverb_on")] = 0
    out = _outputs(layout, 2)
    loss_a, _ = compute_loss(out, batch, layout, LossWeights())
    j = layout.continuous_names.index("reverb_size")
    out["continuous"][:, j] = 1 - out["continuous"][:, j]
    loss_b, _ = compute_loss(out, batch, layout, LossWeights())
    assert torch.isclose(loss_a, loss_b)
    k = layout.continuous_names.index("osc_1_level")  # osc_1 on? force it on and check it counts
    batch["categorical"][:, list(layout.categorical_names).index("osc_1_on")] = 1
    loss_c, _ = compute_loss(out, batch, layout, LossWeights())
    out["continuous"][:, k] = 1 - out["continuous"][:, k]
    loss_d, _ = compute_loss(out, batch, layout, LossWeights())
    assert not torch.isclose(loss_c, loss_d)


def _mod_batch(layout: ParamLayout, conns: list[list[tuple]]) -> dict:
    b = len(conns)
    m = max(1, max(len(c) for c in conns))
    batch = _batch(layout, b)
    batch["mod_count"] = torch.tensor([len(c) for c in conns])
    for key, pos in (("source", 0), ("destination", 1)):
        batch[f"mod_{key}"] = torch.tensor([[c[pos] for c in cs] + [0] * (m - len(cs)) for cs in conns])
    for key, pos in (("amount", 2), ("bipolar", 3), ("power", 4), ("stereo", 5)):
        batch[f"mod_{key}"] = torch.tensor(
            [[float(c[pos]) for c in cs] + [0.0] * (m - len(cs)) for cs in conns]
        )
    return batch


def _perfect_mod_outputs(layout: ParamLayout, batch: dict) -> dict:
    tgt = modulation_targets(batch, layout.n_mod_sources, layout.n_mod_destinations)
    out = _outputs(layout, batch["mod_count"].shape[0])
    out["mod_logits"] = (tgt["exist"] * 2 - 1) * 20.0
    out["mod_amount"], out["mod_power"] = tgt["amount"], tgt["power"]
    out["mod_bipolar_logits"] = (tgt["bipolar"] * 2 - 1) * 20.0
    out["mod_stereo_logits"] = (tgt["stereo"] * 2 - 1) * 20.0
    return out


def test_modulation_set_loss():
    layout = _layout(3)
    conns = [[(0, 5, 0.8, 1, 0.5, 0), (3, 17, 0.2, 0, 0.9, 1)], []]
    batch = _mod_batch(layout, conns)
    perfect = _perfect_mod_outputs(layout, batch)
    _, parts = compute_loss(perfect, batch, layout, LossWeights())
    assert parts["loss_modulation"] < 1e-3
    # order of the connections does not matter
    swapped = _mod_batch(layout, [conns[0][::-1], []])
    _, parts_swapped = compute_loss(perfect, swapped, layout, LossWeights())
    assert abs(parts_swapped["loss_modulation"] - parts["loss_modulation"]) < 1e-9
    # predicting "absent" everywhere is scored: missing connections cost, empty targets cost nothing
    absent = dict(perfect)
    absent["mod_logits"] = torch.full_like(perfect["mod_logits"], -20.0)
    _, parts_absent = compute_loss(absent, batch, layout, LossWeights())
    assert parts_absent["loss_modulation"] > 0.01
    empty = _mod_batch(layout, [[], []])
    _, parts_empty = compute_loss(absent, empty, layout, LossWeights())
    assert parts_empty["loss_modulation"] < 1e-6
    # precision/recall metrics
    sums = MetricSums()
    compute_loss(perfect, batch, layout, LossWeights(), metrics=sums)
    means = sums.reduce()
    assert means["mod_precision"] == 1.0 and means["mod_recall"] == 1.0


def test_label_smoothing_raises_loss_of_confident_correct_predictions():
    layout = _layout(1)
    batch = _batch(layout)
    out = _outputs(layout, 2)
    logits = torch.full_like(out["categorical_logits"], -10.0)
    for k in range(len(layout.categorical_sizes)):
        logits[torch.arange(2), int(layout.cat_offsets[k]) + batch["categorical"][:, k]] = 10.0
    out["categorical_logits"] = logits
    _, plain = compute_loss(out, batch, layout, LossWeights(label_smoothing=0.0))
    _, smooth = compute_loss(out, batch, layout, LossWeights(label_smoothing=0.1))
    assert plain["loss_categorical"] < 1e-4 < smooth["loss_categorical"]


def test_metric_sums_are_batching_invariant():
    layout = _layout(1)
    batch = _batch(layout, b=6, seed=3)
    out = _outputs(layout, 6, seed=4)
    whole = MetricSums()
    compute_loss(out, batch, layout, LossWeights(), metrics=whole, detailed=True)
    parts = MetricSums()
    for sl in (slice(0, 2), slice(2, 6)):
        compute_loss(
            {k: v[sl] for k, v in out.items()},
            {k: v[sl] for k, v in batch.items()},
            layout,
            LossWeights(),
            metrics=parts,
            detailed=True,
        )
    a, b = whole.reduce(), parts.reduce()
    assert a.keys() == b.keys()
    for k in a:
        assert np.isclose(a[k], b[k]), k
