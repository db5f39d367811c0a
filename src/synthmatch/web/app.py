"""The Gradio page of `synthmatch demo`: upload or record a note, get a Vital preset that sounds like it.

`build_app(demo)` lays out the page over a `web.demo.Demo` (the matching engine); `launch(DemoConfig)`
serves it on 127.0.0.1 (unless `host`/`share` say otherwise) with uploads capped at `max_upload_mb`, one
match at a time, and every temporary file removed: a session's own files when its tab closes, Gradio's
cached copies after an hour (`delete_cache`), everything when the server stops.

A match's page leads with its verdict (similarity and distance, the numbers `synthmatch infer` prints),
then an A/B player for listening: the target and the match side by side at one loudness, one button
switching which plays at the same position, looped (`ab_player_html`: plain HTML5 audio and a little
JavaScript in a gr.HTML; the sounds travel inside the page as data: URLs, so no server path appears in
it). A note menu plays the match (or a chosen candidate) at another note, a fresh render of its .vital;
each candidate has its verdict, its player and a zip of its .vital, WAV and tutorial.

Errors a user can cause (too short, silent, wrong format, too long, too large) come back as a readable
line in the page's status box; anything unexpected is logged with its traceback on the server and shown
in the page as one line, never as a stack trace.
"""

from __future__ import annotations

import base64
import html
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthmatch.errors import SynthmatchError
from synthmatch.web import WEB_INSTALL, WebUnavailable

try:
    import gradio as gr
except ImportError as exc:  # the web extra is missing
    raise WebUnavailable(f"the web demo needs the web extra ({exc}); install it with {WEB_INSTALL}") from exc

from synthmatch.audio.pitch import note_name
from synthmatch.web.demo import PARAMETER_COLUMNS, Demo, DemoConfig, DemoResult, escape_markdown

log = logging.getLogger(__name__)

__all__ = ["build_app", "launch", "RunningDemo", "ab_player_html"]

_TITLE = "synthmatch: sound to Vital preset"
_INTRO = (
    "Upload or record **one note** (a pluck, a bass, a pad, a real instrument), press **Match**, and get a "
    "[Vital](https://vital.audio) preset that sounds like it, its render and a step-by-step tutorial."
)
_READY = (
    "Waiting for a sound: upload a file (WAV, FLAC, OGG, AIFF, MP3...) or record one, then press **Match**."
)
_ESTIMATE = "estimate from the sound"
_CHOOSE_NOTE = "choose a note"
# (a list of downloads offers to remove its files from the page even when it is not interactive)
_CSS = "#status {min-height: 3em} #status h3 {margin-top: 0} [id^=candidate-] .label-clear-button {display: none}"
SHOWN_CANDIDATES = 3  # the page shows the best match and the candidates after it up to this rank
PLAY_NOTES = range(21, 109)  # A0 to C8, a piano's keys: the notes the match can be played at

