"""Make the example target sounds in this folder (run from the repository root).

    python examples/make_examples.py

Three are rendered by Vital from presets built here (so a perfect match exists); three are synthesised
with NumPy by methods Vital does not use (a plucked string, an FM bell, a noise snare), the kind of
"real instrument" target a producer drops in. All are mono 44.1 kHz 16-bit WAV, 1.5-2 s long.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthmatch.audio.io import write_wav
from synthmatch.synth.presets import Preset
from synthmatch.synth.render import Renderer

SR = 44100
HERE = Path(__file__).resolve().parent


def vital_examples() -> dict[str, tuple[Preset, int, float, float]]:
    """name -> (preset, MIDI note, note seconds, render seconds)."""
    init = Preset.init()
    pluck = init.with_values(
        env_1_attack=0.05,
        env_1_decay=0.75,
        env_1_sustain=0.0,
        env_1_release=0.6,
        filter_1_on=1,
        filter_1_cutoff=88,
        filter_1_resonance=0.35,
        osc_1_destination=0,
        osc_1_level=0.8,
    )
    bass = init.with_values(
        osc_1_transpose=-12,
        osc_1_level=0.8,
        osc_2_on=1,
        osc_2_level=0.6,
        osc_2_tune=0.08,
        osc_2_destination=0,
        filter_1_on=1,
        filter_1_cutoff=70,
        filter_1_model=2,
        filter_1_resonance=0.2,
        env_1_attack=0.1,
        env_1_decay=0.9,
        env_1_sustain=0.6,
        env_1_release=0.3,
    )
    pad = init.with_values(
        osc_1_unison_voices=7,
        osc_1_unison_detune=3.0,
        osc_1_level=0.7,
        osc_1_destination=0,
        filter_1_on=1,
        filter_1_cutoff=80,
        env_1_attack=0.85,
        env_1_sustain=0.9,
        env_1_release=0.9,
        reverb_on=1,
        reverb_dry_wet=0.3,
        chorus_on=1,
        chorus_dry_wet=0.4,
    )
    return {
        "vital_pluck_C4": (pluck.with_meta(preset_name="example pluck"), 60, 0.3, 1.5),
        "vital_bass_E2": (bass.with_meta(preset_name="example bass"), 40, 1.0, 1.5),
        "vital_pad_A3": (pad.with_meta(preset_name="example pad"), 57, 1.4, 2.0),
    }


def karplus_strong(f0_hz: float, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    n = int(SR * duration_s)
    period = int(round(SR / f0_hz))
    buf = rng.uniform(-1, 1, period)
    out = np.empty(n, np.float64)
    for i in range(n):
        out[i] = buf[i % period]
        buf[i % period] = 0.996 * 0.5 * (buf[i % period] + buf[(i + 1) % period])
    return out


def fm_bell(f0_hz: float, duration_s: float) -> np.ndarray:
    t = np.arange(int(SR * duration_s)) / SR
    index = 4.0 * np.exp(-t * 2.5)
    return np.sin(2 * np.pi * f0_hz * t + index * np.sin(2 * np.pi * 1.4 * f0_hz * t)) * np.exp(-t * 2.2)


def noise_snare(duration_s: float, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import butter, lfilter

    t = np.arange(int(SR * duration_s)) / SR
    noise = lfilter(*butter(2, [800 / (SR / 2), 9000 / (SR / 2)], "band"), rng.standard_normal(len(t)))
    body = np.sin(2 * np.pi * 185 * t) * np.exp(-t * 30)
    return 0.8 * noise * np.exp(-t * 14) + 0.6 * body


def normalise(x: np.ndarray, peak: float = 0.7) -> np.ndarray:
    return (x / max(1e-9, float(np.max(np.abs(x)))) * peak).astype(np.float32)


def main() -> None:
    rng = np.random.default_rng(20261124)
    with Renderer(sample_rate=SR, n_threads=1) as r:
        for name, (preset, note, note_s, dur_s) in vital_examples().items():
            write_wav(HERE / f"{name}.wav", normalise(r.render(preset, note, note_s, dur_s)), SR)
            print("wrote", name)
    write_wav(HERE / "string_pluck_G3.wav", normalise(karplus_strong(196.0, 1.5, rng)), SR)
    write_wav(HERE / "fm_bell_A4.wav", normalise(fm_bell(440.0, 2.0)), SR)
    write_wav(HERE / "noise_snare.wav", normalise(noise_snare(0.8, rng)), SR)
    print("wrote string_pluck_G3, fm_bell_A4, noise_snare")


if __name__ == "__main__":
    main()
