"""What the web demo does with one uploaded sound, without any Gradio: check it, match it, write the files.

`Demo(DemoConfig)` holds what lives as long as the server: the starting-point maker (the model is loaded
once), one `Renderer`, and a temporary folder with one sub-folder per browser session. `Demo.match` checks
an upload against the demo's bounds (file size, duration), then runs the package's own matching
(`inference.pipeline.match_target`, the function `synthmatch infer` uses) and writes the match's files
with `inference.export.write_match`. Everything a user can get wrong raises `DemoInputError` or another
`SynthmatchError` whose message names the uploaded file (not its temporary path), says what is wrong and
what is accepted; the page shows that message.

What the page shows of a match is what the command line prints: the distance is the pipeline's
`info["match_distance"]` (a fresh render of the exported preset against the target), with its verdict
(`audio.verdict`: "similarity 62/100 (close)"), for the match and for every ranked candidate. (A server
that has rendered before draws other random phases than a new `synthmatch infer` process, docs/VITA.md
"Noise", so the two can differ in the third decimal, within the synth's own noise.) No text the
page shows or the user downloads carries a path of the server's machine (`Demo.public`: the model's path
becomes its name). For listening, every candidate and the target are also written at one shared loudness
(`playback_gains_db`: the same RMS, lowered where a sound's peaks would clip) for the page's A/B player,
each candidate's .vital, WAV and tutorial are zipped for one download (NAME.zip, NAME.2.zip...), and
`Demo.render_note` plays a candidate at another note (a fresh render of its downloaded .vital).

Temporary files: each match writes into `ROOT/<session>/<n>/`. A session's previous results are removed
when it starts a new match (Gradio has copied them into its own cache by then), a session's folder when
its browser tab closes (`end_session`), any session's folder once idle for an hour or beyond the 64 most
recent (`prune_sessions`: API clients start a session per call), and ROOT when the server stops (`close`).
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synthmatch.audio.io import AudioError
from synthmatch.audio.pitch import note_name
from synthmatch.audio.verdict import Verdict, verdict_of
from synthmatch.errors import ConfigError, SynthmatchError
from synthmatch.inference.scoring import shown_loss
from synthmatch.synth.params import TIERS

if TYPE_CHECKING:
    from synthmatch.inference.pipeline import InferConfig

log = logging.getLogger(__name__)

__all__ = [
    "DemoConfig",
    "Demo",
    "DemoResult",
    "DemoCandidate",
    "DemoInputError",
    "parameter_rows",
    "escape_markdown",
    "without_paths",
    "playback_gains_db",
    "verdict_of",
    "stats_markdown",
    "candidates_markdown",
    "PARAMETER_COLUMNS",
    "PLAYBACK_RMS_DB",
]

_MB = 1024 * 1024  # the unit Gradio's upload limit and its message use
PARAMETER_COLUMNS = ["parameter", "value", "Vital's init", "confidence"]
# (fraction done, what is happening): a progress bar's callback
ProgressFn = Callable[[float, str], None]


class DemoInputError(AudioError):
    """An upload the demo does not accept (too large, too long, missing)."""


@dataclass(frozen=True)
class DemoConfig:
    """Settings of `synthmatch demo`.

    Attributes:
        checkpoint: model checkpoint (`-c`); None uses the bundled default model, else Vital's init preset.
        tier: parameter space refined without a model (default 2).
        host: address the server listens on (127.0.0.1: this machine only).
        port: TCP port.
        share: also open a public Gradio share link.
        max_upload_mb: largest accepted upload in megabytes (MiB, as Gradio counts them).
        max_seconds: longest accepted upload in seconds (the first clip of it is matched).
        refine_evals: the evaluation budget slider's starting value.
        max_refine_evals: the slider's maximum.
        refine_timeout_s: refinement time limit per match.
        workers: render threads (default: every core).
        temp_dir: where the per-session folders are made (default: the system's temporary folder).
    """

    checkpoint: Path | None = None
    tier: int | None = None
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    max_upload_mb: float = 20.0
    max_seconds: float = 30.0
    refine_evals: int = 200
    max_refine_evals: int = 1000
    refine_timeout_s: float = 60.0
    workers: int | None = None
    temp_dir: Path | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"--port must be in 1..65535, got {self.port}")
        if not 0 < self.max_upload_mb <= 2048:
            raise ConfigError(f"--max-upload-mb must be in (0, 2048], got {self.max_upload_mb}")
        if not 0 < self.max_seconds <= 600:
            raise ConfigError(f"--max-seconds must be in (0, 600], got {self.max_seconds}")
        if self.max_refine_evals < 2:
            raise ConfigError(f"--max-refine-evals must be >= 2, got {self.max_refine_evals}")
        if not 1 <= self.refine_evals <= self.max_refine_evals:
            raise ConfigError(
                f"--refine-evals must be in 1..{self.max_refine_evals} (--max-refine-evals), "
                f"got {self.refine_evals}"
            )
        if not self.refine_timeout_s > 0:
            raise ConfigError(f"--refine-timeout must be > 0 seconds, got {self.refine_timeout_s}")
        if self.tier is not None and self.tier not in TIERS:
            raise ConfigError(f"--tier must be 1, 2 or 3, got {self.tier}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")


@dataclass(frozen=True)
class DemoCandidate:
    """One ranked candidate of a match as the page offers it (rank 1 is the match itself).

    Attributes:
        rank: 1 for the best, then by distance.
        distance: its `match_distance` to the target (the number the command line prints for it).
        start: where its search started, for people (no machine paths).
        preset_path / audio_path / tutorial_path: its files (NAME.vital or NAME.2.vital...).
        bundle_path: NAME[.rank].zip: its .vital, WAV and tutorial (and the best's PNG).
        playback_path: its render at the match's shared playback loudness (the A/B player's B side).
        playback_gain_db: the gain that loudness took.
    """

    rank: int
    distance: float
    start: str
    preset_path: Path
    audio_path: Path | None
    tutorial_path: Path | None
    bundle_path: Path
    playback_path: Path | None = None
    playback_gain_db: float = 0.0

    @property
    def verdict(self) -> Verdict | None:
        return verdict_of(self.distance)

    @property
    def name(self) -> str:
        """What the page calls it: "match" for the best, "candidate 2"... for the others."""
        return "match" if self.rank == 1 else f"candidate {self.rank}"


@dataclass
class DemoResult:
    """One match, ready for the page."""

    preset_path: Path
    audio_path: Path
    figure_path: Path
    tutorial_path: Path
    tutorial_md: str
    status_md: str
    stats_md: str
    parameters: list[list[str]]
    info: dict = field(default_factory=dict)
    seconds: float = 0.0
    # every candidate, best first; one (the match itself) when the match had a single start
    candidates: list[DemoCandidate] = field(default_factory=list)
    candidates_md: str = ""
    bundle_path: Path | None = None  # the best's NAME.zip
    target_name: str = ""  # the upload's file name
    target_playback_path: Path | None = None  # the target at the shared playback loudness (A side)
    target_playback_gain_db: float = 0.0
    playback_rms_db: float = 0.0  # that loudness, dBFS RMS

    @property
    def verdict(self) -> Verdict | None:
        """The match's similarity and word (None for a distance with no verdict: a silent render)."""
        return verdict_of(self.info.get("match_distance", math.inf))

    @property
    def midi_note(self) -> int:
        return int(self.info.get("midi_note", 60))

    def candidate(self, rank: int = 1) -> DemoCandidate:
        """Candidate `rank` (1: the match); ConfigError for a rank this match does not have."""
        for c in self.candidates:
            if c.rank == int(rank):
                return c
        raise ConfigError(f"this match has no candidate {rank}; it has {len(self.candidates)}")


def _renamed(exc: SynthmatchError, path: Path) -> SynthmatchError:
    """The same error with the upload's temporary path replaced by its file name in the message."""
    message = str(exc).replace(str(path), path.name)
    try:
        return type(exc)(message)
    except TypeError:  # an error class with another constructor: keep the message, not the type
        return SynthmatchError(message)


def _verdict_text(distance: Any) -> str:
    v = verdict_of(distance)
    return v.text if v is not None else f"distance {distance} (no verdict: the match is silent)"


# An absolute POSIX path of at least two parts (not a URL's "//", not "3/24"), or a Windows one: the last
# part is kept.
_POSIX_PATH = re.compile(r"(?<![\w.~:/-])~?/(?:[^\s/\\'\"()<>\[\]|`,;]+/)+([^\s/\\'\"()<>\[\]|`,;]+)")
_WINDOWS_PATH = re.compile(r"(?<![\w])[A-Za-z]:\\(?:[^\s\\'\"()<>|]+\\)+([^\s\\'\"()<>|]+)")


def without_paths(text: str) -> str:
    """`text` with every absolute path of a file or folder replaced by its last part (a web page must not
    show where things live on the server: "model /home/x/model.safetensors" -> "model model.safetensors")."""
    return _WINDOWS_PATH.sub(r"\1", _POSIX_PATH.sub(r"\1", text))


# The A/B player's loudness: every sound at this RMS, or all lower together where one's peaks would clip.
PLAYBACK_RMS_DB = -20.0
PLAYBACK_PEAK = 0.97  # the highest peak a playback file may reach (below full scale: WAV rounding)


def playback_gains_db(sounds: Sequence[np.ndarray]) -> tuple[float, list[float]]:
    """One loudness for all `sounds` and the gain each needs to reach it, without clipping.

    The level is PLAYBACK_RMS_DB dBFS RMS (over every sample of every channel), lowered for all alike
    until the sound with the highest peak-to-RMS ratio peaks at PLAYBACK_PEAK. A silent sound keeps 0 dB.

    Args:
        sounds: (N,) mono or (C, N) audio each.
    Returns:
        (level in dBFS RMS, gain in dB of each sound).
    """
    stats = []
    for x in sounds:
        a = np.nan_to_num(np.asarray(x, np.float64))
        rms = float(np.sqrt(np.mean(np.square(a)))) if a.size else 0.0
        peak = float(np.max(np.abs(a))) if a.size else 0.0
        stats.append((rms, peak))
    level = 10 ** (PLAYBACK_RMS_DB / 20)
    for rms, peak in stats:
        if rms > 1e-9 and peak > 0:
            level = min(level, PLAYBACK_PEAK * rms / peak)
    gains = [20 * math.log10(level / rms) if rms > 1e-9 else 0.0 for rms, _ in stats]
    return 20 * math.log10(level), gains


def _midi_note(value: Any) -> int | None:
    """A MIDI note override from the page: None, "" or a negative number mean "estimate it"."""
    if value is None or value == "":
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = float("nan")
    if x < 0:
        return None
    if not (x.is_integer() and 0 <= x <= 127):
        raise ConfigError(f"the MIDI note must be a whole number in 0..127, got {value!r}")
    return int(x)


# Session folders older than this, or beyond this many, are removed when a new match starts.
SESSION_TTL_S = 3600.0
MAX_SESSIONS = 64


def _session_key(session: str | None) -> str:
    key = re.sub(r"[^A-Za-z0-9_-]", "", session or "")[:64]
    return key or "default"


class Demo:
    """The demo's matching engine: one per server, shared by every browser session."""

    def __init__(self, cfg: DemoConfig):
        from synthmatch.inference.pipeline import InferConfig, Starter
        from synthmatch.synth.render import Renderer

        self.cfg = cfg
        # inputs is required by InferConfig; the demo's inputs arrive one upload at a time
        self.starter = Starter(
            InferConfig(inputs=(Path("."),), checkpoint=cfg.checkpoint, tier=cfg.tier, refine=True)
        )  # refine: so that the retrieval index for the candidates' neighbour starts is loaded
        self.renderer = Renderer(sample_rate=self.starter.sample_rate, n_threads=cfg.workers)
        if cfg.temp_dir is not None:
            Path(cfg.temp_dir).mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="synthmatch-demo-", dir=cfg.temp_dir))
        self._names = self._public_names()
        self._lock = threading.Lock()
        self._counter = 0
        self._closed = False

    def _public_names(self) -> dict[str, str]:
        """What the page says instead of the model's path (longest first): the bundled model by that name,
        a checkpoint by its file name."""
        from synthmatch.inference.predict import default_model_path

        names = {str(self.root): "the demo's folder"}
        model = self.cfg.checkpoint if self.cfg.checkpoint is not None else default_model_path()
        if self.starter.source == "model" and model is not None:
            bundled = self.cfg.checkpoint is None
            for shown in {str(model), str(Path(model).resolve())}:
                names[f"model {shown}"] = (
                    "the bundled default model" if bundled else f"model {Path(model).name}"
                )
                names[shown] = Path(model).name
        return dict(sorted(names.items(), key=lambda kv: -len(kv[0])))

    def public(self, text: str) -> str:
        """`text` as the page may show it: no path of this machine (the model's, the temporary folder's or
        any other absolute path: `without_paths`)."""
        for raw, shown in self._names.items():
            text = text.replace(raw, shown)
        return without_paths(text)

    # -- lifecycle ----------------------------------------------------------------------------------
    @property
    def start_description(self) -> str:
        """Where matches start, for the page (no paths)."""
        return self.public(self.starter.description)

    @property
    def clip_seconds(self) -> float:
        from synthmatch.inference.pipeline import MAX_TARGET_S

        return MAX_TARGET_S

    def session_dir(self, session: str | None) -> Path:
        return self.root / _session_key(session)

    def end_session(self, session: str | None) -> None:
        """Remove a session's files (its browser tab closed)."""
        shutil.rmtree(self.session_dir(session), ignore_errors=True)

    def close(self) -> None:
        """Stop the render threads and remove every temporary file."""
        if not self._closed:
            self._closed = True
            self.renderer.close()
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Demo:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- input checks -------------------------------------------------------------------------------
    def check_upload(self, path: str | os.PathLike | None) -> Path:
        """The upload's path, or DemoInputError when it is missing, too large or too long."""
        import soundfile as sf

        if path is None or str(path) == "":
            raise DemoInputError("no audio yet: upload a sound file or record one, then press Match")
        p = Path(path)
        if not p.is_file():
            raise DemoInputError(f"{p.name}: the upload did not arrive; please upload it again")
        size_mb = p.stat().st_size / _MB
        if size_mb > self.cfg.max_upload_mb:
            raise DemoInputError(
                f"{p.name}: the file is too large ({size_mb:.1f} MB); the demo accepts files up to "
                f"{self.cfg.max_upload_mb:g} MB"
            )
        try:
            info = sf.info(str(p))
            seconds = info.frames / float(info.samplerate) if info.samplerate else 0.0
        except Exception:
            return p  # not readable as audio: load_target says so with the accepted formats
        if seconds > self.cfg.max_seconds:
            raise DemoInputError(
                f"{p.name}: the sound is too long ({seconds:.1f} s); the demo accepts up to "
                f"{self.cfg.max_seconds:g} s. Upload a single note (one-shot); the first "
                f"{self.clip_seconds:g} s are matched"
            )
        return p

    # -- matching -----------------------------------------------------------------------------------
    def prune_sessions(self, keep: str | None = None) -> None:
        """Remove session folders idle for SESSION_TTL_S, and the oldest beyond MAX_SESSIONS: API clients
        (a new session per call) and tabs that never sent a close would otherwise keep their files until
        the server stops."""
        if not self.root.is_dir():
            return
        now = time.time()
        dirs = sorted(
            (d for d in self.root.iterdir() if d.is_dir() and d.name != _session_key(keep)),
            key=lambda d: d.stat().st_mtime,
            reverse=True,
        )
        for i, d in enumerate(dirs):
            if i >= MAX_SESSIONS - 1 or now - d.stat().st_mtime > SESSION_TTL_S:
                shutil.rmtree(d, ignore_errors=True)

    def _new_result_dir(self, session: str | None) -> Path:
        sdir = self.session_dir(session)
        self.prune_sessions(keep=session)
        with self._lock:
            self._counter += 1
            n = self._counter
        if sdir.is_dir():  # earlier results: the page holds Gradio's copies of them
            for old in sdir.iterdir():
                shutil.rmtree(old, ignore_errors=True)
        out = sdir / f"{n:05d}"
        out.mkdir(parents=True)
        return out

    def match(
        self,
        audio_path: str | os.PathLike | None,
        *,
        midi_note: int | None = None,
        refine: bool = False,
        refine_evals: int | None = None,
        session: str | None = None,
        progress: ProgressFn | None = None,
    ) -> DemoResult:
        """Match one uploaded or recorded sound and write its .vital, WAV, PNG and tutorial.

        Args:
            audio_path: the upload (any format libsndfile reads).
            midi_note: pitch override (None or a negative number: estimated).
            refine: run CMA-ES refinement against the real synth.
            refine_evals: the refinement's evaluation budget (default: the config's).
            session: the browser session (its files go in their own folder).
            progress: called with (fraction done, what is happening).
        Raises:
            SynthmatchError: bad input (too large, too long, wrong format, silent, too short) or settings.
        """
        from synthmatch.inference.export import output_paths, write_match
        from synthmatch.inference.pipeline import InferConfig, match_target
        from synthmatch.inference.target import load_target

        if self._closed:
            raise SynthmatchError("the demo is shutting down")
        report = progress or (lambda fraction, text: None)
        t0 = time.perf_counter()
        path = self.check_upload(audio_path)
        midi_note = _midi_note(midi_note)
        evals = int(refine_evals if refine_evals is not None else self.cfg.refine_evals)
        if refine and not 1 <= evals <= self.cfg.max_refine_evals:
            raise ConfigError(f"the evaluation budget must be in 1..{self.cfg.max_refine_evals}, got {evals}")
        try:
            cfg = InferConfig(
                inputs=(path,),
                checkpoint=self.cfg.checkpoint,
                tier=self.cfg.tier,
                midi_note=midi_note,
                refine=bool(refine),
                refine_evals=evals,
                refine_timeout_s=self.cfg.refine_timeout_s,
                render=True,
                tutorial=True,
                sample_rate=self.starter.sample_rate,
            )
            report(0.02, "reading the sound")
            target = load_target(path, self.starter.sample_rate, self.clip_seconds, self.starter.min_samples)
            report(0.08, "estimating the pitch, predicting the start" if refine else "matching")

            def on_refine(state: dict) -> None:
                # of `evals`, the budget asked for (the search's own budget leaves a few for the final check)
                first, best = shown_loss(state["initial_loss"]), shown_loss(state["best_loss"])
                # a failed render's sentinel is no loss to show
                shown = f", loss {first:.3f} -> {best:.3f}" if first is not None and best is not None else ""
                report(
                    0.1 + 0.8 * min(1.0, state["n_evals"] / evals),
                    f"CMA-ES refinement: {state['n_evals']}/{evals} evaluations{shown}",
                )

            files, info = match_target(target, cfg, self.starter, self.renderer, refine_callback=on_refine)
        except SynthmatchError as exc:
            raise _renamed(exc, path) from None
        report(0.92, "drawing the spectrograms")
        files.figure_png = _wide_figure(target, files.audio, info)  # the page is wide: side by side
        report(0.96, "writing the files")
        ranked = [files, *files.alternates]
        for one in ranked:  # what the user downloads carries no path of this machine either
            one.preset = one.preset.with_meta(comments=self.public(str(one.preset.meta.get("comments", ""))))
            if one.tutorial_md is not None:
                one.tutorial_md = self.public(one.tutorial_md)
        out = self._new_result_dir(session)
        written = write_match(files, output_paths(out, path, single=True))
        level_db, gains_db = playback_gains_db(
            [target.audio] + [one.audio if one.audio is not None else np.zeros(0) for one in ranked]
        )
        playback = out / "playback"  # the A/B player's files, at one loudness; not offered for download
        playback.mkdir()
        target_playback = _write_playback(
            playback / "target.wav", target.audio, gains_db[0], target.sample_rate
        )
        listed = info.get("candidates") or [
            {
                "rank": 1,
                "distance": info["match_distance"],
                "start": info.get("match_start") or info.get("start", {}),
            }
        ]
        candidates = []
        for c, one, gain_db in zip(listed, ranked, gains_db[1:]):
            key = "" if c["rank"] == 1 else f".{c['rank']}"
            kinds = [k + key for k in ("preset", "audio", "tutorial", "figure") if k + key in written]
            preset_path = written["preset" + key]
            candidates.append(
                DemoCandidate(
                    rank=int(c["rank"]),
                    distance=float(c["distance"]),
                    start=self.public(str(c["start"].get("description", ""))),
                    preset_path=preset_path,
                    audio_path=written.get("audio" + key),
                    tutorial_path=written.get("tutorial" + key),
                    bundle_path=_zip(preset_path.with_suffix(".zip"), [written[k] for k in kinds]),
                    playback_path=None
                    if one.audio is None
                    else _write_playback(
                        playback / f"match{key}.wav", one.audio, gain_db, target.sample_rate
                    ),
                    playback_gain_db=gain_db,
                )
            )
        seconds = time.perf_counter() - t0
        start = info.get("start", {})
        public_info = {
            **info,
            "start": {**start, "description": self.public(str(start.get("description", "")))},
        }
        return DemoResult(
            preset_path=written["preset"],
            audio_path=written["audio"],
            figure_path=written["figure"],
            tutorial_path=written["tutorial"],
            tutorial_md=files.tutorial_md or "",
            status_md=status_markdown(path.name, public_info, seconds),
            stats_md=stats_markdown(info) + "\n\n" + cli_markdown(path.name, cfg, self.cfg),
            # the model's confidences describe its prediction, not init's values after a fall-back
            parameters=parameter_rows(
                files.preset,
                int(start.get("tier", self.starter.tier)),
                None if info.get("fallback") else start,
            ),
            info=info,
            seconds=seconds,
            candidates=candidates,
            candidates_md=candidates_markdown(candidates),
            bundle_path=candidates[0].bundle_path,
            target_name=path.name,
            target_playback_path=target_playback,
            target_playback_gain_db=gains_db[0],
            playback_rms_db=level_db,
        )

    def render_note(self, result: DemoResult, midi_note: Any, rank: int = 1) -> Path:
        """Candidate `rank` of `result` (1: the match) played at another note: a fresh render of its
        downloaded .vital (a Synth built for the render, as the match's own WAV was made) for the key-held
        time and length the .vital stores (as `synthmatch render` plays it), written beside its files as
        NAME.noteNN.wav.

        Raises:
            SynthmatchError: no note chosen, a note outside 0..127, a rank the match lacks, or the match's
                files are gone (a newer match of the session replaced them).
        """
        from synthmatch.audio.io import write_wav
        from synthmatch.synth.presets import Preset, played_note_for

        midi = _midi_note(midi_note)
        if midi is None:
            raise ConfigError("choose a note to play the match at")
        c = result.candidate(rank)
        if not c.preset_path.is_file():
            raise DemoInputError(
                f"{result.target_name}: this match's files are gone (a newer match replaced them, or it "
                "was idle for an hour); press Match again"
            )
        preset = Preset.load(c.preset_path)
        note, _ = played_note_for(preset, midi_note=midi)  # the key time and length stored in the .vital
        audio = self.renderer.render(
            preset, note.midi_note, note.note_duration_s, note.duration_s, stereo=True, fresh=True
        )  # (2, N)
        out = c.preset_path.with_name(f"{c.preset_path.stem}.note{midi}.wav")
        write_wav(out, audio, self.renderer.sample_rate)
        return out