# The A/B player. Two <audio> elements side by side; "Switch A/B" pauses the one playing and starts the
# other at the same position (so the ear compares the same moment), and starting either one from its own
# controls pauses the other. The buttons start and pause synchronously and mark their own plays, whose
# "play" events (dispatched later, possibly after a newer play from the controls) are then ignored.
# Listeners sit on the component's root, which outlives the re-rendered player, so they hold for every
# match.
_AB_EMPTY = '<div class="ab-empty">The target and the match play here side by side after a match.</div>'
_AB_JS = """
const sides = () => ({a: element.querySelector('audio[data-side="a"]'), b: element.querySelector('audio[data-side="b"]')});
const box = () => element.querySelector('.ab');
const show = () => {
  const ab = box(); if (!ab) return;
  const s = sides(), active = ab.dataset.active || 'a', player = s[active];
  const name = ab.querySelector('.ab-side[data-side="' + active + '"] .ab-name');
  const now = ab.querySelector('.ab-now');
  if (now) now.textContent = (player && !player.paused ? 'playing ' : 'selected ') + active.toUpperCase() + ': ' + (name ? name.textContent : '');
};
const select = (side) => { const ab = box(); if (ab) { ab.dataset.active = side; show(); } };
const start = (player) => {
  if (!player.paused) return;  // (play() on a playing element fires no event to mark)
  for (const other of Object.values(sides())) if (other && other !== player && !other.paused) other.pause();
  player.abOwnPlay = (player.abOwnPlay || 0) + 1;
  player.play().catch(() => {});
  show();  // paused is false once play() is called: the label says so now, not at the later play event
};
element.addEventListener('play', (e) => {
  const t = e.target; if (!(t instanceof HTMLAudioElement) || !t.dataset.side) return;
  if (t.abOwnPlay) { t.abOwnPlay -= 1; show(); return; }  // started by a button, which did the rest
  for (const other of Object.values(sides())) if (other && other !== t && !other.paused) other.pause();
  select(t.dataset.side);
}, true);
element.addEventListener('pause', show, true);
element.addEventListener('click', (e) => {
  const button = e.target.closest('[data-ab]'); const ab = box();
  if (!button || !ab || button.dataset.ab === 'loop') return;
  const s = sides(), active = ab.dataset.active || 'a', from = s[active];
  const next = active === 'a' ? 'b' : 'a', to = s[next];
  if (!from || !to) return;
  if (button.dataset.ab === 'play') {
    if (from.paused) start(from); else from.pause();
    return;
  }
  const playing = !from.paused, at = from.currentTime;
  from.pause();
  to.currentTime = Number.isFinite(to.duration) && at >= to.duration ? 0 : at;
  select(next);
  if (playing) start(to);
});
element.addEventListener('change', (e) => {
  if (e.target.dataset && e.target.dataset.ab === 'loop')
    for (const p of Object.values(sides())) if (p) p.loop = e.target.checked;
});
"""
_AB_CSS = """
.ab-sides {display: flex; gap: 12px; flex-wrap: wrap}
.ab-side {flex: 1 1 240px; border: 2px solid var(--border-color-primary); border-radius: 8px; padding: 8px}
.ab[data-active="a"] .ab-side[data-side="a"], .ab[data-active="b"] .ab-side[data-side="b"] {border-color: var(--color-accent)}
.ab-side audio {width: 100%}
.ab-head {font-weight: 600; margin-bottom: 4px}
.ab-key {display: inline-block; min-width: 1.4em; text-align: center; border-radius: 4px; background: var(--color-accent); color: white; margin-right: 4px}
.ab-verdict {font-size: 0.9em; margin-bottom: 4px}
.ab-bar {display: flex; gap: 10px; align-items: center; margin-top: 8px; flex-wrap: wrap}
.ab-bar button {border: 1px solid var(--border-color-primary); border-radius: 6px; padding: 4px 12px; background: var(--button-secondary-background-fill)}
.ab-now {font-size: 0.9em; opacity: 0.8}
.ab-note, .ab-empty {font-size: 0.85em; opacity: 0.8; margin-top: 6px}
"""


