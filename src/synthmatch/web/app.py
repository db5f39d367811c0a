"""The Gradio page of `synthmatch demo`: upload or record a note, get a Vital preset that sounds like it.

`build_app(demo)` lays out the page over a `web.demo.Demo` (the matching engine); `launch(DemoConfig)`
serves it on 127.0.0.1 (unless `host`/`share` say otherwise) with uploads capped at `max_upload_mb`, one
match at a time, and every temporary file removed: a session's own files when its tab closes, Gradio's
cached copies after an hour (`delete_cache`), everything when the server stops.

Errors a user can cause (too short, silent, wrong format, too long, too large) come back as a readable
line in the page's status box; anything unexpected is logged with its traceback on the server and shown
in the page as one line, never as a stack trace.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from synthmatch.errors import SynthmatchError
from synthmatch.web import WEB_INSTALL, WebUnavailable

try:
    import gradio as gr
except ImportError as exc:  # the web extra is missing
    raise WebUnavailable(f"the web demo needs the web extra ({exc}); install it with {WEB_INSTALL}") from exc

from synthmatch.inference.tutorial import note_name
from synthmatch.web.demo import PARAMETER_COLUMNS, Demo, DemoConfig, escape_markdown

log = logging.getLogger(__name__)

__all__ = ["build_app", "launch", "RunningDemo"]

_TITLE = "synthmatch: sound to Vital preset"
_INTRO = (
    "Upload or record **one note** (a pluck, a bass, a pad, a real instrument), press **Match**, and get a "
    "[Vital](https://vital.audio) preset that sounds like it, its render and a step-by-step tutorial."
)
_READY = (
    "Waiting for a sound: upload a file (WAV, FLAC, OGG, AIFF, MP3...) or record one, then press **Match**."
)
_ESTIMATE = "estimate from the sound"
_CSS = "#status {min-height: 3em}"
SHOWN_CANDIDATES = 3  # the page shows the best match and the candidates after it up to this rank


def _theme():
    # system fonts: the default theme fetches Google Fonts, which an offline machine cannot reach
    return gr.themes.Default(
        font=["system-ui", "-apple-system", "Segoe UI", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )


def build_app(demo: Demo) -> gr.Blocks:
    """The demo page over `demo`: inputs on the left, the match on the right, details below."""
    cfg = demo.cfg
    with gr.Blocks(title=_TITLE, analytics_enabled=False, delete_cache=(600, 3600)) as app:
        gr.Markdown(f"# {_TITLE}\n{_INTRO}\n\nStarting point: {escape_markdown(demo.start_description)}.")
        with gr.Row():
            with gr.Column(scale=1):
                audio_in = gr.Audio(
                    sources=["upload", "microphone"],
                    type="filepath",
                    label=f"Target sound (one note, up to {cfg.max_seconds:g} s and {cfg.max_upload_mb:g} MB)",
                    elem_id="target-audio",
                )
                midi_in = gr.Dropdown(
                    choices=[(_ESTIMATE, -1)] + [(f"{note_name(n)} (MIDI {n})", n) for n in range(128)],
                    value=-1,
                    label="Note",
                    info="The pitch the preset plays; type to search (C4 is MIDI 60)",
                    filterable=True,
                    elem_id="midi-note",
                )
                refine_in = gr.Checkbox(
                    value=False, label="CMA-ES refinement (slower, more accurate)", elem_id="refine"
                )
                evals_in = gr.Slider(
                    minimum=min(10, cfg.max_refine_evals),
                    maximum=cfg.max_refine_evals,
                    value=cfg.refine_evals,
                    step=1,
                    label="Refinement budget (evaluations: renders of the real synth)",
                    info=f"Stops after {cfg.refine_timeout_s:g} s at the latest",
                    elem_id="refine-evals",
                )
                match_button = gr.Button("Match", variant="primary", elem_id="match-button")
            with gr.Column(scale=1):
                status = gr.Markdown(_READY, elem_id="status")
                audio_out = gr.Audio(
                    type="filepath", label="Matched sound", interactive=False, elem_id="match-audio"
                )
                preset_out = gr.File(label="Vital preset (.vital)", interactive=False, elem_id="preset-file")
                stats_out = gr.Markdown(elem_id="refine-stats")
        candidates_md = gr.Markdown(elem_id="candidates")
        others = []  # candidates 2, 3...: a player and a download each, shown when there are some
        with gr.Row():
            for rank in range(2, SHOWN_CANDIDATES + 1):
                with gr.Column(scale=1):
                    others.append(
                        (
                            gr.Audio(
                                type="filepath",
                                label=f"Candidate {rank}",
                                interactive=False,
                                visible=False,
                                elem_id=f"candidate-{rank}-audio",
                            ),
                            gr.File(
                                label=f"Candidate {rank} (.vital)",
                                interactive=False,
                                visible=False,
                                elem_id=f"candidate-{rank}-file",
                            ),
                        )
                    )
        figure_out = gr.Image(
            type="filepath",
            label="Log-mel spectrograms: target and match, same scale",
            interactive=False,
            elem_id="spectrograms",
        )
        with gr.Tabs():
            with gr.Tab("Tutorial", elem_id="tutorial-tab"):
                tutorial_out = gr.Markdown("The tutorial appears here after a match.", elem_id="tutorial")
            with gr.Tab("Parameters", elem_id="parameters-tab"):
                gr.Markdown(
                    "The match's controls that differ from Vital's init preset. *Confidence* is the model's "
                    "probability for a categorical choice (a waveform, a filter model...); there is none "
                    "without a model."
                )
                params_out = gr.Dataframe(
                    headers=PARAMETER_COLUMNS,
                    value=[],
                    type="array",
                    interactive=False,
                    wrap=True,
                    elem_id="parameters",
                )
        outputs = [
            status,
            audio_out,
            preset_out,
            stats_out,
            figure_out,
            tutorial_out,
            params_out,
            candidates_md,
        ]
        outputs += [c for pair in others for c in pair]

        def other_updates(candidates: list[dict]) -> list:
            updates = []
            for rank in range(2, SHOWN_CANDIDATES + 1):
                c = next((c for c in candidates if c["rank"] == rank), None)
                if c is None:
                    updates += [gr.update(value=None, visible=False), gr.update(value=None, visible=False)]
                    continue
                label = f"Candidate {rank}: distance {c['distance']:.3f}"
                updates += [
                    gr.update(value=str(c["audio_path"]), visible=True, label=label),
                    gr.update(value=str(c["preset_path"]), visible=True, label=f"{label} (.vital)"),
                ]
            return updates

        def match(audio_path, midi_note, refine, refine_evals, request: gr.Request, progress=gr.Progress()):  # noqa: B008
            session = getattr(request, "session_hash", None)
            try:
                r = demo.match(
                    audio_path,
                    midi_note=midi_note,
                    refine=bool(refine),
                    refine_evals=int(refine_evals),
                    session=session,
                    progress=lambda fraction, text: progress(fraction, desc=text),
                )
            except SynthmatchError as exc:
                log.info("demo: %s", exc)
                return _failed(f"**Could not match:** {escape_markdown(str(exc))}")
            except Exception as exc:  # a bug, not the user's input: log it whole, show one line
                log.exception("demo: matching failed")
                return _failed(
                    f"**Something went wrong** ({escape_markdown(type(exc).__name__)}: {escape_markdown(str(exc))}). "
                    "The server log has the details; please try another sound."
                )
            return (
                r.status_md,
                str(r.audio_path),
                str(r.preset_path),
                r.stats_md,
                str(r.figure_path),
                r.tutorial_md,
                r.parameters,
                r.candidates_md,
                *other_updates(r.candidates),
            )

        def _failed(message: str) -> tuple:
            return (f"⚠️ {message}", None, None, "", None, "", [], "", *other_updates([]))

        def end_session(request: gr.Request) -> None:
            demo.end_session(getattr(request, "session_hash", None))

        match_button.click(
            match,
            inputs=[audio_in, midi_in, refine_in, evals_in],
            outputs=outputs,
            concurrency_limit=1,
            api_name="match",
        )
        app.unload(end_session)
    return app


@dataclass
class RunningDemo:
    """A demo server running in background threads (`launch(..., block=False)`)."""

    app: gr.Blocks
    demo: Demo
    url: str
    share_url: str | None = None

    def close(self) -> None:
        """Stop the server and remove every temporary file."""
        try:
            self.app.close()
        finally:
            self.demo.close()

    def __enter__(self) -> RunningDemo:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def launch(
    cfg: DemoConfig, *, block: bool = True, on_ready: Callable[[RunningDemo], None] | None = None
) -> RunningDemo:
    """Serve the demo.

    Args:
        cfg: address, port, upload bounds, refinement budget, model.
        block: wait until Ctrl-C, then stop and clean up; False returns at once with the server running
            (call `close()` on the result).
        on_ready: called once the server listens (e.g. to print the address).
    Returns:
        The running (block=False) or stopped (block=True) demo.
    Raises:
        SynthmatchError: the port is taken, the checkpoint is unusable, or a setting is out of range.
    """
    demo = Demo(cfg)
    try:
        app = build_app(demo)
        app.queue(default_concurrency_limit=1, max_size=32)
        try:
            _, local_url, share_url = app.launch(
                server_name=cfg.host,
                server_port=cfg.port,
                share=cfg.share,
                max_file_size=int(cfg.max_upload_mb * 1024 * 1024),
                allowed_paths=[str(demo.root)],
                prevent_thread_lock=True,
                show_error=False,
                quiet=True,
                ssr_mode=False,
                theme=_theme(),
                css=_CSS,
            )
        except OSError as exc:
            raise SynthmatchError(
                f"cannot listen on {cfg.host}:{cfg.port} ({exc}); pass another --port"
            ) from None
    except BaseException:
        demo.close()
        raise
    running = RunningDemo(app=app, demo=demo, url=local_url, share_url=share_url)
    if on_ready is not None:
        on_ready(running)
    if block:
        previous = _stop_on_sigterm()
        try:
            app.block_thread()  # returns on Ctrl-C (or SIGTERM), having stopped the server
        finally:
            running.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    return running


def _stop_on_sigterm():
    """Make SIGTERM stop the server like Ctrl-C does, so the temporary files are removed; returns the
    previous handler (None off the main thread, where signals cannot be handled)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)
