"""Values every stage shares, declared once.

DEFAULT_SAMPLE_RATE: the rate everything renders and analyses at unless told otherwise (a model brings
its own, a dataset file records its own).
DATASET_TIER: the parameter tier `generate` and `ingest` write by default (every control a dataset can
hold; training and matching may use a lower tier of it).
SEARCH_TIER: the parameter space matched and refined without a model (a model brings its own).
The parameter tiers themselves are `synth.params.TIERS`.
"""

from __future__ import annotations

__all__ = ["DEFAULT_SAMPLE_RATE", "DATASET_TIER", "SEARCH_TIER"]

DEFAULT_SAMPLE_RATE = 44100
DATASET_TIER = 3
SEARCH_TIER = 2
