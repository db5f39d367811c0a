"""End to end: the demo served on a free localhost port, driven in headless chromium by Playwright.

Uses Debian's chromium (.ci/run installs it), never a browser downloaded by `playwright install`.
Screenshots are saved to test-artifacts/web/ (git-ignored) and their paths printed: demo_refined.png (the
whole page of a refined match) and demo_result.png (the result of a match with candidates, a 256-colour
PNG under 300 KB). docs/demo_result.png is a copy of the latter, made with

    pytest tests/web/test_app.py -k candidates && cp test-artifacts/web/demo_result.png docs/
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synthmatch.synth.presets import Preset
from tests.helpers import EXAMPLES_DIR, REPO

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARTIFACTS = REPO / "test-artifacts" / "web"
PLUCK = EXAMPLES_DIR / "vital_pluck_C4.wav"
TIMEOUT_MS = 180_000  # a match on a loaded 2-core machine; typically 2-6 s

pytestmark = [
    pytest.mark.slow,
    # gradio's own use of pandas, not ours
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting:Warning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:Warning"),
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from synthmatch.web.app import launch
    from synthmatch.web.demo import DemoConfig

    cfg = DemoConfig(
        port=_free_port(),
        workers=2,
        max_upload_mb=1.0,
        refine_evals=32,
        temp_dir=tmp_path_factory.mktemp("web"),
    )
    running = launch(cfg, block=False)
    assert running.url.startswith("http://127.0.0.1:")  # localhost only by default
    yield running
    running.close()
    assert not running.demo.root.exists()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # a fake microphone (a beep each second) for the recording test, granted without a prompt
        args = ["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
        args.append("--autoplay-policy=no-user-gesture-required")  # the A/B and note players play at once
        b = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield b
        b.close()


@pytest.fixture
def page(server, browser):
    page = browser.new_page(
        viewport={"width": 1280, "height": 1400}, accept_downloads=True, permissions=["microphone"]
    )
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url)
    page.wait_for_selector("#match-button")
    yield page
    page.close()


def _upload(page, path: Path) -> None:
    page.locator("#target-audio input[type=file]").set_input_files(str(path))
    # the upload reached the server once the input offers it back as a download
    page.wait_for_selector("#target-audio a[download][href*='/file=']")


def _match_and_wait(page, text: str) -> str:
    """Press Match and wait until the status box says `text` (or reports a failure); returns the status."""
    page.click("#match-button")
    page.wait_for_function(
        "ts => ts.some(t => document.querySelector('#status').innerText.includes(t))",
        arg=[text, "Could not match", "Something went wrong"],
        timeout=TIMEOUT_MS,
    )
    status = page.inner_text("#status")
    assert text in status, status
    return status


def _ab_state(page) -> dict:
    """Which side of the A/B player is selected, and each side's audio element's state."""
    return page.evaluate(
        """() => {
            const ab = document.querySelector('#ab-player .ab');
            const side = s => {
                const a = document.querySelector(`#ab-player audio[data-side="${s}"]`);
                return {paused: a.paused, t: a.currentTime, loop: a.loop};
            };
            const name = s => ab.querySelector(`.ab-side[data-side="${s}"] .ab-name`).textContent;
            return {active: ab.dataset.active, a: side('a'), b: side('b'), a_name: name('a'), b_name: name('b')};
        }"""
    )


def _ab_sound(page, side: str) -> tuple[np.ndarray, int]:
    """The sound one side of the A/B player plays (inlined in the page as a data: URL)."""
    src = page.get_attribute(f"#ab-player audio[data-side={side}]", "src")
    header, data = src.split(",", 1)
    assert header == "data:audio/wav;base64"
    return sf.read(io.BytesIO(base64.b64decode(data)))


def _choose_note(page, label: str) -> None:
    page.click("#play-note input")
    page.locator("#play-note li", has_text=label).click()


def _wait_idle(page, selector: str) -> None:
    """Until the component's progress overlay is gone (it greys the component out while it updates)."""
    page.wait_for_function(
        "sel => [...document.querySelectorAll(sel + ' [data-testid=status-tracker]')]"
        ".every(s => s.classList.contains('hide'))",
        arg=selector,
    )


