"""The dataset browser (`synthmatch preview`): a Textual app to look at and listen to any dataset file.

A paged table of examples (index, source, name, MIDI note, RMS), and for the selected example its
parameters in Vital's own display text grouped by module (controls at their init value hidden, or shown
dimmed with `a`), its modulation connections, a waveform envelope and a small spectrogram. Rows are read
a page at a time and one example's audio on selection, so a file of any size opens at once.

Playback uses the dataset's own sample rate from its schema (the seed report's bug 6: it was fixed at 44.1 kHz), through
`sounddevice` when an output device exists. Without one (servers, containers) the status line says so,
and `w` exports the example to a WAV file at the dataset's sample rate instead.

Needs the `tui` extra (textual, sounddevice): `pip install 'synthmatch[tui]'`.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from synthmatch.audio.io import write_wav
from synthmatch.datagen.store import Dataset, DatasetError
from synthmatch.errors import SynthmatchError
from synthmatch.synth.display import display_text
from synthmatch.synth.params import param_space
from synthmatch.synth.presets import Preset

log = logging.getLogger(__name__)

TUI_INSTALL = "pip install 'synthmatch[tui]'"


class TuiUnavailable(SynthmatchError, ImportError):
    """The `tui` extra (textual) is not installed."""


try:
    from rich.text import Text
    from textual import on
    from textual.app import App, ComposeResult
    from textual.binding import Binding
    from textual.containers import Horizontal, Vertical, VerticalScroll
    from textual.screen import Screen
    from textual.widgets import DataTable, Footer, Header, Input, OptionList, Sparkline, Static
    from textual.widgets.option_list import Option
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise TuiUnavailable(
        f"the dataset browser needs the tui extra ({exc}); install it with {TUI_INSTALL}"
    ) from exc


__all__ = [
    "PreviewApp",
    "PreviewError",
    "AudioOutput",
    "TuiUnavailable",
    "find_datasets",
    "parameter_lines",
    "export_example",
    "run_preview",
]

DEFAULT_PAGE_SIZE = 200
_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_MODULE_TITLES = {
    "osc": "Oscillator",
    "env": "Envelope",
    "lfo": "LFO",
    "random": "Random",
    "filter": "Filter",
    "macro_control": "Macro",
}


class PreviewError(SynthmatchError, ValueError):
    """A path the browser cannot open (no datasets in a folder, not a dataset file)."""


# ---------------------------------------------------------------------------------------------------
# pieces that need no terminal (tested directly)
def find_datasets(folder: str | os.PathLike) -> list[Path]:
    """The .h5 files in a folder and its subfolders, sorted by path."""
    root = Path(folder)
    return sorted(p for p in root.rglob("*.h5") if p.is_file() and not p.name.startswith("."))


def note_name(midi_note: int) -> str:
    """60 -> "C4" (Vital's and most DAWs' octave numbering)."""
    return f"{_NOTE_NAMES[midi_note % 12]}{midi_note // 12 - 1}"


def module_title(module: str) -> str:
    """osc_1 -> "Oscillator 1", filter_fx -> "Filter FX", macro_control_2 -> "Macro 2", eq -> "EQ"."""
    m = re.match(r"^([a-z_]+?)_(\d+)$", module)
    if m and m.group(1) in _MODULE_TITLES:
        return f"{_MODULE_TITLES[m.group(1)]} {m.group(2)}"
    return {"filter_fx": "Filter FX", "eq": "EQ", "global": "Global"}.get(module, module.title())


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


def _lines_to_text(lines: list[tuple[str, str]]) -> Text:
    styles = {"heading": "bold", "value": "", "init": "dim", "off": "dim italic"}
    text = Text()
    for style, line in lines:
        text.append(line + "\n", style=styles[style])
    return text


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


def _spectrogram_text(spec_db: np.ndarray, floor_db: float = 80.0) -> Text:
    """Two bands per character row with half blocks; brighter is louder (relative to the maximum)."""
    top = spec_db.max()
    level = np.clip((spec_db - (top - floor_db)) / floor_db, 0.0, 1.0)
    text = Text()
    n_bands = level.shape[0] - level.shape[0] % 2
    for row in range(n_bands - 1, 0, -2):  # highest bands first
        for col in range(level.shape[1]):
            text.append("▀", style=f"{_colour(level[row, col])} on {_colour(level[row - 1, col])}")
        text.append("\n")
    return text


def _colour(x: float) -> str:
    # black -> purple -> orange -> yellow (a coarse "magma")
    stops = ((0.0, (0, 0, 4)), (0.35, (114, 31, 129)), (0.7, (241, 96, 93)), (1.0, (252, 253, 191)))
    for (x0, c0), (x1, c1) in zip(stops, stops[1:]):
        if x <= x1:
            t = (x - x0) / (x1 - x0)
            r, g, b = (int(c0[i] + t * (c1[i] - c0[i])) for i in range(3))
            return f"rgb({r},{g},{b})"
    return "rgb(252,253,191)"


def _mono(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, np.float32)
    return a.mean(axis=0) if a.ndim == 2 else a


def export_example(ds: Dataset, index: int, folder: str | os.PathLike) -> Path:
    """Write example `index` to a WAV in `folder` at the dataset's sample rate; returns the path."""
    info = ds.row_info(index)
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", info["name"]).strip("-")[:40] or "example"
    path = Path(folder) / f"{ds.path.stem}_{index:06d}_{slug}_n{info['midi_note']}.wav"
    write_wav(path, ds.audio(index), ds.schema.sample_rate)
    return path


