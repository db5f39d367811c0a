"""End to end: the demo served on a free localhost port, driven in headless chromium by Playwright.

Uses Debian's chromium (.ci/run installs it), never a browser downloaded by `playwright install`. A
screenshot of the refined match is saved to test-artifacts/web/ (git-ignored) and its path printed.
"""

from __future__ import annotations

import re
import shutil
import socket
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
    for key in ("initial loss", "final loss", "evaluations", "time", "improved"):
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
    distances = [float(d) for d in re.findall(r"^\s*\d\s+(\d+\.\d+)", listing, re.M)]
    assert len(distances) == n and distances == sorted(distances), listing
    assert "vital_pluck_C4.2.vital" in listing
    for rank in range(2, n + 1):
        audio = page.locator(f"#candidate-{rank}-audio a[download]")
        assert audio.get_attribute("href").endswith(f".{rank}.wav")
        assert f"distance {distances[rank - 1]:.3f}" in page.inner_text(f"#candidate-{rank}-audio")
        href = page.locator(f"#candidate-{rank}-file a[download]").get_attribute("href")
        assert href.endswith(f".{rank}.vital")
    for rank in range(n + 1, 4):  # no player for a candidate that is not there
        assert page.locator(f"#candidate-{rank}-audio").count() == 0 or not page.is_visible(
            f"#candidate-{rank}-audio"
        )
    assert "for all candidates" in page.inner_text("#refine-stats")


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
