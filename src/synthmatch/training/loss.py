"""Loss and metrics, in normalized parameter space.

- Continuous: masked (optionally weighted) MSE. A parameter does not count when its module is switched off
  in the target (filter_2_* with filter_2_on = 0, reverb_* with reverb_on = 0, ...), and below tier 3 the
  modules that can only be heard through modulation (LFOs, random generators, envelopes 2-6) never count:
  their values cannot be inferred from the sound.
- Categorical: cross-entropy per parameter with label smoothing, masked the same way.
- Modulation (tier 3): the routing is a set of (source, destination) pairs, predicted as a dense grid.
  Existence is a binary cross-entropy over every pair (most are absent, so "absent" is the default
  answer and positives are up-weighted); amount, power, bipolar and stereo are only scored on the
  connections that exist in the target. The grid makes the loss independent of connection order.

Metrics are accumulated as sums and counts (`MetricSums`) so that, under DDP, an all-reduce of the sums
gives exactly the metrics of the whole validation set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from synthmatch.datagen.store import DatasetSchema
from synthmatch.synth.params import module_of

__all__ = ["ParamLayout", "LossWeights", "compute_loss", "MetricSums", "modulation_targets", "combine_loss"]

# Modules heard only through modulation routing.
_MODULATION_ONLY = re.compile(r"^(lfo_\d|random_\d|env_[2-6]|macro_control_\d)$")


@dataclass
class ParamLayout:
    """Per-parameter facts the loss needs, built from a dataset schema (or a checkpoint's copy of it)."""

    continuous_names: tuple[str, ...]
    categorical_names: tuple[str, ...]
    categorical_sizes: tuple[int, ...]
    tier: int
    cont_switch: np.ndarray  # (Nc,) index into categorical of the module's switch, -1 if none
    cat_switch: np.ndarray  # (Nk,)
    cont_always_masked: np.ndarray  # (Nc,) bool
    cat_always_masked: np.ndarray  # (Nk,) bool
    cont_group: tuple[str, ...]  # module of each continuous parameter
    n_mod_sources: int = 0
    n_mod_destinations: int = 0
    cat_offsets: np.ndarray | None = field(default=None)  # (Nk + 1,); from_names always sets it

    @classmethod
    def from_names(
        cls,
        tier: int,
        continuous: tuple[str, ...],
        categorical: tuple[str, ...],
        sizes: tuple[int, ...],
        n_mod_sources: int = 0,
        n_mod_destinations: int = 0,
    ) -> ParamLayout:
        cat_pos = {n: i for i, n in enumerate(categorical)}

        def switch_of(name: str) -> int:
            if name.endswith("_on"):
                return -1
            return cat_pos.get(f"{module_of(name)}_on", -1)

        def always(name: str) -> bool:
            return tier < 3 and bool(_MODULATION_ONLY.match(module_of(name)))

        return cls(
            continuous_names=tuple(continuous),
            categorical_names=tuple(categorical),
            categorical_sizes=tuple(int(s) for s in sizes),
            tier=tier,
            cont_switch=np.array([switch_of(n) for n in continuous], np.int64),
            cat_switch=np.array([switch_of(n) for n in categorical], np.int64),
            cont_always_masked=np.array([always(n) for n in continuous], bool),
            cat_always_masked=np.array([always(n) for n in categorical], bool),
            cont_group=tuple(module_of(n) for n in continuous),
            n_mod_sources=n_mod_sources,
            n_mod_destinations=n_mod_destinations,
            cat_offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        )

    @classmethod
    def from_schema(cls, schema: DatasetSchema) -> ParamLayout:
        return cls.from_names(
            schema.tier,
            schema.continuous_names,
            schema.categorical_names,
            schema.categorical_n_options,
            len(schema.mod_sources),
            len(schema.mod_destinations),
        )

    def masks(self, categorical: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, Nc) and (B, Nk) float masks: 1 where the parameter counts for this target."""
        dev = categorical.device

        def build(switch: np.ndarray, always: np.ndarray) -> torch.Tensor:
            sw = torch.as_tensor(switch, device=dev)
            has = sw >= 0
            on = torch.ones(categorical.shape[0], len(switch), device=dev)
            if has.any():
                on[:, has] = (categorical[:, sw[has]] > 0).float()
            return on * (~torch.as_tensor(always, device=dev)).float()

        return build(self.cont_switch, self.cont_always_masked), build(
            self.cat_switch, self.cat_always_masked
        )


@dataclass(frozen=True)
class LossWeights:
    continuous: float = 1.0
    categorical: float = 0.2
    modulation: float = 1.0
    mod_positive_weight: float = 20.0
    label_smoothing: float = 0.0


def modulation_targets(batch: dict[str, torch.Tensor], n_src: int, n_dst: int) -> dict[str, torch.Tensor]:
    """Dense (B, S, D) targets from the padded connection lists of a batch."""
    b = batch["mod_count"].shape[0]
    dev = batch["mod_count"].device
    m = batch["mod_source"].shape[1]
    valid = torch.arange(m, device=dev).unsqueeze(0) < batch["mod_count"].unsqueeze(1)  # (B, M)
    bi = torch.arange(b, device=dev).unsqueeze(1).expand(b, m)[valid]
    si, di = batch["mod_source"][valid], batch["mod_destination"][valid]
    out = {
        k: torch.zeros(b, n_src, n_dst, device=dev) for k in ("exist", "amount", "power", "bipolar", "stereo")
    }
    out["exist"][bi, si, di] = 1.0
    for k in ("amount", "power", "bipolar", "stereo"):
        out[k][bi, si, di] = batch[f"mod_{k}"][valid].float()
    return out


MOD_EXIST_SCALE = 10.0


def combine_loss(means: dict[str, float], weights: LossWeights, prefix: str = "") -> float:
    """The total loss from reduced metric means (identical however the examples were batched or sharded)."""
    total = weights.continuous * means.get(f"{prefix}loss_continuous", 0.0)
    total += weights.categorical * means.get(f"{prefix}loss_categorical", 0.0)
    if f"{prefix}loss_mod_exist" in means:
        mod = MOD_EXIST_SCALE * means[f"{prefix}loss_mod_exist"] + means.get(f"{prefix}loss_mod_attr", 0.0)
        means[f"{prefix}loss_modulation"] = mod
        total += weights.modulation * mod
    return total


class MetricSums:
    """Named (sum, count) pairs; `reduce()` turns them into means. All-reducible as one tensor."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, float] = {}

    def add(self, name: str, total: float | torch.Tensor, count: float | torch.Tensor) -> None:
        self.sums[name] = self.sums.get(name, 0.0) + float(total)
        self.counts[name] = self.counts.get(name, 0.0) + float(count)

    def merge(self, other: MetricSums) -> None:
        for k in other.sums:
            self.add(k, other.sums[k], other.counts[k])

    def all_reduce(self, names: list[str]) -> None:
        """Sum across DDP ranks. Every rank must pass the same `names` (sorted union)."""
        from synthmatch.training.distributed import all_reduce_sum

        vec = torch.tensor(
            [[self.sums.get(n, 0.0), self.counts.get(n, 0.0)] for n in names], dtype=torch.float64
        )
        vec = all_reduce_sum(vec)
        for n, (s, c) in zip(names, vec.tolist()):
            self.sums[n], self.counts[n] = s, c

    def reduce(self, prefix: str = "") -> dict[str, float]:
        return {
            f"{prefix}{k}": self.sums[k] / self.counts[k] for k in sorted(self.sums) if self.counts[k] > 0
        }


def compute_loss(
    out: dict[str, torch.Tensor],
    batch: dict[str, torch.Tensor],
    layout: ParamLayout,
    weights: LossWeights,
    param_weights: torch.Tensor | None = None,
    metrics: MetricSums | None = None,
    detailed: bool = False,
) -> tuple[torch.Tensor, dict]:
    """Total loss of a batch and its parts (floats).

    Args:
        out: model outputs. batch: a BatchDataset item on the same device.
        param_weights: optional (Nc,) perceptual weights of the continuous parameters.
        metrics: when given, per-example sums are added (for exact validation metrics).
        detailed: also accumulate per-group MSE and per-parameter accuracy.
    """
    cont_t, cat_t = batch["continuous"], batch["categorical"]
    bsz = cont_t.shape[0]
    cmask, kmask = layout.masks(cat_t)
    w = cmask if param_weights is None else cmask * param_weights.unsqueeze(0)
    sq = (out["continuous"] - cont_t) ** 2  # (B, Nc)
    cont_loss = (sq * w).sum() / w.sum().clamp_min(1.0)

    logits = out["categorical_logits"]
    ce_terms, correct = [], []
    for k in range(len(layout.categorical_sizes)):
        assert layout.cat_offsets is not None, "build the ParamLayout with from_names (sets cat_offsets)"
        lo, hi = int(layout.cat_offsets[k]), int(layout.cat_offsets[k + 1])
        lg = logits[:, lo:hi]
        ce_terms.append(
            F.cross_entropy(lg, cat_t[:, k], reduction="none", label_smoothing=weights.label_smoothing)
        )
        correct.append((lg.argmax(-1) == cat_t[:, k]).float())
    ce = torch.stack(ce_terms, 1) if ce_terms else torch.zeros(bsz, 0, device=logits.device)  # (B, Nk)
    acc = torch.stack(correct, 1) if correct else ce
    cat_loss = (ce * kmask).sum() / kmask.sum().clamp_min(1.0)

    total = weights.continuous * cont_loss + weights.categorical * cat_loss
    parts = {"loss_continuous": float(cont_loss.detach()), "loss_categorical": float(cat_loss.detach())}

    mod_stats = None
    if layout.n_mod_sources and "mod_logits" in out:
        tgt = modulation_targets(batch, layout.n_mod_sources, layout.n_mod_destinations)
        pos = tgt["exist"]
        exist_pairs = F.binary_cross_entropy_with_logits(
            out["mod_logits"],
            pos,
            pos_weight=torch.tensor(weights.mod_positive_weight, device=pos.device),
            reduction="none",
        )
        exist_per_example = exist_pairs.flatten(1).mean(1)  # (B,)
        exist = exist_per_example.mean()
        n_pos = pos.sum().clamp_min(1.0)
        attr_pairs = (
            (out["mod_amount"] - tgt["amount"]) ** 2
            + (out["mod_power"] - tgt["power"]) ** 2
            + F.binary_cross_entropy_with_logits(out["mod_bipolar_logits"], tgt["bipolar"], reduction="none")
            + F.binary_cross_entropy_with_logits(out["mod_stereo_logits"], tgt["stereo"], reduction="none")
        )
        attr_sum = (attr_pairs * pos).sum()
        attr = attr_sum / n_pos
        mod_loss = exist * MOD_EXIST_SCALE + attr
        total = total + weights.modulation * mod_loss
        parts["loss_modulation"] = float(mod_loss.detach())
        pred = (out["mod_logits"] > 0).float()
        mod_stats = ((pred * pos).sum(), pred.sum(), pos.sum(), exist_per_example.sum(), attr_sum)

    parts["loss"] = float(total.detach())
    if metrics is not None:
        with torch.no_grad():
            metrics.add("loss_continuous", (sq * w).sum(), w.sum())
            metrics.add("loss_categorical", (ce * kmask).sum(), kmask.sum())
            metrics.add("mse", (sq * cmask).sum(), cmask.sum())
            metrics.add("acc", (acc * kmask).sum(), kmask.sum())
            if mod_stats is not None:
                tp, npred, npos, exist_sum, attr_total = mod_stats
                metrics.add("loss_mod_exist", exist_sum, bsz)
                metrics.add("loss_mod_attr", attr_total, npos)
                metrics.add("mod_precision", tp, npred)
                metrics.add("mod_recall", tp, npos)
            if detailed:
                for g in sorted(set(layout.cont_group)):
                    cols = torch.as_tensor(
                        [i for i, x in enumerate(layout.cont_group) if x == g], device=sq.device
                    )
                    metrics.add(f"mse_{g}", (sq[:, cols] * cmask[:, cols]).sum(), cmask[:, cols].sum())
                for k, name in enumerate(layout.categorical_names):
                    metrics.add(f"acc_{name}", (acc[:, k] * kmask[:, k]).sum(), kmask[:, k].sum())
    return total, parts