def _save_result_screenshot(page, path: Path) -> None:
    """The page from its top to the spectrograms, as a 256-colour PNG (well under 300 KB)."""
    from PIL import Image

    box = page.locator("#spectrograms").bounding_box()
    width = page.viewport_size["width"]
    png = page.screenshot(
        full_page=True, clip={"x": 0, "y": 0, "width": width, "height": box["y"] + box["height"] + 12}
    )
    Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256).save(path, optimize=True)


def test_recorded_sound_is_matched(server, page):
    page.locator("#target-audio button[aria-label='Record audio']").click()
    page.locator("#target-audio button", has_text="Record").first.click()
    page.wait_for_timeout(1500)  # chromium's fake microphone beeps once a second
    page.locator("#target-audio button", has_text="Stop").first.click()
    page.wait_for_selector("#target-audio a[download][href*='/file=']")
    status = _match_and_wait(page, "Matched")
    assert ".wav at MIDI note" in status
    assert page.locator("#preset-file a[download]").get_attribute("href").endswith(".vital")


def test_match_without_and_with_refinement(server, page, tmp_path):
    _upload(page, PLUCK)
    status = _match_and_wait(page, "Matched")
    assert "vital_pluck_C4.wav" in status and "MIDI note" in status and "refined" not in status
    assert "Refinement: off" in page.inner_text("#refine-stats")

    # the matched audio is a real WAV the page can fetch
    wav_href = page.locator("#match-audio a[download]").get_attribute("href")
    assert wav_href.endswith(".wav")
    wav = page.request.get(wav_href)
    assert wav.ok and wav.body()[:4] == b"RIFF"
    # the spectrograms and the tutorial are shown
    assert page.locator("#spectrograms img").count() == 1
    assert "Rebuilding vital_pluck_C4.wav in Vital" in page.inner_text("#tutorial")
    # the .vital download is a preset Vita reads back
    with page.expect_download() as download:
        page.locator("#preset-file a[download]").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "vital_pluck_C4.vital"
    assert Preset.load(saved).name == "synthmatch vital_pluck_C4"

    # now with CMA-ES refinement and a small budget; record the progress text the page shows meanwhile
    page.check("#refine input[type=checkbox]")
    budget = page.locator("#refine-evals input[type=number]")
    budget.fill("24")
    budget.press("Enter")
    page.evaluate(
        """() => {
            window.__progress = [];
            new MutationObserver(() => {
                const m = document.body.innerText.match(/CMA-ES refinement: \\d+\\/\\d+ evaluations[^\\n]*/);
                if (m) window.__progress.push(m[0]);
            }).observe(document.body, {subtree: true, childList: true, characterData: true});
        }"""
    )
    status = _match_and_wait(page, "refined with CMA-ES")
    assert "Matched" in status
    progress = page.evaluate("window.__progress")
    assert progress and all(re.search(r"/24 evaluations", p) for p in progress)
    stats = page.inner_text("#refine-stats")
    for key in ("search loss at the start", "search loss at the end", "evaluations", "time", "improved"):
        assert key in stats
    n_evals = int(re.search(r"evaluations\s+(\d+)", stats).group(1))
    assert 1 < n_evals <= 24
    assert page.locator("#match-audio a[download]").get_attribute("href").endswith(".wav")
    assert page.locator("#preset-file a[download]").count() == 1
    page.get_by_role("tab", name="Parameters").click()
    table = page.inner_text("#parameters")
    assert "Vital's init" in table and "confidence" in table
    if re.search(r"improved\s+yes", stats):  # refinement moved the init preset's oscillator or envelope
        assert "Envelope 1" in table or "Oscillator 1" in table

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "demo_refined.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_refinement_with_a_larger_budget_lists_ranked_candidates(server, page):
    """From 100 renders up a match has several starts: the page lists the distinct candidates, best
    first, and gives each after the first its own player and .vital download."""
    _upload(page, PLUCK)
    page.check("#refine input[type=checkbox]")
    budget = page.locator("#refine-evals input[type=number]")
    budget.fill("120")
    budget.press("Enter")
    _match_and_wait(page, "refined with CMA-ES")
    listing = page.inner_text("#candidates")
    n = int(re.search(r"(\d+) candidates", listing).group(1))
    assert 2 <= n <= 3, listing
    rows = re.findall(r"^\s*\d\s+(\d+)/100 \(([a-z ]+)\)\s+(\d+\.\d+)", listing, re.M)  # the verdicts
    distances = [float(d) for _, _, d in rows]
    assert len(distances) == n and distances == sorted(distances), listing
    assert [int(s) for s, _, _ in rows] == sorted((int(s) for s, _, _ in rows), reverse=True)
    assert f"distance {distances[0]:.3f}" in page.inner_text("#status h3")  # the best is the match above
    assert "vital_pluck_C4.2.vital" in listing
    for rank in range(2, n + 1):
        audio = page.locator(f"#candidate-{rank}-audio a[download]")
        assert audio.get_attribute("href").endswith(f".{rank}.wav")
        label = page.inner_text(f"#candidate-{rank}-audio")
        assert (
            f"similarity {rows[rank - 1][0]}/100 ({rows[rank - 1][1]}), distance {distances[rank - 1]:.3f}"
            in label
        )
        links = page.locator(f"#candidate-{rank}-file a[download]")
        names = sorted(Path(links.nth(i).get_attribute("href")).name for i in range(links.count()))
        assert names == [f"vital_pluck_C4.{rank}.vital", f"vital_pluck_C4.{rank}.zip"]
    for rank in range(n + 1, 4):  # no player for a candidate that is not there
        assert page.locator(f"#candidate-{rank}-audio").count() == 0 or not page.is_visible(
            f"#candidate-{rank}-audio"
        )
    assert "for all candidates" in page.inner_text("#refine-stats")
    _choose_note(page, "G4 (MIDI 67)")  # for the screenshot: the note player holding a sound
    page.wait_for_selector("#note-audio a[download][href*='.note67.wav']")
    _wait_idle(page, "#note-audio")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "demo_result.png"
    _save_result_screenshot(page, shot)
    assert 10_000 < shot.stat().st_size < 300_000
    print(f"screenshot: {shot}")

    # B can be any candidate; the note menu then plays that one
    assert page.is_visible("#ab-choice")
    page.locator("#ab-choice label", has_text="candidate 2").click()
    page.wait_for_function(
        "() => document.querySelector('#ab-player .ab-side[data-side=b] .ab-name').textContent === 'candidate 2'"
    )
    assert f"distance {distances[1]:.3f}" in page.inner_text("#ab-player")
    page.wait_for_selector("#note-audio a[download][href*='.2.note67.wav']")