# ---------------------------------------------------------------------------------------------------
# what the page shows
_MD_SPECIAL = "\\`*_{}[]<>#|"


def escape_markdown(text: str) -> str:
    """Plain text for a Markdown box (file names with underscores or asterisks stay as they are)."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in text)


def _write_playback(path: Path, audio: np.ndarray, gain_db: float, sample_rate: int) -> Path:
    from synthmatch.audio.io import wav_bytes

    path.write_bytes(wav_bytes(np.asarray(audio, np.float32) * np.float32(10 ** (gain_db / 20)), sample_rate))
    return path


def _zip(path: Path, members: Sequence[Path]) -> Path:
    """A zip of `members` (by their file names) at `path`."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for m in members:
            z.write(m, arcname=m.name)
    return path


def _wide_figure(target, audio, info: dict) -> bytes:
    from synthmatch.inference.compare import comparison_png

    # where the written match began ("init" after a fall-back), not where matching was asked to start
    start = (info.get("match_start") or info.get("start") or {}).get("source", "")
    refined = ", refined" if (info.get("refine") or {}).get("n_evals") else ""
    distance = info.get("match_distance")
    title = f"{target.path.name}: MIDI {info.get('midi_note')}"
    if distance is not None:
        title += f", {_verdict_text(distance)}"
    return comparison_png(
        target.audio,
        audio,
        target.sample_rate,
        title=title,
        match_label=f"match ({start} start{refined})",
        side_by_side=True,
    )


