"""End to end: the report opens in headless Chromium from a file:// URL, offline, and
its figures load.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``make test`` installs
them through scripts/install-chromium.sh when it can); skips, saying why, otherwise.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--window-size=1280,1600",
    "--hide-scrollbars",
]


def _browser() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    if chromium is None or driver is None:
        pytest.skip(
            "headless Chromium is not installed (need `chromium` and `chromedriver`); "
            "`sh scripts/install-chromium.sh` installs them as root or with passwordless sudo"
        )
    return chromium, driver


def _non_blank(png: bytes) -> tuple[float, int]:
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return float(img.std()), len(np.unique(img.reshape(-1, 3), axis=0))


def test_report_renders_in_headless_chromium(request, tmp_path):
    # Browser and selenium first: the report is built only when it can be looked at.
    chromium, driver_path = _browser()
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install selenium)"
    )
    report_dir = request.getfixturevalue("report_dir")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_AVOID_STATS", "true")
    options = Options()
    options.binary_location = chromium
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.get(report_dir.resolve().as_uri())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if driver.execute_script(
                "return document.readyState === 'complete' && "
                "Array.from(document.images).every(i => i.complete)"
            ):
                break
            time.sleep(0.2)
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt])"
        )
        assert len(images) == 6, images
        for complete, width, height, alt in images:
            assert complete and width > 0 and height > 0, f"figure not loaded: {alt}"
        assert "Table 1" in driver.title + driver.page_source

        page_png = driver.get_screenshot_as_png()
        driver.execute_script("document.querySelector('figure img').scrollIntoView()")
        time.sleep(0.2)
        figure_png = driver.get_screenshot_as_png()
        (tmp_path / "page.png").write_bytes(page_png)
        (tmp_path / "figure.png").write_bytes(figure_png)
    finally:
        driver.quit()
    for png in (page_png, figure_png):
        std, n_colours = _non_blank(png)
        assert std > 5.0 and n_colours > 50, (std, n_colours)
