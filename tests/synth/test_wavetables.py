"""Wavetables built in code: additive frames, tables of frames, and the check that keeps malformed ones
away from vita."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from synthmatch.synth.presets import Preset, PresetError
from synthmatch.synth.wavetables import (
    WAVE_SIZE,
    decode_wave,
    frame_positions,
    frames_wavetable,
    harmonic_frame,
    is_made_from_sound,
)


def _harmonics(wave: np.ndarray, n: int) -> np.ndarray:
    return np.abs(np.fft.rfft(wave))[1 : n + 1]


def test_a_harmonic_frame_is_one_band_limited_normalised_cycle():
    k = np.arange(1, 65)
    saw = harmonic_frame(1 / k)
    assert saw.shape == (WAVE_SIZE,) and saw.dtype == np.float32
    assert np.max(np.abs(saw)) == pytest.approx(1.0) and np.all(np.isfinite(saw))
    spectrum = np.abs(np.fft.rfft(saw))
    np.testing.assert_allclose(spectrum[1:65] / spectrum[1], 1 / k, rtol=1e-4)
    assert spectrum[65:].max() < 1e-5 * spectrum[1]  # nothing above the harmonics given
    square = harmonic_frame((k % 2) / k, phases=np.zeros(64))
    assert _harmonics(square, 4)[1] < 1e-5 * _harmonics(square, 4)[0]
    # NaN, infinite and negative amplitudes count as 0; all zero gives silence, not NaN
    assert np.array_equal(harmonic_frame([1.0, np.nan, np.inf, -1.0]), harmonic_frame([1.0]))
    assert not np.any(harmonic_frame(np.zeros(8)))
    with pytest.raises(ValueError, match="at most"):
        harmonic_frame(np.ones(WAVE_SIZE))
    with pytest.raises(ValueError, match="phases"):
        harmonic_frame(np.ones(4), phases=np.zeros(3))


def test_frames_spread_over_the_positions_and_keep_vitals_layout():
    assert frame_positions(1) == [0] and frame_positions(3) == [0, 128, 256]
    frames = [harmonic_frame(np.ones(k)) for k in (1, 2, 3, 4)]
    table = frames_wavetable("Made from x.wav", frames)
    keys = table["groups"][0]["components"][0]["keyframes"]
    assert [f["position"] for f in keys] == frame_positions(4)
    np.testing.assert_array_equal(decode_wave(keys[2]["wave_data"]), frames[2])
    assert is_made_from_sound(table) and not is_made_from_sound(frames_wavetable("Other", frames))
    with pytest.raises(ValueError, match="distinct"):
        frames_wavetable("t", frames[:2], [5, 5])
    with pytest.raises(ValueError, match="2048 samples"):
        frames_wavetable("t", [np.zeros(1024)])
    with pytest.raises(ValueError, match="finite"):
        frames_wavetable("t", [np.full(WAVE_SIZE, np.nan)])


def _table_with(wave_data: str) -> dict:
    table = frames_wavetable("Made from x.wav", [harmonic_frame([1.0])])
    table["groups"][0]["components"][0]["keyframes"][0]["wave_data"] = wave_data
    return table


@pytest.mark.parametrize(
    "samples, says",
    [
        (np.zeros(1024, "<f4"), "holds 1024 samples, Vital needs exactly 2048"),
        (np.full(WAVE_SIZE, np.nan, "<f4"), "NaN or infinite"),
        (np.concatenate([np.zeros(WAVE_SIZE - 1), [np.inf]]).astype("<f4"), "NaN or infinite"),
    ],
)
def test_a_malformed_table_never_reaches_vita(samples, says, tmp_path):
    bad = _table_with(base64.b64encode(samples.tobytes()).decode())
    init = Preset.init()
    tables = [bad, *init.data.get("wavetables")[1:]]
    with pytest.raises(PresetError, match=says):
        init.with_data(wavetables=tables)
    # the same table in a file: refused when read, before any Synth sees it
    doc = json.loads(init.to_vital_json())
    doc["settings"]["wavetables"] = tables
    path = tmp_path / "bad.vital"
    path.write_text(json.dumps(doc))
    with pytest.raises(PresetError, match=f"bad.vital: .*{says}"):
        Preset.load(path)