class AudioOutput:
    """Playback through sounddevice, or the reason there is none (`error`)."""

    def __init__(self) -> None:
        self.error: str | None = None
        self._sd = None
        try:
            import sounddevice as sd
        except ImportError:
            self.error = f"sounddevice is not installed ({TUI_INSTALL})"
            return
        except OSError as exc:  # the PortAudio library is missing
            self.error = f"no audio output ({exc})"
            return
        try:
            sd.query_devices(kind="output")
        except Exception as exc:  # sounddevice.PortAudioError, ValueError: no default output device
            self.error = f"no audio output device ({str(exc).strip() or type(exc).__name__})"
            return
        self._sd = sd

    @property
    def available(self) -> bool:
        return self._sd is not None

    def play(self, audio: np.ndarray, sample_rate: int) -> None:
        """Start playing (returns at once); `sample_rate` is the dataset's own."""
        if self._sd is None:
            raise PreviewError(self.error or "no audio output")
        a = np.asarray(audio, np.float32)
        self._sd.play(a.T if a.ndim == 2 else a, samplerate=int(sample_rate))

    def stop(self) -> None:
        if self._sd is not None:
            self._sd.stop()


# ---------------------------------------------------------------------------------------------------
# the app
@dataclass
class _Page:
    start: int
    rows: list[dict]


class DatasetPicker(Screen):
    """The .h5 files of a folder; Enter opens one."""

    BINDINGS = [Binding("escape", "app.pop_screen_if_open", "Back"), Binding("q", "app.quit", "Quit")]

    def __init__(self, folder: Path, files: list[Path]):
        super().__init__()
        self.folder, self.files = folder, files

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"{len(self.files)} datasets in {self.folder}: choose one (Enter)", id="picker-title")
        options = []
        for i, f in enumerate(self.files):
            options.append(Option(f"{f.relative_to(self.folder)}  ({_describe_file(f)})", id=str(i)))
        yield OptionList(*options, id="picker")
        yield Footer()

    @on(OptionList.OptionSelected, "#picker")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        app = cast("PreviewApp", self.app)  # this screen is only pushed by PreviewApp
        option_id = event.option.id
        assert option_id is not None  # every option is created with id=str(i)
        app.open_dataset(self.files[int(option_id)])


def _describe_file(path: Path) -> str:
    try:
        with Dataset(path) as ds:
            s = ds.schema
            return f"{len(ds)} examples, tier {s.tier}, {s.sample_rate} Hz"
    except DatasetError as exc:
        return f"not readable: {exc}"


