"""End to end: ``uir serve`` in a subprocess, its page driven by a real headless Chromium through Selenium.

Skipped when selenium, Chromium or chromedriver is missing (``apt-get install chromium chromium-driver``). Set
``UIR_SCREENSHOT=docs/serve-page.png`` to also save a 1280×900 screenshot of the page with its result.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("multipart")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install selenium")

from selenium.common.exceptions import SessionNotCreatedException, WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLEAN = ROOT / "examples" / "clean" / "chelsea.png"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
WINDOW = (1280, 900)
# The page's blob: URLs are only readable from inside the page; the result comes back as a data: URL.
FETCH_AS_DATA_URL = """
const [url, done] = arguments;
fetch(url).then((r) => r.blob()).then((blob) => {
  const reader = new FileReader();
  reader.onload = () => done(reader.result);
  reader.readAsDataURL(blob);
}).catch((err) => done("error: " + err));
"""
IMAGE_STATE = """
return [...arguments[0].querySelectorAll(".compare img")].map(
  (img) => [img.className, img.complete, img.naturalWidth, img.naturalHeight]);
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``uir serve`` with the shipped model (torch engine, one thread) on a free port; its base URL once healthy."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "uir", "serve", "--port", str(port), "--engine", "torch"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"uir serve exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"uir serve not healthy after 60 s:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Chromium through the system chromedriver; Selenium Manager is kept offline (it downloads nothing)."""
    binary = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip("needs Chromium and chromedriver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")
        try:
            driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
        except SessionNotCreatedException as err:
            pytest.skip(f"Chromium would not start under chromedriver: {err.msg}")
        try:
            driver.set_script_timeout(30)
            # --window-size counts the window's frame: grow it until the page itself is WINDOW.
            frame = driver.execute_script("return [outerWidth - innerWidth, outerHeight - innerHeight]")
            driver.set_window_size(WINDOW[0] + frame[0], WINDOW[1] + frame[1])
            yield driver
        finally:
            driver.quit()


@pytest.fixture(scope="module")
def noisy_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``chelsea_noisy.png``: the example photo with seeded Gaussian noise (σ 25), something to restore."""
    clean = np.asarray(Image.open(CLEAN).convert("RGB"), dtype=np.float64)
    noise = np.random.default_rng(0).normal(0.0, 25.0, clean.shape)
    path = tmp_path_factory.mktemp("photo") / "chelsea_noisy.png"
    Image.fromarray(np.clip(clean + noise, 0, 255).round().astype(np.uint8)).save(path)
    return path


def test_page_restores_an_uploaded_photo(browser: webdriver.Chrome, server: str, noisy_photo: Path) -> None:
    """Upload through ``input#files``; check the comparison, the slider, what the model saw and the download."""
    size = Image.open(noisy_photo).size
    browser.get(server + "/")
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_element(By.ID, "model").text not in ("", "…"))
    browser.find_element(By.ID, "files").send_keys(str(noisy_photo))

    card = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#results .card"))
    assert card.find_element(By.CSS_SELECTOR, ".name").text == noisy_photo.name
    status = wait.until(lambda d: card.find_element(By.CSS_SELECTOR, ".status.done, .status.error"))
    message = status.find_element(By.CSS_SELECTOR, ".message").text
    assert "error" not in status.get_attribute("class"), message
    assert re.fullmatch(r"Done in \d+\.\d s", message), message
    assert not card.find_element(By.CSS_SELECTOR, ".spinner").is_displayed()

    images = wait.until(lambda d: (s := d.execute_script(IMAGE_STATE, card)) and all(i[1] for i in s) and s)
    assert images == [["before", True, *size], ["after", True, *size]]
    _check_slider(browser, card)
    _check_seen(card, browser.find_element(By.ID, "model").text, size)
    _check_download(browser, card, size, noisy_photo.stem)

    if screenshot := os.environ.get("UIR_SCREENSHOT"):
        browser.execute_script("document.activeElement.blur(); window.scrollTo(0, 0);")
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(screenshot)
        with Image.open(screenshot) as shot:
            assert shot.size == WINDOW, shot.size
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not [e for e in errors if "favicon.ico" not in e], errors


def _check_slider(browser: webdriver.Chrome, card: WebElement) -> None:
    """A real click at a quarter of the width moves the split there; the after image is clipped to its right."""
    slider = card.find_element(By.CSS_SELECTOR, ".slider")
    clip = card.find_element(By.CSS_SELECTOR, ".after-clip")
    assert clip.value_of_css_property("clip-path") == "inset(0px 0px 0px 50%)"
    width = slider.size["width"]
    ActionChains(browser).move_to_element_with_offset(slider, -width // 4, 0).click().perform()
    value = int(slider.get_attribute("value"))
    assert 20 <= value <= 30, value
    assert clip.value_of_css_property("clip-path") == f"inset(0px 0px 0px {value}%)"
    split = browser.execute_script(
        "return getComputedStyle(arguments[0]).getPropertyValue('--split')",
        card.find_element(By.CSS_SELECTOR, ".compare"),
    )
    assert split.strip() == f"{value}%"


def _check_seen(card: WebElement, model: str, size: tuple[int, int]) -> None:
    """The verdict, size, PIQE, NIQE and model rows are shown with plausible values."""
    seen = card.find_element(By.CSS_SELECTOR, ".seen")
    assert seen.is_displayed()
    terms = [dt.text for dt in seen.find_elements(By.TAG_NAME, "dt")]
    rows = dict(zip(terms, (dd.text for dd in seen.find_elements(By.TAG_NAME, "dd")), strict=True))
    assert {"verdict", "size", "PIQE", "NIQE", "model"} <= set(rows), rows
    assert rows["verdict"].strip(), rows
    assert rows["size"] == f"{size[0]} × {size[1]}"
    assert re.fullmatch(r"\d+\.\d \(\w[\w ]*; lower is better\)", rows["PIQE"]), rows["PIQE"]
    assert re.fullmatch(r"\d+\.\d\d", rows["NIQE"]), rows["NIQE"]
    assert re.fullmatch(re.escape(model) + r", \d+\.\d\d s", rows["model"]), rows["model"]


def _check_download(browser: webdriver.Chrome, card: WebElement, size: tuple[int, int], stem: str) -> None:
    """The download link names ``<stem>_restored.png`` and its bytes decode to a PNG of the photo's size."""
    link = card.find_element(By.CSS_SELECTOR, ".download")
    assert link.is_displayed()
    assert link.get_attribute("download") == f"{stem}_restored.png"
    href = link.get_attribute("href")
    assert href.startswith("blob:"), href
    try:
        data_url = browser.execute_async_script(FETCH_AS_DATA_URL, href)
    except WebDriverException as err:
        pytest.fail(f"fetching the download link failed: {err.msg}")
    header, _, payload = data_url.partition(",")
    assert header == "data:image/png;base64", header
    with Image.open(io.BytesIO(base64.b64decode(payload))) as restored:
        assert restored.format == "PNG"
        assert restored.size == size
        restored.load()