def status_markdown(name: str, info: dict, seconds: float) -> str:
    """The verdict as a heading, then one line saying what was matched, at which note, from where, how
    close (`info["match_distance"]`, the distance the command line prints)."""
    midi = int(info.get("midi_note", 60))
    pitch = info.get("pitch", {})
    if pitch.get("source") == "estimated":
        conf = pitch.get("confidence")
        how = "estimated" + (f", confidence {conf:.2f}" if isinstance(conf, (int, float)) else "")
        if pitch.get("pitched") is False:
            how = "no clear pitch: a drum or noise? Set the MIDI note to choose one"
    else:
        how = "your override"
    # where the written match began: "Vital's init preset" after a fall-back, not the model it was asked for
    start = escape_markdown((info.get("match_start") or info.get("start") or {}).get("description", ""))
    ref = info.get("refine") or {}
    refined = " and refined with CMA-ES" if ref and not ref.get("skipped") else ""
    distance = info.get("match_distance")
    heading, close = "", ""
    if distance is not None:
        heading = f"### {escape_markdown(_verdict_text(distance))}\n\n"
        close = (
            f" Distance to the target **{distance:.3f}**: multi-scale log-mel L1 at equal loudness, on a fresh "
            "render of the downloaded preset (what `synthmatch infer` prints)."
        )
    return (
        f"{heading}**Matched** `{name}` at MIDI note {midi} ({note_name(midi)}; {how}) in {seconds:.1f} s, "
        f"starting from {start}{refined}.{close}"
    )


