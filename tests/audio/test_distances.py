"""Spectral distances and the log-mel front end."""

from __future__ import annotations

import numpy as np
import pytest

from synthmatch.audio.distances import MultiScaleLogMel, log_mel_l1, multiscale_log_mel_l1
from synthmatch.audio.features import MelSettings, log_mel, mel_filterbank


def _tone(f0: float, sr: int = 44100, dur: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * dur)) / sr
    return (amp * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


def test_identical_audio_scores_zero():
    x = _tone(220) + 0.01 * np.random.default_rng(0).standard_normal(44100).astype(np.float32)
    assert log_mel_l1(x, x) == 0.0
    assert multiscale_log_mel_l1(x, x, 44100) == 0.0


def test_distance_grows_with_difference():
    a = _tone(220)
    assert log_mel_l1(a, _tone(233)) < log_mel_l1(a, _tone(440)) or log_mel_l1(a, _tone(440)) > 0.5
    assert multiscale_log_mel_l1(a, _tone(220, amp=0.45), 44100) < multiscale_log_mel_l1(a, _tone(880), 44100)


def test_log_mel_shapes_and_batch():
    s = MelSettings()
    x = _tone(440, dur=2.0)
    m = log_mel(x, s)
    assert m.shape == (128, s.n_frames(len(x)))
    batch = log_mel(np.stack([x, x * 0.5]), s)
    assert batch.shape == (2, 128, m.shape[1])
    np.testing.assert_allclose(batch[0], m, atol=1e-5)


def test_filterbank_rows_sum_to_one():
    fb = mel_filterbank(MelSettings(n_fft=512, n_mels=64))
    np.testing.assert_allclose(fb.sum(1), 1.0, rtol=1e-5)


def test_target_object_matches_function():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 30000)).astype(np.float32) * 0.1
    assert MultiScaleLogMel(b, 44100)(a) == pytest.approx(multiscale_log_mel_l1(a, b, 44100))


def test_mel_settings_validation():
    with pytest.raises(ValueError, match="power of two"):
        MelSettings(n_fft=1000)


def test_one_sound_on_cpu_matches_the_batched_dense_product():
    """A single CPU sound takes the sparse filterbank; a batch the dense one: the same spectra."""
    rng = np.random.default_rng(3)
    x = (0.1 * rng.standard_normal(44100)).astype(np.float32)
    for s in (MelSettings(n_fft=512, hop_length=128, n_mels=64), MelSettings()):
        one = log_mel(x, s)
        batch = log_mel(x[None, :], s)[0]
        np.testing.assert_allclose(one, batch, atol=1e-4)


def test_objective_threads_limits_torch_and_restores_it():
    import os

    import torch

    from synthmatch.inference.scoring import objective_threads

    before = torch.get_num_threads()
    with objective_threads(os.cpu_count() or 1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_keep_freed_memory_sets_the_allocator_on_glibc():
    import platform

    from synthmatch.malloc import keep_freed_memory

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # once per process, then a no-op
