"""Harmonic analysis: the amplitudes of known additive notes, the harmonicity of notes and noise."""

from __future__ import annotations

import numpy as np
import pytest

from synthmatch.audio.harmonics import analyse_harmonics

SR = 44100


def _additive(f0_hz: float, amplitudes, seconds: float = 0.8, decay: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    k = np.arange(1, len(amplitudes) + 1)
    keep = k * f0_hz < SR / 2
    wave = (np.asarray(amplitudes)[keep, None] * np.sin(2 * np.pi * f0_hz * k[keep, None] * t)).sum(0)
    return (wave * np.exp(-decay * t)).astype(np.float32)


def test_a_saw_and_a_square_measure_their_series():
    k = np.arange(1, 41)
    saw = analyse_harmonics(_additive(220.0, 1 / k), SR, 220.0, n_frames=6, max_harmonics=40)
    square = analyse_harmonics(_additive(220.0, (k % 2) / k), SR, 220.0, n_frames=6, max_harmonics=40)
    assert saw.amplitudes.shape == (6, 40) and saw.times_s.shape == (6,)
    mid = saw.amplitudes[3]
    np.testing.assert_allclose(mid[:10] / mid[0], 1 / k[:10], rtol=0.03)
    odd, even = square.amplitudes[3, ::2], square.amplitudes[3, 1::2]
    assert even.max() < 1e-3 * odd[0] and odd[4] / odd[0] == pytest.approx(1 / 9, rel=0.05)
    assert saw.harmonicity > 0.85 and square.harmonicity > 0.85


def test_noise_has_a_low_harmonicity():
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.3
    assert analyse_harmonics(noise, SR, 220.0).harmonicity < 0.35


def test_harmonics_stop_below_nyquist_and_the_frames_span_the_sounding_part():
    tail = np.zeros(SR // 2, np.float32)  # silence after the note is not analysed
    note = np.concatenate([_additive(2000.0, [1.0, 0.5, 0.3], seconds=0.5), tail])
    a = analyse_harmonics(note, SR, 2000.0, n_frames=8)
    assert a.n_harmonics == 10  # 10 * 2000 Hz < 22050 Hz < 11 * 2000 Hz
    assert a.times_s[-1] <= 0.55 and a.n_frames == 8
    assert np.all(np.isfinite(a.amplitudes)) and np.all(a.amplitudes >= 0)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="f0"):
        analyse_harmonics(np.ones(4096, np.float32), SR, float("nan"))
    with pytest.raises(ValueError, match="finite"):
        analyse_harmonics(np.full(4096, np.nan, np.float32), SR, 220.0)
