"""The dataset browser (`synthmatch preview`): a Textual app to look at and listen to any dataset file.

A paged table of examples (index, source, name, MIDI note, RMS), and for the selected example its
parameters in Vital's own display text grouped by module (controls at their init value hidden, or shown
dimmed with `a`), its modulation connections, a waveform envelope and a small spectrogram. Rows are read
a page at a time and one example's audio on selection, so a file of any size opens at once.

Playback uses the dataset's own sample rate from its schema (the seed report's bug 6: it was fixed at 44.1 kHz), through
`sounddevice` when an output device exists. Without one (servers, containers) the status line says so,
and `w` exports the example to a WAV file at the dataset's sample rate instead.

Needs the `tui` extra (textual, sounddevice): `pip install 'synthmatch[tui]'`.

One module per job: `panels` (what is shown, computed without a terminal), `output` (playback and WAV
export), `errors`, and `app` (the Textual screens; importing it without textual raises TuiUnavailable).
"""

from __future__ import annotations

from synthmatch.audio.pitch import note_name

from .app import DEFAULT_PAGE_SIZE, DatasetPicker, PreviewApp, find_datasets, run_preview
from .errors import TUI_INSTALL, PreviewError, TuiUnavailable
from .output import AudioOutput, export_example
from .panels import envelope, module_title, parameter_lines, spectrogram

__all__ = [
    "PreviewApp",
    "PreviewError",
    "AudioOutput",
    "TuiUnavailable",
    "find_datasets",
    "parameter_lines",
    "export_example",
    "run_preview",
    "DatasetPicker",
    "note_name",
    "module_title",
    "envelope",
    "spectrogram",
    "DEFAULT_PAGE_SIZE",
    "TUI_INSTALL",
]