def cli_markdown(name: str, infer: InferConfig, demo_cfg: DemoConfig) -> str:
    """The `synthmatch infer` command that makes the same match (same settings: the same distance, within
    the synth's own noise)."""
    args = ["synthmatch", "infer", "-i", _quoted(name), "--render", "--tutorial"]
    if demo_cfg.checkpoint is not None:
        args += ["-c", _quoted(Path(demo_cfg.checkpoint).name)]
    if demo_cfg.tier is not None:
        args += ["--tier", str(demo_cfg.tier)]
    if infer.midi_note is not None:
        args += ["--midi-note", str(infer.midi_note)]
    if infer.refine:
        args += ["--refine", "--refine-evals", str(infer.refine_evals)]
        args += ["--refine-timeout", f"{infer.refine_timeout_s:g}"]
    return f"**The same match from the command line:** `{' '.join(args)}`"


def _quoted(text: str) -> str:
    import shlex

    return shlex.quote(text).replace("`", "'")


def candidates_markdown(candidates: Sequence[DemoCandidate]) -> str:
    """The ranked candidates as a Markdown table with each one's verdict (nothing with a single match)."""
    if len(candidates) < 2:
        return ""
    lines = [
        f"**{len(candidates)} candidates**, ranked by distance to the target (lower is closer); the first is "
        "the match above, the others are below.",
        "",
        "| rank | similarity | distance | started from | file |",
        "|---|---|---|---|---|",
    ]
    for c in candidates:
        v = c.verdict
        similarity = f"**{v.similarity}/100** ({v.word})" if v is not None else "none (silent)"
        lines.append(
            f"| {c.rank} | {similarity} | {c.distance:.3f} | {escape_markdown(c.start)} | "
            f"{escape_markdown(c.preset_path.name)} |"
        )
    return "\n".join(lines)