def _data_url(path: Path | None) -> str:
    if path is None or not Path(path).is_file():
        return ""
    return "data:audio/wav;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def ab_player_html(result: DemoResult | None, rank: int = 1) -> str:
    """The A/B player of `result`: the target (A) and candidate `rank` (B, 1: the match) at one loudness.

    The sounds are the match's playback files (`Demo.match` writes them at one RMS, without clipping),
    inlined as data: URLs.
    """
    if result is None or result.target_playback_path is None:
        return _AB_EMPTY
    c = result.candidate(rank)
    v = c.verdict
    gains = f"target {result.target_playback_gain_db:+.1f} dB, {c.name} {c.playback_gain_db:+.1f} dB"
    sides = [
        ("a", "target", html.escape(result.target_name), result.target_playback_path),
        ("b", c.name, html.escape(v.text if v is not None else f"distance {c.distance}"), c.playback_path),
    ]
    parts = ['<div class="ab" data-active="a"><div class="ab-sides">']
    for side, name, detail, path in sides:
        parts.append(
            f'<div class="ab-side" data-side="{side}"><div class="ab-head"><span class="ab-key">'
            f'{side.upper()}</span><span class="ab-name">{html.escape(name)}</span></div>'
            f'<div class="ab-verdict">{detail}</div>'
            f'<audio data-side="{side}" controls loop preload="auto" src="{_data_url(path)}"></audio></div>'
        )
    parts.append(
        '</div><div class="ab-bar">'
        '<button type="button" data-ab="play" title="play or pause the selected side">Play / pause</button>'
        '<button type="button" data-ab="switch" title="play the other side from the same moment">'
        "Switch A/B</button>"
        '<label><input type="checkbox" data-ab="loop" checked> loop</label>'
        '<span class="ab-now" aria-live="polite">selected A: target</span></div>'
        f'<div class="ab-note">Both play at the same loudness ({result.playback_rms_db:.1f} dBFS RMS; {gains}); '
        "the downloads keep their own levels.</div></div>"
    )
    return "".join(parts)


