"""What the browser shows of an example, computed without a terminal: parameters, envelope, spectrogram."""

from __future__ import annotations

import re

import numpy as np

from synthmatch.synth.display import display_text
from synthmatch.synth.panel import module_title
from synthmatch.synth.params import param_space
from synthmatch.synth.presets import Preset


def parameter_lines(preset: Preset, names: tuple[str, ...], show_all: bool = False) -> list[tuple[str, str]]:
    """The preset's parameters as display lines grouped by module: [(style, text), ...].

    Style is "heading", "value" (differs from Vital's init), "init" (at the init value; only with
    show_all) or "off" (modules switched off: one line naming them, or with show_all each module's
    heading followed by its values as "init").
    """
    ps = param_space()
    init = Preset.init().values
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(ps[n].module, []).append(n)
    groups = dict(sorted(groups.items(), key=lambda kv: _module_order(kv[0])))
    lines: list[tuple[str, str]] = []
    off_modules: list[str] = []
    for module, members in groups.items():
        switch = f"{module}_on"
        off = switch in preset.values and ps[switch].clamp(preset.values[switch]) < 0.5
        shown = []
        for n in members:
            spec = ps[n]
            value = spec.clamp(preset.values.get(n, spec.default))
            at_init = abs(value - spec.clamp(init.get(n, spec.default))) <= 1e-4 * max(spec.span, 1e-9)
            if n == switch or ((at_init or off) and not show_all):
                continue
            shown.append(
                ("init" if at_init or off else "value", f"  {spec.display_name:<30} {display_text(n, value)}")
            )
        if off and show_all:
            lines.append(("off", f"{module_title(module)}: off"))
            lines += [("init", text) for _, text in shown]
        elif off:
            off_modules.append(module_title(module))
        elif shown:
            lines.append(("heading", module_title(module)))
            lines += shown
    if off_modules:
        lines.append(("off", f"Off: {', '.join(off_modules)}"))
    if preset.modulations:
        lines.append(("heading", f"Modulation ({len(preset.modulations)} connections)"))
        for m in preset.modulations:
            dest = ps[m.destination].display_name if m.destination in ps else m.destination
            flags = "".join(f", {f}" for f, on_ in (("bipolar", m.bipolar), ("stereo", m.stereo)) if on_)
            lines.append(("value", f"  {m.source} -> {dest}: amount {m.amount:+.3f}{flags}"))
    return lines


# Vital's layout: sound sources, filters, modulators, global, then the effects (filter_fx among them).
_MODULE_ORDER = ("osc", "sample", "filter", "env", "lfo", "random", "macro_control", "global")


def _module_order(module: str) -> tuple[int, int, str]:
    m = re.match(r"^([a-z_]+?)(?:_(\d+))?$", module)
    stem, number = (m.group(1), int(m.group(2) or 0)) if m else (module, 0)
    rank = _MODULE_ORDER.index(stem) if stem in _MODULE_ORDER else len(_MODULE_ORDER)
    return rank, number, module


def envelope(audio: np.ndarray, width: int = 120) -> list[float]:
    """Peak amplitude in `width` equal slices (what the waveform sparkline draws)."""
    a = np.abs(_mono(audio))
    edges = np.linspace(0, len(a), width + 1).astype(int)
    return [float(a[lo:hi].max()) if hi > lo else 0.0 for lo, hi in zip(edges[:-1], edges[1:])]


def spectrogram(audio: np.ndarray, sample_rate: int, n_bands: int = 16, n_frames: int = 60) -> np.ndarray:
    """A coarse log-frequency spectrogram in dB: (n_bands, n_frames), band 0 lowest."""
    a = _mono(audio).astype(np.float64)
    n_fft = 1024
    if len(a) < n_fft:
        a = np.pad(a, (0, n_fft - len(a)))
    starts = np.linspace(0, len(a) - n_fft, n_frames).astype(int)
    frames = np.stack([a[s : s + n_fft] for s in starts]) * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (n_frames, n_fft/2+1)
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    edges = np.geomspace(40.0, sample_rate / 2, n_bands + 1)
    out = np.empty((n_bands, n_frames))
    for b in range(n_bands):
        sel = (freqs >= edges[b]) & (freqs < edges[b + 1])
        if not sel.any():  # a band narrower than one bin: take the nearest bin
            sel = np.zeros_like(freqs, bool)
            sel[np.argmin(np.abs(freqs - edges[b]))] = True
        out[b] = 10 * np.log10(power[:, sel].mean(axis=1) + 1e-12)
    return out


def _mono(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, np.float32)
    return a.mean(axis=0) if a.ndim == 2 else a
