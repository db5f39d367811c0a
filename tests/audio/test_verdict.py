"""The verdict: a match distance as a 0-100 similarity and a word, anchored on the synth's own renders."""

from __future__ import annotations

import math

import pytest

from synthmatch.audio.distances import match_distance
from synthmatch.audio.verdict import INDISTINGUISHABLE, UNRELATED, WORDS, Verdict, verdict
from synthmatch.synth.presets import Preset


def test_anchors_and_order():
    assert verdict(0.0).similarity == 100 and verdict(INDISTINGUISHABLE).word == "indistinguishable"
    assert verdict(UNRELATED).similarity == 0 and verdict(10 * UNRELATED).word == "unrelated"
    assert verdict(INDISTINGUISHABLE * 1.01).similarity == 99  # 100 is the noise floor's alone
    scores = [verdict(d).similarity for d in (0.1, 0.2, 0.4, 0.8, 1.6)]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)
    # Linear in log distance: the geometric middle of the anchors scores 50.
    assert verdict(math.sqrt(INDISTINGUISHABLE * UNRELATED)).similarity == 50
    words = [w for _, w in WORDS]
    seen = [verdict(d).word for d in (0.09, 0.2, 0.4, 0.8, 1.5, 2.0)]
    assert seen == sorted(seen, key=words.index)


def test_text_and_dict():
    v = verdict(0.3)
    assert v.text == f"similarity {v.similarity}/100 ({v.word}), distance 0.300"
    assert v.as_dict() == {"distance": 0.3, "similarity": v.similarity, "verdict": v.word}
    assert Verdict.from_dict(v.as_dict()) == v


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_bad_distances_are_refused(bad):
    with pytest.raises(ValueError, match="finite number"):
        verdict(bad)


def test_real_renders_sit_where_the_words_say(renderer):
    """Two fresh renders of one preset read as the same sound; a saw against a filtered sine does not."""
    saw = Preset.init()
    a = renderer.render(saw, 60, 0.5, 1.0, fresh=True)
    b = renderer.render(saw, 60, 0.5, 1.0, fresh=True)
    assert verdict(match_distance(a, b, renderer.sample_rate)).similarity >= 90
    dull = saw.with_values(osc_1_wave_frame=0, filter_1_on=1, filter_1_cutoff=30, osc_1_transpose=24)
    c = renderer.render(dull, 60, 0.5, 1.0, fresh=True)
    assert verdict(match_distance(a, c, renderer.sample_rate)).similarity < 45