def _theme():
    # system fonts: the default theme fetches Google Fonts, which an offline machine cannot reach
    return gr.themes.Default(
        font=["system-ui", "-apple-system", "Segoe UI", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )


def build_app(demo: Demo) -> gr.Blocks:
    """The demo page over `demo`: inputs on the left, the verdict and the listening on the right, the
    candidates, spectrograms, tutorial and parameters below."""
    cfg = demo.cfg
    with gr.Blocks(title=_TITLE, analytics_enabled=False, delete_cache=(600, 3600)) as app:
        gr.Markdown(f"# {_TITLE}\n{_INTRO}\n\nStarting point: {escape_markdown(demo.start_description)}.")
        result_state = gr.State(None)  # the session's DemoResult: what the note and A/B controls play
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
            with gr.Column(scale=2):
                status = gr.Markdown(_READY, elem_id="status")
                ab_player = gr.HTML(
                    _AB_EMPTY,
                    js_on_load=_AB_JS,
                    css_template=_AB_CSS,
                    elem_id="ab-player",
                )
                ab_choice = gr.Radio(
                    choices=[("match", 1)],
                    value=1,
                    label="B plays",
                    visible=False,
                    elem_id="ab-choice",
                )
                with gr.Row(equal_height=True):
                    note_in = gr.Dropdown(
                        choices=[(_CHOOSE_NOTE, -1)]
                        + [(f"{note_name(n)} (MIDI {n})", n) for n in PLAY_NOTES],
                        value=-1,
                        label="Play B at another note",
                        info="A fresh render of its .vital at that note",
                        filterable=True,
                        interactive=False,
                        elem_id="play-note",
                    )
                    note_audio = gr.Audio(
                        type="filepath",
                        label="At another note",
                        interactive=False,
                        autoplay=True,
                        elem_id="note-audio",
                    )
                with gr.Row():
                    preset_out = gr.File(
                        label="Vital preset (.vital)", interactive=False, elem_id="preset-file"
                    )
                    bundle_out = gr.File(
                        label=".vital, WAV, tutorial and spectrograms (.zip)",
                        interactive=False,
                        elem_id="bundle-file",
                    )
                audio_out = gr.Audio(
                    type="filepath",
                    label="Matched sound (its own level, as the WAV download has it)",
                    interactive=False,
                    elem_id="match-audio",
                )
                stats_out = gr.Markdown(elem_id="refine-stats")
        candidates_md = gr.Markdown(elem_id="candidates")
        others = []  # candidates 2, 3...: a player and the downloads each, shown when there are some
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
                                label=f"Candidate {rank} (.vital and .zip)",
                                file_count="multiple",
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
            result_state,
            status,
            ab_player,
            ab_choice,
            note_in,
            note_audio,
            preset_out,
            bundle_out,
            audio_out,
            stats_out,
            figure_out,
            tutorial_out,
            params_out,
            candidates_md,
        ]
        outputs += [c for pair in others for c in pair]

        def other_updates(r: DemoResult | None) -> list:
            updates = []
            for rank in range(2, SHOWN_CANDIDATES + 1):
                c = next((c for c in r.candidates if c.rank == rank), None) if r is not None else None
                if c is None:
                    updates += [gr.update(value=None, visible=False), gr.update(value=None, visible=False)]
                    continue
                v = c.verdict
                label = f"Candidate {rank}: {v.text if v is not None else f'distance {c.distance:.3f}'}"
                updates += [
                    gr.update(value=str(c.audio_path) if c.audio_path else None, visible=True, label=label),
                    gr.update(
                        value=[str(c.preset_path), str(c.bundle_path)],
                        visible=True,
                        label=f"Candidate {rank}: .vital, and its WAV and tutorial too (.zip)",
                    ),
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
                return _failed(f"**Could not match:** {escape_markdown(demo.public(str(exc)))}")
            except Exception as exc:  # a bug, not the user's input: log it whole, show one line
                log.exception("demo: matching failed")
                return _failed(
                    f"**Something went wrong** ({escape_markdown(type(exc).__name__)}: "
                    f"{escape_markdown(demo.public(str(exc)))}). The server log has the details; please try "
                    "another sound."
                )
            choices = [(f"{c.name}: {c.verdict.text}" if c.verdict else c.name, c.rank) for c in r.candidates]
            return (
                r,
                r.status_md,
                ab_player_html(r),
                gr.update(choices=choices, value=1, visible=len(r.candidates) > 1),
                gr.update(value=-1, interactive=True),
                None,
                str(r.preset_path),
                str(r.bundle_path) if r.bundle_path else None,
                str(r.audio_path),
                r.stats_md,
                str(r.figure_path),
                r.tutorial_md,
                r.parameters,
                r.candidates_md,
                *other_updates(r),
            )

        def _failed(message: str) -> tuple:
            return (
                None,
                f"⚠️ {message}",
                _AB_EMPTY,
                gr.update(choices=[("match", 1)], value=1, visible=False),
                gr.update(value=-1, interactive=False),
                None,
                None,
                None,
                None,
                "",
                None,
                "",
                [],
                "",
                *other_updates(None),
            )

        def play_note(r: DemoResult | None, midi_note, rank) -> Any:
            if r is None or midi_note is None or int(midi_note) < 0:
                return None
            try:
                path = demo.render_note(r, int(midi_note), rank=int(rank or 1))
            except SynthmatchError as exc:
                log.info("demo: %s", exc)
                raise gr.Error(demo.public(str(exc)), print_exception=False) from None
            label = (
                f"{r.candidate(int(rank or 1)).name} at {note_name(int(midi_note))} (MIDI {int(midi_note)})"
            )
            return gr.update(value=str(path), label=label)

        def choose_b(r: DemoResult | None, rank, midi_note) -> tuple:
            if r is None:
                return _AB_EMPTY, None
            return ab_player_html(r, int(rank or 1)), play_note(r, midi_note, rank)

        def end_session(request: gr.Request) -> None:
            demo.end_session(getattr(request, "session_hash", None))

        # match and note renders share the synth: one at a time, whichever session asks
        match_button.click(
            match,
            inputs=[audio_in, midi_in, refine_in, evals_in],
            outputs=outputs,
            concurrency_limit=1,
            concurrency_id="synth",
            api_name="match",
        )
        # .change, not .input: the dropdown's input event was seen to fire for the first choice only
        # (headless chromium); a match resetting the menu to "choose" renders nothing (play_note: None)
        note_in.change(
            play_note,
            inputs=[result_state, note_in, ab_choice],
            outputs=note_audio,
            concurrency_limit=1,
            concurrency_id="synth",
            api_visibility="private",
        )
        ab_choice.input(
            choose_b,
            inputs=[result_state, ab_choice, note_in],
            outputs=[ab_player, note_audio],
            concurrency_limit=1,
            concurrency_id="synth",
            api_visibility="private",
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
