"""The Textual app: `PreviewApp` (table, parameters, waveform, playback), the file picker, `run_preview`."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from synthmatch.audio.pitch import note_name
from synthmatch.datagen.store import Dataset, DatasetError
from synthmatch.errors import SynthmatchError
from synthmatch.synth.presets import Preset

from .errors import TUI_INSTALL, PreviewError, TuiUnavailable
from .output import AudioOutput, export_example
from .panels import envelope, parameter_lines, spectrogram

log = logging.getLogger("synthmatch.datagen.preview")

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


DEFAULT_PAGE_SIZE = 200


def find_datasets(folder: str | os.PathLike) -> list[Path]:
    """The .h5 files in a folder and its subfolders, sorted by path."""
    root = Path(folder)
    return sorted(p for p in root.rglob("*.h5") if p.is_file() and not p.name.startswith("."))


def _lines_to_text(lines: list[tuple[str, str]]) -> Text:
    styles = {"heading": "bold", "value": "", "init": "dim", "off": "dim italic"}
    text = Text()
    for style, line in lines:
        text.append(line + "\n", style=styles[style])
    return text


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