class PreviewApp(App):
    """Browse a dataset file (or pick one of a folder's): table, parameters, waveform, playback."""

    TITLE = "synthmatch preview"
    CSS = """
    #left { width: 58; }
    #examples { height: 1fr; }
    #page, #status { height: 1; padding: 0 1; }
    #status { background: $boost; }
    #goto { display: none; }
    #goto.visible { display: block; }
    #info { height: auto; padding: 0 1; }
    #wave { height: 3; margin: 0 1; }
    #spectrogram { height: auto; padding: 0 1; }
    #params-scroll { height: 1fr; border-top: solid $primary; }
    #params { padding: 0 1; }
    """
    BINDINGS = [
        Binding("p", "play", "Play"),
        Binding("w", "export", "Export WAV"),
        Binding("a", "toggle_all", "All params"),
        Binding("]", "next_page", "Next page"),
        Binding("[", "prev_page", "Prev page"),
        Binding("g", "goto", "Go to #"),
        Binding("o", "pick", "Open file"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        path: str | os.PathLike,
        export_dir: str | os.PathLike = ".",
        page_size: int = DEFAULT_PAGE_SIZE,
        output: AudioOutput | None = None,
    ):
        super().__init__()
        self.path = Path(path)
        self.export_dir = Path(export_dir)
        self.page_size = max(1, int(page_size))
        self.output = output if output is not None else AudioOutput()
        self.ds: Dataset | None = None
        self.page = _Page(0, [])
        self.selected: int | None = None
        self.show_all = False
        self.status_text = ""
        self.last_export: Path | None = None
        self.params_plain = ""  # the parameter panel as plain text (what tests and screen readers see)
        if self.path.is_dir():
            self.files = find_datasets(self.path)
            if not self.files:
                raise PreviewError(f"{self.path}: no .h5 dataset files in this folder or below")
        elif self.path.exists():
            self.files = []
        else:
            raise PreviewError(f"{self.path}: no such file or folder")

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="left"):
                yield DataTable(id="examples", cursor_type="row", zebra_stripes=True)
                yield Static("", id="page")
                yield Input(placeholder="example index, Enter to go", id="goto", type="integer")
            with Vertical(id="right"):
                yield Static("", id="info")
                yield Sparkline([0.0], id="wave")
                yield Static("", id="spectrogram")
                with VerticalScroll(id="params-scroll"):
                    yield Static("", id="params")
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#examples", DataTable)
        table.add_columns("#", "source", "name", "note", "RMS dB")
        if self.files:
            if len(self.files) == 1:
                self.open_dataset(self.files[0])
            else:
                self.push_screen(DatasetPicker(self.path, self.files))
        else:
            self.open_dataset(self.path)

    def on_unmount(self) -> None:
        self.output.stop()
        if self.ds is not None:
            self.ds.close()

    # -- opening --------------------------------------------------------------------------------
    def open_dataset(self, path: Path) -> None:
        try:
            ds = Dataset(path)
        except DatasetError as exc:
            self.set_status(f"cannot open {path}: {exc}")
            if isinstance(self.screen, DatasetPicker):
                self.notify(str(exc), title="cannot open", severity="error")
                return
            raise
        if self.ds is not None:
            self.ds.close()
        self.ds = ds
        if isinstance(self.screen, DatasetPicker):
            self.pop_screen()
        s = ds.schema
        self.sub_title = (
            f"{path.name} · {len(ds):,} examples · tier {s.tier} · {s.sample_rate} Hz · {s.duration_s:g} s"
        )
        self.load_page(0)
        playback = (
            f"p plays at {s.sample_rate} Hz"
            if self.output.available
            else f"{self.output.error}: press w to export the example to a WAV file instead"
        )
        self.set_status(f"opened {path} ({len(ds):,} examples). {playback}")

    def action_pick(self) -> None:
        if len(self.files) > 1:
            self.push_screen(DatasetPicker(self.path, self.files))
        else:
            self.set_status("only one dataset here: open a folder of .h5 files to switch between them")

    def action_pop_screen_if_open(self) -> None:
        if self.ds is not None and isinstance(self.screen, DatasetPicker):
            self.pop_screen()

    # -- the table ------------------------------------------------------------------------------
    def load_page(self, start: int, select: int | None = None) -> None:
        assert self.ds is not None
        n = len(self.ds)
        start = max(0, min(start, max(0, n - 1)))
        start -= start % self.page_size
        rows = self.ds.row_infos(start, start + self.page_size)
        self.page = _Page(start, rows)
        table = self.query_one("#examples", DataTable)
        table.clear()
        for r in rows:
            table.add_row(
                str(r["index"]),
                r["source"],
                r["name"][:20],
                f"{r['midi_note']} {note_name(r['midi_note'])}",
                f"{r['rms_db']:.1f}",
                key=str(r["index"]),
            )
        pages = max(1, math.ceil(n / self.page_size))
        self.query_one("#page", Static).update(
            f"rows {start}-{start + len(rows) - 1} of {n:,} · page {start // self.page_size + 1}/{pages}"
            if rows
            else "the dataset is empty"
        )
        if rows:
            row = (select - start) if select is not None else 0
            table.move_cursor(row=row)
            self.show_example(start + row)
            table.focus()

    @on(DataTable.RowHighlighted, "#examples")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.page.rows and event.cursor_row is not None and 0 <= event.cursor_row < len(self.page.rows):
            self.show_example(self.page.start + event.cursor_row)

    def action_next_page(self) -> None:
        if self.ds is not None and self.page.start + self.page_size < len(self.ds):
            self.load_page(self.page.start + self.page_size)

    def action_prev_page(self) -> None:
        if self.ds is not None and self.page.start > 0:
            self.load_page(self.page.start - self.page_size)

    def action_goto(self) -> None:
        box = self.query_one("#goto", Input)
        box.add_class("visible")
        box.value = ""
        box.focus()

    @on(Input.Submitted, "#goto")
    def _goto(self, event: Input.Submitted) -> None:
        box = self.query_one("#goto", Input)
        box.remove_class("visible")
        if self.ds is None:
            return
        try:
            index = int(event.value)
        except ValueError:
            self.set_status(f"not an example index: {event.value!r}")
            return
        if not 0 <= index < len(self.ds):
            self.set_status(
                f"example {index} out of range: the dataset has {len(self.ds)} examples (0-{len(self.ds) - 1})"
            )
            self.query_one("#examples", DataTable).focus()
            return
        self.load_page(index, select=index)

    # -- the selected example ---------------------------------------------------------------------
    def show_example(self, index: int) -> None:
        if self.ds is None or index == self.selected:
            return
        self.selected = index
        ds = self.ds
        info = ds.row_info(index)
        audio = ds.audio(index)
        lines = [
            f"[b]#{index}[/b]  {_escape(info['name'])}  ({info['source']}"
            + (f", seed index {info['seed_index']}" if info["seed_index"] >= 0 else "")
            + ")",
            f"note {info['midi_note']} ({note_name(info['midi_note'])}) · RMS {info['rms_db']:.1f} dBFS · "
            f"peak {info['peak']:.2f} · {info['n_modulations']} modulation(s) · hash {info['preset_hash']}",
        ]
        if info["file"]:
            lines.append(f"file {_escape(info['file'])}")
        try:
            preset = ds.preset(index)
        except DatasetError as exc:
            preset = None
            self.params_plain = f"parameters unavailable: {exc}"
            self.query_one("#params", Static).update(Text(self.params_plain))
        if preset is not None:
            tables = preset.data.get("wavetables") or []
            names = ", ".join(str(t.get("name", "?")) for t in tables if isinstance(t, dict))
            sample = preset.data.get("sample")
            sample_name = sample.get("name", "?") if isinstance(sample, dict) else "none"
            lines.append(f"wavetables {_escape(names or 'none')} · sample {_escape(str(sample_name))}")
            self._show_params(preset)
        self.query_one("#info", Static).update("\n".join(lines))
        self.query_one("#wave", Sparkline).data = envelope(audio)
        self.query_one("#spectrogram", Static).update(
            _spectrogram_text(spectrogram(audio, ds.schema.sample_rate))
        )

    def _show_params(self, preset: Preset) -> None:
        assert self.ds is not None
        s = self.ds.schema
        lines = parameter_lines(preset, s.continuous_names + s.categorical_names, self.show_all)
        if not lines:
            lines = [("init", "every parameter is at Vital's init value")]
        self.params_plain = "\n".join(text for _, text in lines)
        self.query_one("#params", Static).update(_lines_to_text(lines))

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        if self.ds is not None and self.selected is not None:
            try:
                self._show_params(self.ds.preset(self.selected))
            except DatasetError as exc:
                self.set_status(str(exc))
        self.set_status(
            "showing every parameter (init values dimmed)"
            if self.show_all
            else "showing parameters that differ from init"
        )

    # -- sound ----------------------------------------------------------------------------------
    def action_play(self) -> None:
        if self.ds is None or self.selected is None:
            return
        rate = self.ds.schema.sample_rate
        if not self.output.available:
            self.set_status(
                f"cannot play example {self.selected} ({rate} Hz): {self.output.error}; "
                "press w to export it to a WAV file"
            )
            return
        self.output.play(self.ds.audio(self.selected), rate)
        self.set_status(f"playing example {self.selected} at {rate} Hz")

    def action_export(self) -> None:
        if self.ds is None or self.selected is None:
            return
        try:
            path = export_example(self.ds, self.selected, self.export_dir)
        except (OSError, SynthmatchError) as exc:
            self.set_status(f"export failed: {exc}")
            return
        self.last_export = path
        self.set_status(f"wrote {path} ({self.ds.schema.sample_rate} Hz)")

    def set_status(self, text: str) -> None:
        self.status_text = text
        self.query_one("#status", Static).update(Text(text))


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


def run_preview(
    path: str | os.PathLike, export_dir: str | os.PathLike = ".", page_size: int = DEFAULT_PAGE_SIZE
) -> None:
    """Open the browser on a dataset file, or on a folder (one file opens directly; several: a picker)."""
    app = PreviewApp(path, export_dir=export_dir, page_size=page_size)
    if not app.files:
        Dataset(path).close()  # a clear DatasetError before the terminal switches to the app
    app.run()