def test_too_short_file_shows_a_readable_error(server, page, tmp_path):
    short = tmp_path / "blip.wav"
    sf.write(short, (0.5 * np.sin(np.arange(500) / 8)).astype(np.float32), 44100)
    _upload(page, short)
    status = _match_and_wait(page, "Could not match")
    assert "blip.wav: too short to match" in status and "at least 46.4 ms" in status
    body = page.inner_text("body")
    assert "Traceback" not in body and str(tmp_path) not in body
    assert page.locator("#preset-file a[download]").count() == 0


def test_too_large_upload_is_refused(server, page, tmp_path):
    big = tmp_path / "big.wav"
    sf.write(big, np.zeros((300_000, 1), np.float32) + 0.1, 44100, subtype="FLOAT")  # 1.2 MB > 1 MB
    page.locator("#target-audio input[type=file]").set_input_files(str(big))
    page.wait_for_function(
        "() => document.body.innerText.includes('exceed the maximum allowed size')", timeout=30_000
    )
    status = _match_and_wait(page, "Could not match")
    assert "upload a sound file or record one" in status


def test_ab_players_another_note_and_downloads(server, page, tmp_path):
    """The listening controls: target and match side by side at one loudness, one button switching which
    plays at the same moment, a loop; the match at another note; one zip with everything."""
    _upload(page, PLUCK)
    _match_and_wait(page, "Matched")
    heading = page.inner_text("#status h3")
    assert re.fullmatch(r"similarity \d+/100 \([a-z ]+\), distance \d+\.\d{3}", heading), heading

    levels = []
    for side in "ab":
        audio, sr = _ab_sound(page, side)
        assert sr == 44100 and np.abs(audio).max() < 0.98  # no clipping
        levels.append(20 * np.log10(np.sqrt(np.mean(np.square(audio)))))
    assert abs(levels[0] - levels[1]) < 0.1, levels  # equal loudness
    state = _ab_state(page)
    assert (state["a_name"], state["b_name"], state["active"]) == ("target", "match", "a")
    assert state["a"]["paused"] and state["b"]["paused"] and state["a"]["loop"] and state["b"]["loop"]

    page.click("#ab-player [data-ab=play]")
    page.wait_for_function(
        "() => document.querySelector('#ab-player audio[data-side=a]').currentTime > 0.3", timeout=20_000
    )
    page.click("#ab-player [data-ab=switch]")
    state = _ab_state(page)
    assert state["active"] == "b" and state["a"]["paused"] and not state["b"]["paused"], state
    assert -0.01 < state["b"]["t"] - state["a"]["t"] < 0.3, state  # B took over where A stopped
    assert "playing B: match" in page.inner_text("#ab-player .ab-now")
    page.click("#ab-player [data-ab=switch]")
    state = _ab_state(page)
    assert state["active"] == "a" and not state["a"]["paused"] and state["b"]["paused"], state
    # starting B from its own controls pauses A and selects B
    page.evaluate("() => document.querySelector('#ab-player audio[data-side=b]').play()")
    page.wait_for_function("() => document.querySelector('#ab-player .ab').dataset.active === 'b'")
    state = _ab_state(page)
    assert state["a"]["paused"] and not state["b"]["paused"], state
    page.uncheck("#ab-player [data-ab=loop]")
    state = _ab_state(page)
    assert not state["a"]["loop"] and not state["b"]["loop"]
    page.click("#ab-player [data-ab=play]")
    assert _ab_state(page)["b"]["paused"]

    # another note: each choice renders the preset afresh and plays it
    match_wav = page.request.get(page.locator("#match-audio a[download]").get_attribute("href")).body()
    heard = []
    for label, midi in (("G4 (MIDI 67)", 67), ("C3 (MIDI 48)", 48)):
        _choose_note(page, label)
        page.wait_for_selector(f"#note-audio a[download][href$='.note{midi}.wav']")
        assert f"match at {label}" in page.inner_text("#note-audio")
        wav = page.request.get(page.locator("#note-audio a[download]").get_attribute("href")).body()
        assert wav[:4] == b"RIFF" and wav != match_wav
        heard.append(wav)  # (that the render is at the note asked: tests/web/test_demo.py measures its pitch)
    assert heard[0] != heard[1]

    # one zip: the .vital, the WAV, the tutorial (and the spectrograms)
    with page.expect_download() as download:
        page.locator("#bundle-file a[download]").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "vital_pluck_C4.zip"
    with zipfile.ZipFile(saved) as z:
        assert {"vital_pluck_C4.vital", "vital_pluck_C4.wav", "vital_pluck_C4.md"} <= set(z.namelist())
        z.extractall(tmp_path / "zip")
        assert "# Rebuilding vital_pluck_C4.wav in Vital" in z.read("vital_pluck_C4.md").decode()
        assert z.read("vital_pluck_C4.wav")[:4] == b"RIFF"
    assert Preset.load(tmp_path / "zip" / "vital_pluck_C4.vital").name == "synthmatch vital_pluck_C4"

    body = page.inner_text("body")  # no path of the server's machine (the model's, the temporary files')
    assert str(REPO) not in body and str(server.demo.root) not in body and "/tmp/" not in body
    assert "the bundled default model" in body
    assert str(server.demo.root) not in page.content()  # not even in a link: the page has Gradio's copies
