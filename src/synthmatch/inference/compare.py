"""A PNG comparing a target and its match: log-mel spectrograms (stacked or side by side), same scale.

Uses the project's one log-mel (`audio.features.log_mel`) on loudness-normalised audio, the way the
refinement objective sees the two sounds. Drawn on a bare matplotlib Figure (Agg, no pyplot) into memory, so the
caller writes the bytes atomically with everything else.

The axes are in units a musician reads: time in seconds, frequency in Hz on the left (ticks at 100, 500,
1k, 2k, 5k..., each placed where its frequency falls among the mel band centres: `frequency_ticks`) and the
C of every octave on the right (C4 = MIDI 60: `note_ticks`), instead of mel band numbers.
"""

from __future__ import annotations

import io

import numpy as np

from synthmatch.audio.features import MelSettings, hz_to_mel, log_mel, normalize_loudness
from synthmatch.audio.pitch import midi_to_hz

__all__ = ["comparison_png", "frequency_ticks", "note_ticks"]

_HZ_TICKS = (50, 100, 500, 1000, 2000, 5000, 10000, 20000)  # 200 would crowd 100: mel is linear below 1k


def _band_position(f_hz: float, settings: MelSettings) -> float:
    """Where `f_hz` sits on the spectrogram's vertical axis, in image units: band i spans [i, i + 1] and
    its centre frequency (`mel_filterbank`'s i + 1-th of n_mels + 2 points evenly spaced in mel) is i + 0.5."""
    f_max = settings.f_max or settings.sample_rate / 2
    lo, hi = float(hz_to_mel(settings.f_min)), float(hz_to_mel(f_max))
    step = (hi - lo) / (settings.n_mels + 1)
    return (float(hz_to_mel(f_hz)) - lo) / step - 0.5


def _in_range(ticks: list[tuple[float, str]], settings: MelSettings) -> tuple[list[float], list[str]]:
    """The ticks between the first and last band centres, the lowest dropped where they would crowd
    (closer than a twentieth of the axis: the mel scale squeezes the low octaves)."""
    top = settings.n_mels - 0.5  # the last band's centre
    gap = settings.n_mels / 20
    kept: list[tuple[float, str]] = []
    for y, label in sorted(ticks, reverse=True):
        if 0.5 <= y <= top and (not kept or kept[-1][0] - y >= gap):
            kept.append((y, label))
    kept.reverse()
    return [y for y, _ in kept], [label for _, label in kept]


def frequency_ticks(settings: MelSettings) -> tuple[list[float], list[str]]:
    """(positions, labels) of Hz ticks (50, 100, 500, 1k, 2k, 5k...) on a log-mel image of `settings`
    drawn with extent (0, n_mels) vertically, lowest first."""
    ticks = [(_band_position(f, settings), f"{f // 1000}k" if f >= 1000 else str(f)) for f in _HZ_TICKS]
    return _in_range(ticks, settings)


def note_ticks(settings: MelSettings) -> tuple[list[float], list[str]]:
    """(positions, labels) of the C of every octave (C1 ... C9; C4 = MIDI 60) on the same image, lowest
    first (the low octaves, squeezed together, only where they have room)."""
    ticks = [
        (_band_position(midi_to_hz(12 * (octave + 1)), settings), f"C{octave}") for octave in range(1, 10)
    ]
    return _in_range(ticks, settings)


def comparison_png(
    target: np.ndarray,
    match: np.ndarray,
    sample_rate: int,
    *,
    title: str = "",
    target_label: str = "target",
    match_label: str = "match",
    side_by_side: bool = False,
) -> bytes:
    """PNG bytes: the two sounds' log-mel spectrograms (128 bands, 2048/512) on one colour scale, time in
    seconds, frequency in Hz (left) and notes (right).

    Args:
        target: (N,) mono target.
        match: (M,) mono match (or (2, M) stereo, mixed to mono).
        sample_rate: their sample rate.
        title: figure title (e.g. the file name and the distance).
        side_by_side: target left, match right (a wide figure, e.g. for a web page); default one above
            the other.
    """
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    t = np.asarray(target, np.float32).reshape(-1)
    m = np.asarray(match, np.float32)
    m = m.mean(axis=0) if m.ndim == 2 else m.reshape(-1)
    n = max(len(t), len(m))
    t, m = np.pad(t, (0, n - len(t))), np.pad(m, (0, n - len(m)))
    settings = MelSettings(sample_rate=int(sample_rate), n_fft=2048, hop_length=512, n_mels=128)
    specs = [log_mel(normalize_loudness(x), settings) for x in (t, m)]  # (n_mels, T) each
    vmax = max(float(s.max()) for s in specs)
    vmin = vmax - 12.0  # natural log: about 100 dB of range
    if side_by_side:
        fig = Figure(figsize=(13, 4.5), dpi=100, layout="constrained")
        axes = fig.subplots(1, 2, sharey=True)
    else:
        fig = Figure(figsize=(9, 6), dpi=100, layout="constrained")
        axes = fig.subplots(2, 1, sharex=True)
    extent = (0.0, n / sample_rate, 0, settings.n_mels)
    hz_at, hz_labels = frequency_ticks(settings)
    note_at, note_labels = note_ticks(settings)
    image = None
    for i, (ax, spec, label) in enumerate(zip(axes, specs, (target_label, match_label))):
        image = ax.imshow(
            spec, origin="lower", aspect="auto", extent=extent, vmin=vmin, vmax=vmax, cmap="magma"
        )
        ax.set_yticks(hz_at, hz_labels)
        if i == 0 or not side_by_side:
            ax.set_ylabel("frequency (Hz)")
        if i == 1 or not side_by_side:  # the notes beside the colour bar's side of each row
            notes = ax.secondary_yaxis("right")
            notes.set_yticks(note_at, note_labels)
            notes.tick_params(labelsize=8)
        if i == 1 or side_by_side:
            ax.set_xlabel("time (s)")
        ax.set_title(label, fontsize=10, loc="left")
    if title:
        fig.suptitle(title, fontsize=11)
    assert image is not None  # there are always two axes
    fig.colorbar(image, ax=list(axes), label="log mel magnitude")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
