"""`synthmatch preview`: the Textual browser driven headlessly with its pilot on real dataset files."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

pytest.importorskip("textual")

import soundfile as sf  # noqa: E402

from synthmatch.cli import main  # noqa: E402
from synthmatch.datagen.ingest import IngestConfig, ingest  # noqa: E402
from synthmatch.datagen.preview import (  # noqa: E402
    AudioOutput,
    DatasetPicker,
    PreviewApp,
    PreviewError,
    module_title,
    note_name,
    parameter_lines,
)
from synthmatch.datagen.sample import PresetSampler  # noqa: E402
from synthmatch.datagen.store import Dataset, DatasetSchema, DatasetWriter, ExampleRow  # noqa: E402
from synthmatch.synth.params import param_space  # noqa: E402
from synthmatch.synth.presets import Preset  # noqa: E402
from synthmatch.synth.render import Renderer  # noqa: E402
from tests.helpers import COMMUNITY_DIR  # noqa: E402

SAMPLE_RATE = 22050  # not 44100: playback and export must follow the file (the seed report's bug 6)
DURATION_S = 0.6


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A real 22050 Hz tier-3 file: 8 generated examples, then 2 community presets appended."""
    path = tmp_path_factory.mktemp("preview") / "small.h5"
    schema = DatasetSchema.for_tier(
        3, sample_rate=SAMPLE_RATE, duration_s=DURATION_S, note_duration_s=0.4, midi_notes=(60,)
    )
    sampler = PresetSampler(3, seed=7)
    examples = [sampler.sample(i) for i in range(8)]
    with Renderer(sample_rate=SAMPLE_RATE, n_threads=2) as r:
        results = r.render_batch([e.preset for e in examples], 60, 0.4, DURATION_S)
    with DatasetWriter(path, schema, atomic=True) as w:
        w.append(
            [
                ExampleRow.from_preset(e.preset, res.audio, schema, 60, e.source, seed_index=e.index)
                for e, res in zip(examples, results)
            ]
        )
    ingest(
        IngestConfig(
            inputs=(COMMUNITY_DIR / "Synkick.vital", COMMUNITY_DIR / "TechnoReese.vital"),
            output=path,
            append=True,
            progress=False,
        )
    )
    return path


def _run(app: PreviewApp, script) -> None:
    async def go():
        async with app.run_test(size=(150, 45)) as pilot:
            await pilot.pause()
            await script(pilot)

    asyncio.run(go())


def test_browse_rows_parameters_export_and_play(dataset, tmp_path):
    app = PreviewApp(dataset, export_dir=tmp_path / "wav", page_size=4)
    seen = {}

    async def script(pilot):
        table = app.query_one("#examples")
        assert app.selected == 0 and table.row_count == 4  # one page, read lazily
        assert "10 examples" in app.sub_title and f"{SAMPLE_RATE} Hz" in app.sub_title
        first_params = app.params_plain
        assert first_params.strip()
        await pilot.press("down", "down")
        await pilot.pause()
        assert app.selected == 2
        seen["params"] = app.params_plain
        assert seen["params"] != first_params
        # parameters in Vital's display text, grouped by module, init values hidden
        assert "Oscillator 1" in seen["params"] or "Oscillator 2" in seen["params"]
        assert any(unit in seen["params"] for unit in (" Hz", " ms", " dB", "%"))
        n_lines = len(app.params_plain.splitlines())
        await pilot.press("a")
        await pilot.pause()
        assert len(app.params_plain.splitlines()) > n_lines  # init values shown (dimmed)
        # paging: the next page holds rows 4-7; go to the last example with g
        await pilot.press("]")
        await pilot.pause()
        assert app.page.start == 4 and app.selected == 4
        await pilot.press("g", "9", "enter")
        await pilot.pause()
        assert app.page.start == 8 and app.selected == 9 and table.row_count == 2
        assert "TechnoReese" in app.query_one("#info").content
        assert "Modulation (" in app.params_plain  # tier 3: the preset's connections
        # playback at the dataset's rate; on a machine without an output device the status says so
        await pilot.press("p")
        await pilot.pause()
        seen["play"] = app.status_text
        await pilot.press("w")
        await pilot.pause()
        seen["export"] = app.status_text

    _run(app, script)
    assert f"{SAMPLE_RATE} Hz" in seen["play"]
    if not AudioOutput().available:
        assert "cannot play example 9" in seen["play"] and "press w to export" in seen["play"]
    wav = app.last_export
    assert wav is not None and wav.exists() and str(wav) in seen["export"]
    info = sf.info(str(wav))
    assert info.samplerate == SAMPLE_RATE and info.frames == int(DURATION_S * SAMPLE_RATE)
    with Dataset(dataset) as ds:
        data, _ = sf.read(str(wav), dtype="float32")
        assert abs(float(abs(data).max()) - ds.row_info(9)["peak"]) < 1e-3


