"""How audio is stored: float audio to and from the file's int16 (full scale 32767) or float16."""

from __future__ import annotations

import numpy as np


def audio_to_storage(audio: np.ndarray, dtype: str) -> np.ndarray:
    """Float audio -> the stored dtype (int16 full scale 32767, or float16). Stored audio passes through."""
    if isinstance(audio, np.ndarray) and audio.dtype == np.dtype(dtype):
        return audio
    a = np.nan_to_num(np.asarray(audio, np.float32))
    if dtype == "int16":
        return np.round(np.clip(a, -1.0, 1.0) * 32767).astype(np.int16)
    return np.clip(a, -65504, 65504).astype(np.float16)


def audio_from_storage(stored: np.ndarray) -> np.ndarray:
    if stored.dtype == np.int16:
        return stored.astype(np.float32) / 32767.0
    return stored.astype(np.float32)
