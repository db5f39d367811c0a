"""A PNG comparing a target and its match: log-mel spectrograms (stacked or side by side), same scale.

Uses the project's one log-mel (`audio.features.log_mel`) on loudness-normalised audio, the way the
refinement objective sees the two sounds. Drawn on a bare matplotlib Figure (Agg, no pyplot) into memory, so the
caller writes the bytes atomically with everything else.
"""

from __future__ import annotations

import io

import numpy as np

from synthmatch.audio.features import MelSettings, log_mel, normalize_loudness

__all__ = ["comparison_png"]


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
    """PNG bytes: the two sounds' log-mel spectrograms (128 bands, 2048/512) on one colour scale.

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
        fig = Figure(figsize=(9, 6), dpi=100)
        axes = fig.subplots(2, 1, sharex=True)
    extent = (0.0, n / sample_rate, 0, settings.n_mels)
    image = None
    for i, (ax, spec, label) in enumerate(zip(axes, specs, (target_label, match_label))):
        image = ax.imshow(
            spec, origin="lower", aspect="auto", extent=extent, vmin=vmin, vmax=vmax, cmap="magma"
        )
        if i == 0 or not side_by_side:
            ax.set_ylabel("mel band")
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
