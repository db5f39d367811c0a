"""Model outputs -> parameter vectors (ParamVector) with a confidence per categorical parameter.

Shared by training (rendering validation predictions) and inference (the Predictor), so both decode
predictions identically.
"""

from __future__ import annotations

import numpy as np
import torch

from synthmatch.synth.params import N_MOD_SLOTS
from synthmatch.synth.presets import MOD_DTYPE, ParamVector

__all__ = ["decode_outputs", "MOD_THRESHOLD"]

MOD_THRESHOLD = 0.5


@torch.no_grad()
def decode_outputs(
    out: dict[str, torch.Tensor],
    tier: int,
    categorical_sizes: tuple[int, ...],
    max_connections: int = N_MOD_SLOTS,
) -> list[tuple[ParamVector, np.ndarray]]:
    """Decode a batch of model outputs.

    Returns:
        one (ParamVector, confidence) per example; confidence is (Nk,) the probability of the chosen option
        of each categorical parameter.
    """
    cont = out["continuous"].float().clamp(0, 1).cpu().numpy()
    logits = out["categorical_logits"].float()
    groups = torch.split(logits, list(categorical_sizes), dim=-1) if categorical_sizes else []
    if groups:
        probs = [torch.softmax(g, -1) for g in groups]
        cat = torch.stack([p.argmax(-1) for p in probs], 1).cpu().numpy()
        conf = torch.stack([p.max(-1).values for p in probs], 1).cpu().numpy()
    else:
        cat = np.zeros((len(cont), 0), np.int64)
        conf = np.zeros((len(cont), 0), np.float32)
    results = []
    for i in range(len(cont)):
        mods = np.zeros(0, MOD_DTYPE)
        if "mod_logits" in out:
            p = torch.sigmoid(out["mod_logits"][i].float())  # (S, D)
            flat = p.flatten()
            chosen = torch.nonzero(flat > MOD_THRESHOLD).flatten()
            chosen = chosen[torch.argsort(flat[chosen], descending=True)][:max_connections]
            n_dst = p.shape[1]
            mods = np.zeros(len(chosen), MOD_DTYPE)
            for j, k in enumerate(chosen.tolist()):
                s, d = divmod(k, n_dst)
                mods[j] = (
                    s,
                    d,
                    float(out["mod_amount"][i, s, d]),
                    int(out["mod_bipolar_logits"][i, s, d] > 0),
                    float(out["mod_power"][i, s, d]),
                    int(out["mod_stereo_logits"][i, s, d] > 0),
                )
        results.append(
            (ParamVector(tier, cont[i].astype(np.float32), cat[i].astype(np.int64), mods), conf[i])
        )
    return results
