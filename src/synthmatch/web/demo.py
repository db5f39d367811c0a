"""What the web demo does with one uploaded sound, without any Gradio: check it, match it, write the files.

`Demo(DemoConfig)` holds what lives as long as the server: the starting-point maker (the model is loaded
once), one `Renderer`, and a temporary folder with one sub-folder per browser session. `Demo.match` checks
an upload against the demo's bounds (file size, duration), then runs the package's own matching
(`inference.pipeline.match_target`, the function `synthmatch infer` uses) and writes the match's files
with `inference.export.write_match`. Everything a user can get wrong raises `DemoInputError` or another
`SynthmatchError` whose message names the uploaded file (not its temporary path), says what is wrong and
what is accepted; the page shows that message.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthmatch.audio.io import AudioError
from synthmatch.errors import ConfigError, SynthmatchError
from synthmatch.synth.params import TIERS

log = logging.getLogger(__name__)

__all__ = [
    "DemoConfig",
    "Demo",
    "DemoResult",
    "DemoInputError",
    "parameter_rows",
    "escape_markdown",
    "stats_markdown",
    "candidates_markdown",
    "PARAMETER_COLUMNS",
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
    # every candidate, best first: {"rank", "distance", "start", "preset_path", "audio_path"}
    candidates: list[dict] = field(default_factory=list)
    candidates_md: str = ""


def _renamed(exc: SynthmatchError, path: Path) -> SynthmatchError:
    """The same error with the upload's temporary path replaced by its file name in the message."""
    message = str(exc).replace(str(path), path.name)
    try:
        return type(exc)(message)
    except TypeError:  # an error class with another constructor: keep the message, not the type
        return SynthmatchError(message)


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
        self._lock = threading.Lock()
        self._counter = 0
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------------------
    @property
    def start_description(self) -> str:
        return self.starter.description

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
                report(
                    0.1 + 0.8 * min(1.0, state["n_evals"] / evals),
                    f"CMA-ES refinement: {state['n_evals']}/{evals} evaluations, "
                    f"loss {state['initial_loss']:.3f} -> {state['best_loss']:.3f}",
                )

            files, info = match_target(target, cfg, self.starter, self.renderer, refine_callback=on_refine)
        except SynthmatchError as exc:
            raise _renamed(exc, path) from None
        report(0.92, "drawing the spectrograms")
        files.figure_png = _wide_figure(target, files.audio, info)  # the page is wide: side by side
        report(0.96, "writing the files")
        out = self._new_result_dir(session)
        written = write_match(files, output_paths(out, path, single=True))
        seconds = time.perf_counter() - t0
        start = info.get("start", {})
        candidates = []
        for c in info.get("candidates") or []:
            key = "" if c["rank"] == 1 else f".{c['rank']}"
            candidates.append(
                {
                    "rank": c["rank"],
                    "distance": c["distance"],
                    "start": c["start"]["description"],
                    "preset_path": written["preset" + key],
                    "audio_path": written.get("audio" + key),
                }
            )
        return DemoResult(
            preset_path=written["preset"],
            audio_path=written["audio"],
            figure_path=written["figure"],
            tutorial_path=written["tutorial"],
            tutorial_md=files.tutorial_md or "",
            status_md=status_markdown(path.name, info, seconds),
            stats_md=stats_markdown(info),
            parameters=parameter_rows(files.preset, int(start.get("tier", self.starter.tier)), start),
            info=info,
            seconds=seconds,
            candidates=candidates,
            candidates_md=candidates_markdown(candidates),
        )


# ---------------------------------------------------------------------------------------------------
# what the page shows
_MD_SPECIAL = "\\`*_{}[]<>#|"


def escape_markdown(text: str) -> str:
    """Plain text for a Markdown box (file names with underscores or asterisks stay as they are)."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in text)


def _wide_figure(target, audio, info: dict) -> bytes:
    from synthmatch.inference.compare import comparison_png

    start = info.get("start", {}).get("source", "")
    refined = ", refined" if (info.get("refine") or {}).get("n_evals") else ""
    distance = info.get("match_distance")
    title = f"{target.path.name}: MIDI {info.get('midi_note')}"
    if distance is not None:
        title += f", distance {distance:.3f}"
    return comparison_png(
        target.audio,
        audio,
        target.sample_rate,
        title=title,
        match_label=f"match ({start} start{refined})",
        side_by_side=True,
    )


def _note_name(midi: int) -> str:
    from synthmatch.inference.tutorial import note_name

    return note_name(midi)


def status_markdown(name: str, info: dict, seconds: float) -> str:
    """One line saying what was matched, at which note, from where, how close."""
    midi = int(info.get("midi_note", 60))
    pitch = info.get("pitch", {})
    if pitch.get("source") == "estimated":
        conf = pitch.get("confidence")
        how = "estimated" + (f", confidence {conf:.2f}" if isinstance(conf, (int, float)) else "")
        if pitch.get("pitched") is False:
            how = "no clear pitch: a drum or noise? Set the MIDI note to choose one"
    else:
        how = "your override"
    start = escape_markdown(info.get("start", {}).get("description", ""))
    ref = info.get("refine") or {}
    refined = " and refined with CMA-ES" if ref and not ref.get("skipped") else ""
    distance = info.get("match_distance")
    close = f" Distance to the target: **{distance:.3f}** (multi-scale log-mel L1)." if distance else ""
    return (
        f"**Matched** `{name}` at MIDI note {midi} ({_note_name(midi)}; {how}) in {seconds:.1f} s, "
        f"starting from {start}{refined}.{close}"
    )


def candidates_markdown(candidates: list[dict]) -> str:
    """The ranked candidates as a Markdown table (nothing with a single match)."""
    if len(candidates) < 2:
        return ""
    lines = [
        f"**{len(candidates)} candidates**, ranked by distance to the target (lower is closer); the first is "
        "the match above, the others are below.",
        "",
        "| rank | distance | started from | file |",
        "|---|---|---|---|",
    ]
    for c in candidates:
        lines.append(
            f"| {c['rank']} | {c['distance']:.3f} | {escape_markdown(c['start'])} | "
            f"{escape_markdown(Path(c['preset_path']).name)} |"
        )
    return "\n".join(lines)


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
        ("initial loss", f"{ref['initial_loss']:.4f}"),
        ("final loss", f"{ref['final_loss']:.4f}"),
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
