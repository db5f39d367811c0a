"""The renderer: shapes, parallel pool equivalence, per-item failures."""

from __future__ import annotations

import numpy as np
import pytest

from synthmatch.audio.distances import log_mel_l1
from synthmatch.synth.presets import Preset, PresetData
from synthmatch.synth.render import Renderer, RenderError
from tests.helpers import community_presets, rms_db, within_noise


def test_mono_and_stereo_shapes(renderer):
    p = Preset.init()
    mono = renderer.render(p, 60, 0.5, 1.0)
    stereo = renderer.render(p, 60, 0.5, 1.0, stereo=True)
    assert mono.shape == (44100,) and mono.dtype == np.float32
    assert stereo.shape == (2, 44100) and stereo.dtype == np.float32
    assert rms_db(mono) > -40


def test_sample_rate_and_note(tmp_path):
    with Renderer(sample_rate=22050, n_threads=1) as r:
        audio = r.render(Preset.init(), 69, 0.5, 1.0)
    assert audio.shape == (22050,)
    spectrum = np.abs(np.fft.rfft(audio[2000:12000] * np.hanning(10000)))
    f0 = np.argmax(spectrum) * 22050 / 10000
    assert f0 == pytest.approx(440, rel=0.02)  # A4 saw: the fundamental is the loudest partial


def test_pool_matches_single_thread_within_noise_floor():
    """Renders from 2 threads sound like renders from 1 thread, up to vita's run-to-run noise."""
    presets = [Preset.load(p) for p in community_presets()[::4]]
    with Renderer(n_threads=1) as single, Renderer(n_threads=2) as pool:
        refs = [[r.audio for r in single.render_batch(presets, 60, 1.0, 2.0)] for _ in range(3)]
        par = [r.audio for r in pool.render_batch(presets, 60, 1.0, 2.0)]
    floor = np.array(
        [
            max(
                log_mel_l1(refs[0][i], refs[1][i]),
                log_mel_l1(refs[0][i], refs[2][i]),
                log_mel_l1(refs[1][i], refs[2][i]),
            )
            for i in range(len(presets))
        ]
    )
    threaded = np.array([log_mel_l1(refs[0][i], par[i]) for i in range(len(presets))])
    different = np.array([log_mel_l1(refs[0][i], refs[0][i + 1]) for i in range(len(presets) - 1)])
    assert np.all(threaded <= 1.5 * floor + 0.1), (threaded, floor)
    assert np.median(threaded) <= 2 * np.median(floor) + 0.05
    assert np.median(threaded) < 0.5 * np.median(different)


def test_batch_preserves_order_and_notes(renderer):
    p = Preset.init()
    results = renderer.render_batch([p, p, p], midi_notes=[48, 60, 72], note_duration_s=0.5, duration_s=0.8)
    f0s = []
    for r in results:
        spec = np.abs(np.fft.rfft(r.audio[1000:21000] * np.hanning(20000)))
        f0s.append(np.argmax(spec) * 44100 / 20000)
    assert f0s[0] == pytest.approx(130.8, rel=0.03)
    assert f0s[1] == pytest.approx(261.6, rel=0.03)
    assert f0s[2] == pytest.approx(523.3, rel=0.03)


def test_per_item_failure_keeps_pool_usable(renderer):
    good = Preset.init()
    settings = good.data.as_settings()
    del settings["sample"]  # vita's load_json refuses a preset without a sample
    bad = Preset(values=dict(good.values), data=PresetData(settings), meta={"preset_name": "broken"})
    results = renderer.render_batch([good, bad, good], 60, 0.3, 0.5)
    assert results[0].ok and results[2].ok
    assert not results[1].ok and "refused" in results[1].error
    with pytest.raises(RenderError, match="broken"):
        renderer.render(bad, 60, 0.3, 0.5)
    assert renderer.render(good, 60, 0.3, 0.5).shape == (22050,)


def test_fast_path_applies_value_changes(renderer):
    """Changing only numeric controls skips load_json; the change must still be heard."""
    loud = Preset.init()
    quiet = loud.with_values(osc_1_level=0.2)
    a = renderer.render(loud, 60, 0.5, 1.0)
    b = renderer.render(quiet, 60, 0.5, 1.0)
    c = renderer.render(loud, 60, 0.5, 1.0)
    assert rms_db(a) - rms_db(b) > 8
    assert abs(rms_db(a) - rms_db(c)) < 0.5


def test_bad_arguments():
    with pytest.raises(ValueError):
        Renderer(sample_rate=0)
    with Renderer(n_threads=1) as r:
        with pytest.raises(ValueError, match="duration"):
            r.render(Preset.init(), 60, 0.5, -1.0)
        with pytest.raises(ValueError, match="MIDI notes"):
            r.render_batch([Preset.init()], midi_notes=[60, 61])


# -- a clean Synth for every render -------------------------------------------------------------------
def _phase0(p: Preset) -> Preset:
    return p.with_values(
        osc_1_random_phase=0, osc_2_random_phase=0, osc_3_random_phase=0, sample_random_phase=0
    )


def _pad() -> Preset:
    """A loud pad with a long release and a reverb: what leaked into the next render."""
    return _phase0(Preset.init()).with_values(
        osc_1_unison_voices=4, env_1_attack=0.6, env_1_release=1.3, reverb_on=1, volume=6500
    )


def _pluck() -> Preset:
    return Preset.init().with_values(
        filter_1_on=1, filter_1_cutoff=72, env_1_sustain=0.0, env_1_decay=0.7, env_1_release=0.3
    )


def test_render_a_then_b_equals_b_on_a_fresh_synth():
    """What one render leaves in a Synth (the previous voice, Vital's glides) is gone before the next one:
    A then B on one Synth equals B on a fresh Synth within B's noise floor (six fresh renders as the user
    hears them); with random phase off, bit for bit."""
    b = _pluck()
    with Renderer(n_threads=1) as r:
        fresh = [r.render(b, 60, 0.5, 1.5, fresh=True) for _ in range(6)]
        for _ in range(3):  # a history: other presets, at other notes
            r.render(_pad(), 48, 1.5, 2.0)
        reused = r.render(b, 60, 0.5, 1.5)
        ok, median, floor = within_noise(reused, fresh)
        assert ok, (median, floor)
        r.render(_pad(), 48, 1.5, 2.0)
        exact = r.render(_phase0(b), 60, 0.5, 1.5)
        assert np.array_equal(exact, r.render(_phase0(b), 60, 0.5, 1.5, fresh=True))
        # without the flush the pad's tail is still sounding when the pluck starts (the bug it fixes)
        r.render(_pad(), 48, 1.5, 2.0)
        leaky = r.render_batch([_phase0(b)], 60, 0.5, 1.5, flush_s=0.0)[0].audio
        head = slice(0, 2205)  # the first 50 ms
        assert np.abs(leaky[head] - exact[head]).max() > 1e-3


def test_fresh_renders_are_bit_exact_with_random_phase_off(renderer):
    p = _phase0(_pluck())
    a, b = (x.audio for x in renderer.render_batch([p, p], 57, 0.5, 1.0, fresh=True))
    assert np.array_equal(a, b) and np.abs(a).max() > 0.01