def _loss_text(loss: float | None) -> str:
    """A search loss for the table: "-" where the render failed (the summary's null)."""
    return "-" if loss is None else f"{loss:.4f}"


def stats_markdown(info: dict) -> str:
    """The refinement statistics as a Markdown table (or why there are none)."""
    ref = info.get("refine")
    if not ref:
        return (
            "**Refinement:** off. Tick *CMA-ES refinement* to search the preset's audible controls "
            "against the real synth (slower, more accurate)."
        )
    if ref.get("skipped"):
        return f"**Refinement:** skipped ({ref.get('reason', 'unavailable')})."
    rate = ref.get("evals_per_s")
    rows = [
        ("search loss at the start", _loss_text(ref.get("initial_loss"))),
        ("search loss at the end", _loss_text(ref.get("final_loss"))),
        ("improved", "yes" if ref.get("improved") else "no (the start was kept)"),
        ("evaluations", f"{ref['n_evals']}" + (f" ({rate:.1f}/s)" if rate else "")),
        ("time", f"{ref['elapsed_s']:.1f} s"),
        ("parameters searched", str(ref.get("n_params", ""))),
        ("generations", str(ref.get("generations", ""))),
        ("stopped by", str(ref.get("stop_reason", ""))),
    ]
    if info.get("candidates"):
        rows[3] = (
            "evaluations",
            f"{ref['n_evals']} for this match, {info.get('renders')} for all candidates",
        )
        rows.append(("candidates", str(len(info["candidates"]))))
    lines = ["**Refinement (CMA-ES)**", "", "| statistic | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += [
        "",
        "The search loss is what the refinement minimised, on renders with every random phase held still; "
        "the distance above is measured on a fresh render of the downloaded preset, the sound you get.",
    ]
    return "\n".join(lines)


