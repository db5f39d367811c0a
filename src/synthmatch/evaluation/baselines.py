"""The matching methods `synthmatch eval` compares, and the baselines among them.

Every method turns a target into one preset; search methods spend a budget of B evaluations (renders
scored against the target) doing so, the others spend none:

| key             | method                                                                              |
|-----------------|-------------------------------------------------------------------------------------|
| `init`          | Vital's init preset                                                                 |
| `random`        | one random preset from the dataset sampler (a seed no training set uses)            |
| `nn`            | the nearest training example by a log-mel embedding (`--train-data FILE.h5`)        |
| `model`         | the model's prediction (`-c CKPT`, default the bundled model)                       |
| `cmaes`         | CMA-ES from the init preset with B evaluations (`inference.refine`)                 |
| `model_cmaes`   | CMA-ES from the model's prediction with B evaluations                               |
| `random_search` | the best of B random presets from the sampler, by the refinement objective          |
| `candidates`    | `infer --candidates`: the model, its top discrete alternatives, nearest neighbours in |
|                 | the bundled index and init share B evaluations; the best candidate                  |

The nearest-neighbour embedding (`embed_features`) pools the model's own log-mel features (loudness
normalised, `audio.features.model_features`) into 32 bands x 8 time segments of mean log magnitude plus
each band's standard deviation over time: 288 numbers that keep the spectral envelope and its
evolution but not the exact partials. Dimensions are standardised over the training set and compared by
Euclidean distance. Training features come from the precomputed sidecar (`FILE.mels.h5`,
`synthmatch precompute-mels`) when it is current, and are computed from the audio otherwise.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from synthmatch.audio.features import MelSettings, embed_features, fit_length, model_features
from synthmatch.audio.io import resample
from synthmatch.datagen.sample import PresetSampler
from synthmatch.synth.presets import Preset

if TYPE_CHECKING:
    from synthmatch.inference.refine import RefineResult

log = logging.getLogger(__name__)

__all__ = [
    "METHODS",
    "METHOD_LABELS",
    "SEARCH_METHODS",
    "MODEL_METHODS",
    "RANDOM_SEED",
    "RANDOM_SEARCH_SEED",
    "MethodResult",
    "NearestNeighbour",
    "embed_features",
    "random_search",
    "refine_history",
]

METHODS = ("init", "random", "nn", "model", "cmaes", "model_cmaes", "random_search", "candidates")
METHOD_LABELS = {
    "init": "Vital init preset",
    "random": "random preset",
    "nn": "nearest neighbour (log-mel)",
    "model": "model only",
    "cmaes": "CMA-ES from init",
    "model_cmaes": "model + CMA-ES",
    "random_search": "random search",
    "candidates": "model + candidates",
}
SEARCH_METHODS = ("cmaes", "model_cmaes", "random_search", "candidates")
MODEL_METHODS = ("model", "model_cmaes", "candidates")
# Seeds of the random baselines: neither the training default (0) nor the evaluation targets' seed.
RANDOM_SEED = 9_100_001
RANDOM_SEARCH_SEED = 9_200_001


@dataclass
class MethodResult:
    """What a method chose for one target.

    Attributes:
        preset: the match.
        renders: evaluations spent choosing it (0 for the methods that do not search).
        seconds: wall time to choose it (prediction, search), without the scoring render.
        history: (evaluations so far, best objective so far) pairs of a search.
        info: method-specific facts (nearest neighbour's row, refinement stop reason...).
    """

    preset: Preset
    renders: int = 0
    seconds: float = 0.0
    history: list[tuple[int, float]] | None = None
    info: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------
# nearest neighbour
class NearestNeighbour:
    """Index of a training dataset by log-mel embedding; `query` finds a target's closest example.

    Args:
        path: the training dataset (.h5 written by generate/ingest/merge).
        batch_size: examples embedded at a time.
        progress: show a progress bar while embedding.
    """

    def __init__(self, path: str | os.PathLike, batch_size: int = 256, progress: bool = False):
        from tqdm import tqdm

        from synthmatch.datagen.community import test_preset_names
        from synthmatch.datagen.mels import MelReader, dataset_fingerprint, mel_sidecar_path
        from synthmatch.datagen.store import Dataset, DatasetError, audio_from_storage

        from .testsets import EVAL_SEED

        t0 = time.perf_counter()
        self.path = Path(path)
        self.ds = Dataset(self.path)
        schema = self.ds.schema
        n = len(self.ds)
        if n == 0:
            raise DatasetError(f"{self.path}: the dataset is empty; --train-data needs examples")
        self.sample_rate = int(schema.sample_rate)
        self.n_samples = schema.n_samples
        if schema.seed == EVAL_SEED and "generate_fingerprint" in self.ds.h5.attrs:
            log.warning(
                "%s was generated with the evaluation seed %d: in-domain results leak", path, EVAL_SEED
            )
        files = [Path(str(f.decode() if isinstance(f, bytes) else f)).stem for f in self.ds.column("file")]
        leaked = sorted(set(files) & set(test_preset_names()))
        if leaked:
            log.warning(
                "%s holds %d community presets reserved for evaluation (%s): community results leak",
                path,
                len(leaked),
                ", ".join(leaked[:5]),
            )
        reader = None
        sidecar = mel_sidecar_path(self.path)
        if sidecar.exists():
            try:
                reader = MelReader(sidecar, expected_fingerprint=dataset_fingerprint(self.ds))
            except DatasetError as exc:
                log.warning("%s; computing the features from the audio instead", exc)
        if reader is not None:
            self.mel = reader.settings
            self.source = "sidecar"
        else:
            self.mel = MelSettings(sample_rate=self.sample_rate)
            self.source = "audio"
            log.info(
                "nearest neighbour: computing log-mel features of %d examples from %s "
                "(`synthmatch precompute-mels -d %s` makes this faster)",
                n,
                self.path,
                self.path,
            )
        chunks = []
        audio_ds = self.ds.h5["audio"]
        bar = tqdm(total=n, desc="embedding training set", unit="ex", disable=not progress, leave=False)
        for a in range(0, n, batch_size):
            b = min(n, a + batch_size)
            if reader is not None:
                feats = reader.read(range(a, b)).astype(np.float32)
            else:
                audio = audio_from_storage(audio_ds[a:b])
                if audio.ndim == 3:
                    audio = audio.mean(axis=1)  # the model hears mono
                feats = model_features(audio, self.mel)
            chunks.append(embed_features(feats))
            bar.update(b - a)
        bar.close()
        emb = np.concatenate(chunks)  # (N, D)
        self.mean = emb.mean(axis=0)
        self.std = emb.std(axis=0) + 1e-3
        self.embeddings = (emb - self.mean) / self.std
        self.seconds_to_index = time.perf_counter() - t0
        log.info(
            "nearest neighbour: %d examples of %s embedded from the %s in %.1f s",
            n,
            self.path,
            self.source,
            self.seconds_to_index,
        )

    def __len__(self) -> int:
        return len(self.embeddings)

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """(D,) standardised embedding of mono audio, read like a training example."""
        a = np.asarray(audio, np.float32).reshape(-1)
        if sample_rate != self.sample_rate:
            a = resample(a, sample_rate, self.sample_rate)
        feats = model_features(fit_length(a, self.n_samples), self.mel)
        return (embed_features(feats)[0] - self.mean) / self.std

    def query(self, audio: np.ndarray, sample_rate: int) -> tuple[int, float]:
        """(row index, embedding distance) of the training example closest to `audio`."""
        d = np.sum(np.square(self.embeddings - self.embed(audio, sample_rate)), axis=1)
        i = int(np.argmin(d))
        return i, float(np.sqrt(d[i]))

    def preset(self, index: int) -> Preset:
        return self.ds.preset(index)

    def row_info(self, index: int) -> dict:
        return self.ds.row_info(index)

    def close(self) -> None:
        self.ds.close()


# ---------------------------------------------------------------------------------------------------
# searches
def random_search(
    target: np.ndarray,
    sample_rate: int,
    renderer,
    sampler: PresetSampler,
    first_index: int,
    budget: int,
    *,
    midi_note: int,
    note_duration_s: float,
    duration_s: float,
) -> MethodResult:
    """The best of `budget` sampler presets (indices first_index...) by the refinement objective."""
    from synthmatch.audio.distances import MultiScaleLogMel
    from synthmatch.inference.refine import FAILED_LOSS

    t0 = time.perf_counter()
    objective = MultiScaleLogMel(target, sample_rate, loudness_normalize=True)

    def loss(audio: np.ndarray) -> float:
        return float(objective(audio)) if np.all(np.isfinite(audio)) else FAILED_LOSS

    presets = [sampler.sample(first_index + k).preset for k in range(budget)]
    results = renderer.render_batch(presets, midi_note, note_duration_s, duration_s, postprocess=loss)
    losses = np.array([r.value if r.ok and r.value is not None else FAILED_LOSS for r in results])
    best = int(np.argmin(losses))
    running = np.minimum.accumulate(losses)
    return MethodResult(
        presets[best],
        renders=budget,
        seconds=time.perf_counter() - t0,
        history=[(k + 1, float(v)) for k, v in enumerate(running)],
        info={"best_index": first_index + best, "final_loss": float(losses[best])},
    )


def refine_history(result: RefineResult) -> list[tuple[int, float]]:
    """(evaluations, best-so-far loss) pairs of a refinement.

    `refine` records the best loss after the start's evaluation and after every generation, with the
    evaluations spent at each (a generation spends `popsize`, the last one may be cut to the budget; the
    final random-phase check after the search is not in the curve).
    """
    return [(int(k), float(h)) for k, h in zip(result.history_evals, result.history)]


def method_label(method: str, budget: int) -> str:
    """A method's name in tables and plots, with the budget for search methods ("CMA-ES (B=100)")."""
    label = METHOD_LABELS.get(method, method)
    return f"{label} (B={budget})" if method in SEARCH_METHODS else label
