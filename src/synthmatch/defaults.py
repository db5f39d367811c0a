"""Values every stage shares, declared once.

DEFAULT_SAMPLE_RATE: the rate everything renders and analyses at unless told otherwise (a model brings
its own, a dataset file records its own). The parameter tiers are `synth.params.TIERS`.
"""

from __future__ import annotations

__all__ = ["DEFAULT_SAMPLE_RATE"]

DEFAULT_SAMPLE_RATE = 44100