def parameter_rows(preset, tier: int, start: dict | None = None) -> list[list[str]]:
    """Rows of PARAMETER_COLUMNS: the audible controls that differ from Vital's init preset, then the
    model's categorical choices (with their confidence) that equal the init value.

    Args:
        preset: the matched preset.
        tier: the parameter tier shown.
        start: `StartPoint.summary()`; its "confidence" (categorical -> probability) fills the last column.
    """
    from synthmatch.synth.audibility import Audibility
    from synthmatch.synth.display import display_name, display_text
    from synthmatch.synth.params import param_space
    from synthmatch.synth.presets import Preset

    ps = param_space()
    ts = ps.tier(tier)
    confidence = dict((start or {}).get("confidence") or {})
    init = Preset.init()
    aud = Audibility(preset, ps)
    rows: list[tuple[tuple, list[str]]] = []
    for name in (*ts.categorical, *ts.continuous):
        spec = ps[name]
        raw = spec.clamp(preset.values.get(name, spec.default))
        raw0 = spec.clamp(init.values.get(name, spec.default))
        text, text0 = display_text(name, raw), display_text(name, raw0)
        conf = confidence.get(name)
        if text == text0 and conf is None:
            continue
        if not name.endswith("_on") and not aud.audible(name) and conf is None:
            continue
        conf_text = f"{conf:.0%}" if isinstance(conf, (int, float)) and math.isfinite(conf) else ""
        order = (0 if text != text0 else 1, spec.module, name)
        rows.append((order, [display_name(name), text, text0, conf_text]))
    return [row for _, row in sorted(rows)]
