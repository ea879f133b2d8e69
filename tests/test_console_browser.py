"""The web console end to end in headless Chromium (Debian ``chromium`` + ``chromium-driver``,
installed by scripts/install-system-deps.sh; nothing is downloaded), driven by selenium.

The server is the real stack of tests/http_stack.py with a bearer token configured, so
the page first asks for the token. Then: Chinese text, an emotion, Listen → the
``<audio>`` element holds a playable WAV; bad input → a clear error; Announce → the
recent list shows it ``finished``. The history view: filtered by target and source, its rows
say who announced what and how each speaker ended; Export gives the CSV. A screenshot is saved under the test's tmp dir
(and to docs/console.png when ``ANNOUNCER_UPDATE_SCREENSHOT=1``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_stack import TOKEN, Stack, start_stack
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

pytestmark = pytest.mark.timeout(120)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = "chromium and chromium-driver are needed: run scripts/install-system-deps.sh"
TEXT = "各位旅客请注意，开往北京的列车即将进站。"
DOCS_SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "console.png"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = start_stack(tmp_path / "stack", http=f"tokens: [{TOKEN}]")
    yield s
    s.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail(INSTALL_HINT, pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1000,1300",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_console_listen_and_announce(stack: Stack, browser: webdriver.Chrome, tmp_path: Path) -> None:
    wait = WebDriverWait(browser, 30)
    browser.get(stack.url + "/")

    # a token is configured: the page asks for it and keeps it in localStorage
    wait.until(EC.visibility_of_element_located((By.ID, "token-panel")))
    browser.find_element(By.ID, "token-input").send_keys(TOKEN)
    browser.find_element(By.ID, "token-save").click()
    wait.until(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
    assert browser.execute_script("return localStorage.getItem('announcer.token')") == TOKEN
    assert not browser.find_element(By.ID, "token-panel").is_displayed()

    # the pickers come from /api/info
    emotions = [o.get_attribute("value") for o in Select(browser.find_element(By.ID, "emotion")).options]
    assert emotions == ["neutral", "happy", "sad", "angry", "fearful", "surprised"]
    targets = {
        b.get_attribute("value"): b.is_selected() for b in browser.find_elements(By.CSS_SELECTOR, "#target-list input")
    }
    assert targets == {"lobby": True, "archive": False, "ward-3": False}
    assert Select(browser.find_element(By.ID, "voice")).first_selected_option.get_attribute("value") == "baker"

    # bad input: a clear error naming the field
    browser.find_element(By.ID, "listen").click()
    error = wait.until(EC.visibility_of_element_located((By.ID, "error")))
    assert "text" in error.text and "错误 Error" in error.text

    # Chinese text, an emotion, Listen: the <audio> element gets a playable WAV
    browser.find_element(By.ID, "text").send_keys(TEXT)
    assert browser.find_element(By.ID, "text").get_attribute("value") == TEXT
    Select(browser.find_element(By.ID, "emotion")).select_by_value("happy")
    browser.execute_script(
        "const s = document.getElementById('speed'); s.value = '1.1';s.dispatchEvent(new Event('input'));"
    )
    browser.find_element(By.ID, "listen").click()
    duration = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const audio = document.getElementById('player');
        const ready = () => audio.src.startsWith('blob:') && audio.readyState >= 1 && audio.duration > 0;
        if (ready()) { done(audio.duration); return; }
        const t0 = Date.now();
        (function poll() {
          if (ready()) done(audio.duration);
          else if (Date.now() - t0 > 25000) done(-1);
          else setTimeout(poll, 50);
        })();
    """)
    assert duration > 1.0, "the audio element never got playable WAV data"
    assert not browser.find_element(By.ID, "error").is_displayed()
    header = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(document.getElementById('player').src).then(r => r.arrayBuffer()).then(b => {
          const t = new TextDecoder('ascii');
          done([t.decode(b.slice(0, 4)), t.decode(b.slice(8, 12)), b.byteLength]);
        }).catch(e => done([String(e), '', 0]));
    """)
    assert header[0] == "RIFF" and header[1] == "WAVE" and header[2] > 10_000
    link = browser.find_element(By.ID, "download")
    assert link.get_attribute("href").startswith("blob:") and link.get_attribute("download").endswith(".wav")
    assert "Hz" in browser.find_element(By.ID, "audio-info").text

    # Announce on lobby + archive: the live list reaches finished
    browser.find_element(By.CSS_SELECTOR, "#target-list input[value=archive]").click()
    browser.find_element(By.ID, "announce").click()
    item = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "#recent li[data-state=finished]")))
    assert TEXT in item.text and "完成 finished" in item.text
    ann_id = item.get_attribute("data-id")
    for speaker in ("lobby", "archive"):
        assert (stack.root / speaker / f"{ann_id}.wav").exists()
    with stack.client(TOKEN) as c:
        record = c.get(f"/announcements/{ann_id}").json()
    assert record["emotion"] == "happy" and record["source"] == "http"

    shot = tmp_path / "console.png"
    browser.execute_script("window.scrollTo(0, 0)")
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("ANNOUNCER_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, DOCS_SCREENSHOT)

    # usable on a phone: no sideways scrolling at 390 px
    browser.set_window_size(390, 844)
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    browser.save_screenshot(str(tmp_path / "console-phone.png"))


def open_console(stack: Stack, browser: webdriver.Chrome) -> WebDriverWait:
    wait = WebDriverWait(browser, 30)
    browser.get(stack.url + "/")
    wait.until(EC.visibility_of_element_located((By.ID, "token-panel")))
    browser.find_element(By.ID, "token-input").send_keys(TOKEN)
    browser.find_element(By.ID, "token-save").click()
    wait.until(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
    return wait


def test_console_history_view(stack: Stack, browser: webdriver.Chrome, tmp_path: Path) -> None:
    ids = {}
    with stack.client(TOKEN) as c:
        for target, text in (("archive", "档案室请注意"), ("lobby", "大厅请注意")):
            r = c.post("/announce", json={"text": text, "targets": target})
            assert r.status_code == 202, r.text
            ids[target] = r.json()["id"]
            stack.wait_state(c, ids[target])
        rejected = c.post("/announce", json={"text": "速度", "speed": 9, "targets": "archive"})
        assert rejected.status_code == 400
    assert stack.history.flush()
    wait = open_console(stack, browser)
    targets = [o.get_attribute("value") for o in Select(browser.find_element(By.ID, "history-target")).options]
    assert targets == ["", "lobby", "archive", "ward-3"]
    Select(browser.find_element(By.ID, "history-target")).select_by_value("archive")
    Select(browser.find_element(By.ID, "history-source")).select_by_value("http")
    browser.find_element(By.ID, "history-search").click()
    row = wait.until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, f"#history-rows tr[data-id='{ids['archive']}']"))
    )
    assert "档案室请注意" in row.text and "http (user=token #1)" in row.text and "archive: finished" in row.text
    shown = [r.get_attribute("data-id") for r in browser.find_elements(By.CSS_SELECTOR, "#history-rows tr")]
    assert ids["lobby"] not in shown  # filtered by target
    bad = browser.find_element(By.CSS_SELECTOR, "#history-rows tr[data-state=rejected]")
    assert "speed: 9 is out of range" in bad.text
    browser.find_element(By.ID, "history-csv").click()
    wait.until(lambda d: d.find_element(By.ID, "history-csv-link").get_attribute("href").startswith("blob:"))
    csv_text = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(document.getElementById('history-csv-link').href).then(r => r.text()).then(done)
          .catch(e => done(String(e)));
    """)
    lines = csv_text.splitlines()
    assert lines[0].startswith("received,received_local,id,source,via,text")
    assert any(ids["archive"] in line and "archive,finished" in line for line in lines[1:])
    browser.execute_script("document.getElementById('history').scrollIntoView()")
    browser.save_screenshot(str(tmp_path / "console-history.png"))
    browser.set_window_size(390, 844)
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0  # the table scrolls inside its card, the page does not
