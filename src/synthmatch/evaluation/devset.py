"""Target sets the project can rebuild anywhere: real-instrument one-shots, synth patches, held-out presets.

    synthmatch devset -o data/devset                  # soundfont instruments + synth patches
    synthmatch devset -o data/in_domain --kind in_domain -n 30
    synthmatch devset -o data/community --kind community
    synthmatch eval --test-sets audio --audio-dir data/devset ...

Every set is a folder of WAV files in one format, the format a producer's one-shot comes in: 4 s long,
the key held for the first 1.5 s, mono, 44.1 kHz, peak-normalised, plus `manifest.json` with what is
known of each file (its MIDI note when pitched, the key-held time, where it came from). `read_manifest`
reads it back; evaluation and benchmarks use the known note and key-held time to score, and
`synthmatch infer` reads the files like any user's.

Kinds:
- `soundfont`: real instrument notes of several General MIDI families (keys, mallets, organ, plucked,
  bass, bowed, brass, reed, pipe, synth lead and pad, percussion), rendered by fluidsynth from Debian's
  `timgm6mb-soundfont` and `musescore-general-soundfont-small` (reverb and chorus off). Needs
  `apt-get install fluidsynth timgm6mb-soundfont musescore-general-soundfont-small`; without them it
  says so with that command. Each instrument comes from one of the two soundfonts, alternating (`--both`
  takes every instrument from each).
- `synth`: small synth patches made here with NumPy, not with Vital (a decaying sine, a low-passed square,
  a detuned-saw pad, a formant vowel, a Karplus-Strong pluck, an FM bell, a kick with a pitch drop...).
- `in_domain`: held-out presets of the dataset sampler (seed `testsets.EVAL_SEED`, never used for
  training), rendered by Vital; audible ones only. The manifest's note is the one each sounds at
  (estimated: a preset's transposes move it off the note it was played at), None when unpitched.
- `community`: the community presets `presets/community/split.json` reserves for evaluation (never used
  for training or breeding), each rendered from its original file (its own wavetables, routing and
  effects) at MIDI note 60 by Vital; the manifest's note is estimated as for `in_domain`.

Writing is resumable and atomic: each WAV is written whole or not at all, files already there (same name
and settings) are kept, and the manifest is written last. A file that cannot be made (an instrument
missing from a soundfont, a failed render) is left out with a warning; the rest of the set is written.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import cast

import numpy as np

from synthmatch.atomic import atomic_write_text
from synthmatch.defaults import DEFAULT_SAMPLE_RATE
from synthmatch.errors import ConfigError, SynthmatchError
from synthmatch.evaluation.manifest import DURATION_S, MANIFEST, NOTE_DURATION_S, DevItem, read_manifest

log = logging.getLogger(__name__)

__all__ = [
    "DEVSET_KINDS",
    "SOUNDFONTS",
    "INSTRUMENTS",
    "DevItem",
    "DevsetUnavailable",
    "write_devset",
    "read_manifest",
    "MANIFEST",
    "INSTALL_COMMAND",
]

DEVSET_KINDS = ("soundfont", "synth", "in_domain", "community")
SAMPLE_RATE = DEFAULT_SAMPLE_RATE
PEAK = 0.999
INSTALL_COMMAND = "apt-get install fluidsynth timgm6mb-soundfont musescore-general-soundfont-small"
# (name, file) of the soundfonts, Debian's paths
SOUNDFONTS = (
    ("timgm6mb", "/usr/share/sounds/sf2/TimGM6mb.sf2"),
    ("musescore", "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3"),
)
_DRUMS = -1  # "program" of the General MIDI drum kit (channel 10)

# (name, family, General MIDI program (0-based) or _DRUMS, MIDI note, pitched)
INSTRUMENTS: tuple[tuple[str, str, int, int, bool], ...] = (
    ("piano", "keys", 0, 60, True),
    ("electric_piano", "keys", 4, 64, True),
    ("harpsichord", "keys", 6, 55, True),
    ("vibraphone", "mallets", 11, 65, True),
    ("marimba", "mallets", 12, 60, True),
    ("xylophone", "mallets", 13, 79, True),
    ("tubular_bells", "mallets", 14, 72, True),
    ("drawbar_organ", "organ", 16, 60, True),
    ("church_organ", "organ", 19, 55, True),
    ("nylon_guitar", "plucked", 24, 52, True),
    ("steel_guitar", "plucked", 25, 57, True),
    ("harp", "plucked", 46, 60, True),
    ("pizzicato", "plucked", 45, 55, True),
    ("acoustic_bass", "bass", 32, 40, True),
    ("finger_bass", "bass", 33, 43, True),
    ("synth_bass", "bass", 38, 36, True),
    ("violin", "bowed", 40, 69, True),
    ("cello", "bowed", 42, 48, True),
    ("strings", "bowed", 48, 62, True),
    ("trumpet", "brass", 56, 70, True),
    ("trombone", "brass", 57, 53, True),
    ("french_horn", "brass", 60, 53, True),
    ("brass_section", "brass", 61, 60, True),
    ("alto_sax", "reed", 65, 62, True),
    ("oboe", "reed", 68, 69, True),
    ("clarinet", "reed", 71, 62, True),
    ("flute", "pipe", 73, 67, True),
    ("pan_flute", "pipe", 75, 72, True),
    ("square_lead", "synth_lead", 80, 60, True),
    ("saw_lead", "synth_lead", 81, 57, True),
    ("warm_pad", "synth_pad", 89, 57, True),
    ("sweep_pad", "synth_pad", 95, 60, True),
    ("timpani", "percussion", 47, 50, True),
    ("steel_drums", "percussion", 114, 72, True),
    ("kick", "percussion", _DRUMS, 36, False),
    ("snare", "percussion", _DRUMS, 38, False),
    ("closed_hat", "percussion", _DRUMS, 42, False),
)


class DevsetUnavailable(SynthmatchError, RuntimeError):
    """A kind of target set this machine cannot make (fluidsynth or the soundfonts are missing)."""


# ---------------------------------------------------------------------------------------------------
# soundfonts
def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def note_midi_file(program: int, note: int, note_s: float, total_s: float, velocity: int = 100) -> bytes:
    """A type-0 Standard MIDI File: one note held `note_s`, the track ending at `total_s` (120 BPM)."""
    ticks_per_beat, beat_s = 480, 0.5
    on_ticks = int(round(note_s / beat_s * ticks_per_beat))
    end_ticks = int(round(total_s / beat_s * ticks_per_beat))
    channel = 9 if program == _DRUMS else 0
    events = b"\x00\xff\x51\x03" + (500000).to_bytes(3, "big")  # tempo: 0.5 s per beat
    if program != _DRUMS:
        events += b"\x00" + bytes([0xC0 | channel, program])
    events += b"\x00" + bytes([0x90 | channel, note, velocity])
    events += _vlq(on_ticks) + bytes([0x80 | channel, note, 64])
    events += _vlq(max(0, end_ticks - on_ticks)) + b"\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_beat)
    return header + b"MTrk" + struct.pack(">I", len(events)) + events


def _fluidsynth_render(soundfont: str, program: int, note: int, workdir: Path) -> np.ndarray:
    midi = workdir / "note.mid"
    wav = workdir / "note.wav"
    midi.write_bytes(note_midi_file(program, note, NOTE_DURATION_S, DURATION_S))
    cmd = [
        "fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(SAMPLE_RATE),
        "-T", "wav", "-F", str(wav), soundfont, str(midi),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 or not wav.is_file():
        raise SynthmatchError(f"fluidsynth failed ({proc.returncode}): {proc.stderr.strip()[:200]}")
    import soundfile as sf

    audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise SynthmatchError(f"fluidsynth wrote {sr} Hz, asked for {SAMPLE_RATE}")
    return audio.mean(axis=1)


def _check_soundfont_tools() -> None:
    missing = [] if shutil.which("fluidsynth") else ["fluidsynth"]
    missing += [path for _, path in SOUNDFONTS if not Path(path).is_file()]
    if missing:
        raise DevsetUnavailable(
            f"the soundfont set needs {', '.join(missing)}: install them with `{INSTALL_COMMAND}`"
        )


# ---------------------------------------------------------------------------------------------------
# synth patches (NumPy, not Vital)
def _hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _adsr(n: int, sr: int, a: float, d: float, s: float, r: float, note_s: float) -> np.ndarray:
    t = np.arange(n) / sr
    env = np.where(t < a, t / max(a, 1e-6), s + (1 - s) * np.exp(-(t - a) / max(d, 1e-6)))
    held = env[min(n - 1, int(note_s * sr))]
    after = t >= note_s
    env[after] = held * np.exp(-(t[after] - note_s) / max(r, 1e-6))
    return env


def _saw(phase: np.ndarray, f0: float, sr: int) -> np.ndarray:
    out = np.zeros_like(phase)
    for k in range(1, int(sr / 2 / f0)):
        out += np.sin(k * phase) / k
    return out


def _lowpass(x: np.ndarray, cutoff_hz: np.ndarray | float, sr: int, q: float = 0.7) -> np.ndarray:
    """A time-varying state-variable low-pass (per-sample cutoff)."""
    fc = np.broadcast_to(np.asarray(cutoff_hz, np.float64), x.shape)
    f = 2 * np.sin(np.pi * np.minimum(fc, sr / 6) / sr)
    low = band = 0.0
    out = np.empty_like(x)
    damp = 1.0 / q
    for i in range(len(x)):
        high = x[i] - low - damp * band
        band += f[i] * high
        low += f[i] * band
        out[i] = low
    return out


def _mix(parts: Iterable[np.ndarray]) -> np.ndarray:
    """`sum(parts)` (0 + p0 + p1 + ...), typed as the array it is: every mix here has parts."""
    return cast(np.ndarray, sum(parts))


def _synth_patch(name: str, sr: int = SAMPLE_RATE) -> tuple[np.ndarray, str, int | None]:
    """(audio, family, MIDI note or None) of one NumPy patch."""
    n = int(DURATION_S * sr)
    t = np.arange(n) / sr
    ns = NOTE_DURATION_S
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if name == "decaying_sine":
        midi = 64
        return np.sin(2 * np.pi * _hz(midi) * t) * np.exp(-t / 0.6), "synth_pluck", midi
    if name == "lowpass_square":
        midi, f0 = 45, _hz(45)
        sq = _mix(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, int(sr / 2 / f0), 2))
        return _lowpass(sq, 800.0, sr) * _adsr(n, sr, 0.005, 0.3, 0.8, 0.3, ns), "synth_bass", midi
    if name == "detuned_saw_pad":
        midi, f0 = 48, _hz(48)
        x = _mix(
            _saw(2 * np.pi * f0 * 2 ** (c / 1200) * t + rng.uniform(0, 6.28), f0, sr)
            for c in (-15, -9, -4, 0, 4, 9, 15)
        )
        return _lowpass(x, 3000.0, sr) * _adsr(n, sr, 0.4, 1.0, 0.9, 1.0, ns), "synth_pad", midi
    if name == "formant_vowel":
        midi, f0 = 57, _hz(57)
        src = _saw(2 * np.pi * f0 * t, f0, sr)
        x = _mix(g * _bandpass(src, fc, sr, 8.0) for fc, g in ((700, 1.0), (1220, 0.6), (2600, 0.3)))
        return x * _adsr(n, sr, 0.03, 0.2, 0.9, 0.2, ns), "synth_lead", midi
    if name == "ks_pluck":
        midi, f0 = 50, _hz(50)
        period = int(round(sr / f0))
        buf = rng.uniform(-1, 1, period)
        out = np.empty(n)
        for i in range(n):
            out[i] = buf[i % period]
            buf[i % period] = 0.996 * 0.5 * (buf[i % period] + buf[(i + 1) % period])
        damp = np.where(t < ns, 1.0, np.exp(-(t - ns) / 0.08))
        return out * damp, "synth_pluck", midi
    if name == "fm_bell":
        midi, f0 = 67, _hz(67)
        index = 4.0 * np.exp(-t / 0.8)
        return (
            np.sin(2 * np.pi * f0 * t + index * np.sin(2 * np.pi * 3.5 * f0 * t)) * np.exp(-t / 1.2),
            ("synth_bell"),
            midi,
        )
    if name == "kick_drop":
        f = 50 + 100 * np.exp(-t / 0.04)
        phase = 2 * np.pi * np.cumsum(f) / sr
        return np.sin(phase) * np.exp(-t / 0.35), "synth_drum", None
    if name == "vibrato_lead":
        midi, f0 = 69, _hz(69)
        depth = 0.3 * np.clip((t - 0.3) / 0.4, 0, 1)  # semitones, fading in
        f = f0 * 2 ** (depth * np.sin(2 * np.pi * 5.5 * t) / 12)
        phase = 2 * np.pi * np.cumsum(f) / sr
        return (
            _lowpass(_saw(phase, f0 * 1.03, sr), 4000.0, sr) * _adsr(n, sr, 0.02, 0.3, 0.8, 0.25, ns),
            ("synth_lead"),
            midi,
        )
    if name == "tremolo_organ":
        midi, f0 = 60, _hz(60)
        x = _mix(
            g * np.sin(2 * np.pi * k * f0 * t) for k, g in ((1, 1.0), (2, 0.6), (3, 0.4), (4, 0.3), (8, 0.2))
        )
        trem = 1 - 0.3 * (0.5 + 0.5 * np.sin(2 * np.pi * 6 * t))
        return x * trem * _adsr(n, sr, 0.01, 0.1, 1.0, 0.1, ns), "organ", midi
    if name == "filter_pluck":
        midi, f0 = 55, _hz(55)
        cutoff = 200 + 5000 * np.exp(-t / 0.15)
        return (
            _lowpass(_saw(2 * np.pi * f0 * t, f0, sr), cutoff, sr, q=1.5)
            * _adsr(n, sr, 0.002, 0.5, 0.0, 0.2, ns),
            "synth_pluck",
            midi,
        )
    if name == "acid_bass":
        midi, f0 = 41, _hz(41)
        cutoff = 300 + 2500 * np.exp(-t / 0.25)
        return (
            _lowpass(_saw(2 * np.pi * f0 * t, f0, sr), cutoff, sr, q=4.0)
            * _adsr(n, sr, 0.003, 0.4, 0.6, 0.1, ns),
            "synth_bass",
            midi,
        )
    if name == "noise_hat":
        x = rng.standard_normal(n)
        x = x - _lowpass(x, 6000.0, sr)
        return x * np.exp(-t / 0.06), "synth_drum", None
    raise KeyError(name)


def _bandpass(x: np.ndarray, fc: float, sr: int, q: float) -> np.ndarray:
    from scipy.signal import iirpeak, lfilter

    b, a = iirpeak(fc, q, fs=sr)
    return lfilter(b, a, x)


SYNTH_PATCHES = (
    "decaying_sine", "lowpass_square", "detuned_saw_pad", "formant_vowel", "ks_pluck", "fm_bell",
    "kick_drop", "vibrato_lead", "tremolo_organ", "filter_pluck", "acid_bass", "noise_hat",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# writing
def _normalised(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, np.float64).reshape(-1)
    n = int(DURATION_S * SAMPLE_RATE)
    a = np.pad(a[:n], (0, max(0, n - len(a))))
    peak = float(np.max(np.abs(a)))
    if not np.isfinite(peak) or peak < 1e-4:
        raise SynthmatchError("the render is silent")
    return (a * (PEAK / peak)).astype(np.float32)


def _write_wav(path: Path, audio: np.ndarray) -> None:
    from synthmatch.audio.io import write_wav

    write_wav(path, audio, SAMPLE_RATE)


def _soundfont_jobs(both: bool) -> list[tuple[str, tuple[str, str], tuple[str, str, int, int, bool]]]:
    jobs = []
    for i, inst in enumerate(INSTRUMENTS):
        fonts = SOUNDFONTS if both else (SOUNDFONTS[i % len(SOUNDFONTS)],)
        for font in fonts:
            jobs.append((f"{inst[0]}_{font[0]}.wav", font, inst))
    return jobs


def write_devset(
    output: str | os.PathLike,
    kind: str = "soundfont",
    *,
    n: int = 30,
    both: bool = False,
    tier: int = 2,
    overwrite: bool = False,
    limit: int | None = None,
    progress: bool = False,
) -> list[DevItem]:
    """Write a target set into `output` (a folder) and its manifest; returns the items written.

    Args:
        output: the folder (created).
        kind: "soundfont" (also writes the synth patches beside them: the real-instrument dev set),
            "synth" (only the NumPy patches), "in_domain" (held-out sampler presets rendered by Vital) or
            "community" (the evaluation-only community presets rendered by Vital).
        n: targets of the in_domain kind.
        both: soundfont kind: every instrument from both soundfonts (default: alternating).
        tier: parameter tier of the in_domain presets.
        overwrite: replace files already there (default: keep them, which resumes an interrupted run).
        limit: at most this many files (a quick check).
        progress: show a progress bar.
    Raises:
        DevsetUnavailable: the soundfont kind without fluidsynth or the soundfonts (says how to install).
    """
    from tqdm import tqdm

    if kind not in DEVSET_KINDS:
        raise ConfigError(f"--kind must be one of {', '.join(DEVSET_KINDS)}, got {kind!r}")
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"-o {out}: exists and is not a folder")
    if kind == "soundfont":
        _check_soundfont_tools()
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / MANIFEST
    old = read_manifest(out)
    if old and not overwrite and {i.kind for i in old.values()} - {kind, "synth"}:
        raise ConfigError(f"{out} holds a set of another kind; use another folder or --overwrite")
    items: list[DevItem] = []

    def keep(item: DevItem) -> bool:
        return not overwrite and (out / item.file).is_file() and old.get(item.file) == item

    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}")
    if kind == "in_domain":
        items = _write_in_domain(out, n if limit is None else min(n, limit), tier, keep, progress)
    elif kind == "community":
        items = _write_community(out, tier, limit, keep, progress)
    else:
        jobs: list = []
        if kind == "soundfont":
            jobs += [("soundfont", *job) for job in _soundfont_jobs(both)]
        jobs += [("synth", f"{name}.wav", None, name) for name in SYNTH_PATCHES]
        if limit is not None:
            jobs = jobs[:limit]
        with tempfile.TemporaryDirectory(prefix="synthmatch-devset-") as tmp:
            for job in tqdm(jobs, desc="writing targets", unit="file", disable=not progress):
                if job[0] == "soundfont":
                    _, file, (font_name, font_path), (name, family, program, note, pitched) = job
                    item = DevItem(file, name, "soundfont", family, font_name, note if pitched else None)
                else:
                    _, file, _, name = job
                    item = DevItem(file, name, "synth", "", "numpy", None)
                try:
                    if job[0] == "soundfont":
                        if not keep(item):
                            _write_wav(
                                out / file,
                                _normalised(_fluidsynth_render(font_path, program, note, Path(tmp))),
                            )
                    else:
                        audio, family, midi = _synth_patch(name)
                        item = DevItem(file, name, "synth", family, "numpy", midi)
                        if not keep(item):
                            _write_wav(out / file, _normalised(audio))
                except (SynthmatchError, OSError, subprocess.SubprocessError) as exc:
                    log.warning("%s: left out (%s)", file, exc)
                    continue
                items.append(item)
    doc = {
        "version": 1,
        "kind": kind,
        "sample_rate": SAMPLE_RATE,
        "duration_s": DURATION_S,
        "note_duration_s": NOTE_DURATION_S,
        "items": [asdict(i) for i in items],
    }
    atomic_write_text(manifest, json.dumps(doc, indent=1))
    return items


def _write_in_domain(out: Path, n: int, tier: int, keep, progress: bool) -> list[DevItem]:
    from synthmatch.evaluation.testsets import in_domain_targets

    targets = in_domain_targets(n, tier, duration_s=DURATION_S, note_duration_s=NOTE_DURATION_S)
    return _write_rendered(out, targets, "in_domain", "generated", keep, progress)


def _write_community(out: Path, tier: int, limit: int | None, keep, progress: bool) -> list[DevItem]:
    from synthmatch.evaluation.testsets import community_targets

    targets = community_targets(tier, duration_s=DURATION_S, note_duration_s=NOTE_DURATION_S, limit=limit)
    return _write_rendered(out, targets, "community", "community", keep, progress)


def _write_rendered(out: Path, targets, kind: str, family: str, keep, progress: bool) -> list[DevItem]:
    """Targets rendered by Vital (`testsets.Target`s) written as a set."""
    from tqdm import tqdm

    items = []
    from synthmatch.audio.pitch import estimate_pitch

    for t in tqdm(targets, desc="writing targets", unit="file", disable=not progress):
        # the note it sounds at (a preset's transposes move it off the note it was played at), as a
        # producer would name it; None when it has no clear pitch
        pitch = estimate_pitch(t.audio, t.sample_rate)
        note = pitch.midi_note if pitch.pitched else None
        item = DevItem(f"{t.name}.wav", t.name, kind, family, "vital", note)
        if not keep(item):
            try:
                _write_wav(out / item.file, _normalised(t.audio))
            except SynthmatchError as exc:
                log.warning("%s: left out (%s)", item.file, exc)
                continue
        items.append(item)
    return items