def test_status_line_without_an_output_device(dataset):
    out = AudioOutput()
    if out.available:
        pytest.skip("this machine has an audio output device")
    assert out.error
    app = PreviewApp(dataset)

    async def script(pilot):
        assert "press w to export" in app.status_text and out.error in app.status_text

    _run(app, script)


def test_folder_with_several_datasets_opens_a_picker(dataset, tmp_path):
    folder = tmp_path / "data"
    (folder / "more").mkdir(parents=True)
    shutil.copy(dataset, folder / "a.h5")
    shutil.copy(dataset, folder / "more" / "b.h5")
    (folder / "notes.txt").write_text("ignored")
    app = PreviewApp(folder)

    async def script(pilot):
        assert isinstance(app.screen, DatasetPicker)
        assert app.ds is None
        await pilot.press("down", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, DatasetPicker)
        assert app.ds is not None and app.ds.path.name == "b.h5" and app.selected == 0
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, DatasetPicker)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, DatasetPicker)

    _run(app, script)


def test_folder_with_one_dataset_opens_it(dataset, tmp_path):
    shutil.copy(dataset, tmp_path / "only.h5")
    app = PreviewApp(tmp_path)

    async def script(pilot):
        assert app.ds is not None and app.ds.path.name == "only.h5"

    _run(app, script)


def test_bad_paths_are_clear_errors(tmp_path, capsys):
    with pytest.raises(PreviewError, match="no .h5 dataset"):
        PreviewApp(tmp_path)
    with pytest.raises(PreviewError, match="no such file"):
        PreviewApp(tmp_path / "missing.h5")
    assert main(["preview", str(tmp_path / "missing.h5")]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "Traceback" not in err
    (tmp_path / "fake.h5").write_text("not hdf5")
    assert main(["preview", str(tmp_path / "fake.h5")]) == 2
    assert "not a readable HDF5 file" in capsys.readouterr().err


def test_parameter_lines_group_by_module_and_skip_init_values():
    ps = param_space()
    names = ps.tier(2).continuous + ps.tier(2).categorical
    init_lines = parameter_lines(Preset.init(), names)
    assert [style for style, _ in init_lines] == ["off"] and "Oscillator 2" in init_lines[0][1]
    changed = Preset.init().with_values(filter_1_on=1, filter_1_cutoff=100.0, reverb_on=0)
    lines = parameter_lines(changed, names)
    assert ("heading", "Filter 1") in lines
    cutoff = [text for style, text in lines if "Filter 1 Cutoff" in text]
    assert cutoff and cutoff[0].rstrip().endswith("kHz")
    everything = parameter_lines(changed, names, show_all=True)
    assert len(everything) > len(lines) and any(style == "init" for style, _ in everything)
    assert ("off", "Chorus: off") in everything
    assert module_title("osc_2") == "Oscillator 2" and module_title("macro_control_3") == "Macro 3"
    assert module_title("filter_fx") == "Filter FX" and note_name(60) == "C4" and note_name(69) == "A4"
