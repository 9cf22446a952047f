"""The report in a real headless Chromium: no console errors, every gallery image loads."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from posebowl.report import build_report, evaluate, select_gallery
from tests.browser import Browser, environment_ok, find_chromium
from tests.report_data import make_inputs

pytestmark = pytest.mark.browser

LOADED = (
    "Array.from(document.querySelectorAll('{sel}'))"
    ".filter(i => i.complete && i.naturalWidth > 0).length"
)


@pytest.fixture(scope="module")
def browser():
    reason = environment_ok()
    if reason:
        pytest.skip(f"no headless browser: {reason}")
    with Browser(find_chromium()) as b:  # type: ignore[arg-type]
        yield b


def test_the_error_collector_sees_broken_pages(browser, tmp_path):
    """Control: a page with a broken image and a console error must be reported as such."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
        '<img class="gallery-img" src="missing.jpg"><script>console.error("boom")</script>'
        "</body></html>"
    )
    log = browser.open(page.as_uri())
    assert any("boom" in e for e in log.errors), log.errors
    assert any("ERR_FILE_NOT_FOUND" in e for e in log.errors), log.errors
    assert browser.evaluate(LOADED.format(sel="img.gallery-img")) == 0


def test_report_page_loads_cleanly_with_every_gallery_image(browser, tmp_path):
    inp = make_inputs(tmp_path / "in", n=12, seed=21, missing_pred=1)
    ids = pd.read_csv(inp.labels, dtype={"image_id": str})
    pred = pd.read_csv(inp.pred, dtype={"image_id": str})
    worst, _ = select_gallery(evaluate(pred, ids).table, 4, 0)
    (inp.images / f"{worst[1]}.png").unlink()  # one card must show a blank frame
    res = build_report(
        inp.pred, inp.labels, inp.images, tmp_path / "out", metadata=inp.metadata, worst=4, best=2
    )

    log = browser.open(res.path.resolve().as_uri())

    assert log.errors == []
    cards = 4 + 2
    assert browser.evaluate(LOADED.format(sel="img.gallery-img")) == 2 * cards
    assert browser.evaluate("document.querySelectorAll('img.gallery-img').length") == 2 * cards
    assert browser.evaluate("document.querySelectorAll('img[data-missing]').length") == 2
    assert browser.evaluate(LOADED.format(sel="img.plot")) == 4  # histogram, size, 2 metadata
    assert browser.evaluate("document.getElementById('score').textContent") == f"{res.score:.4f}"
    assert browser.evaluate("document.querySelectorAll('#left-out li').length") == 2
    worst_shown = browser.evaluate(
        "Array.from(document.querySelectorAll('#worst figure')).map(f => f.dataset.imageId)"
    )
    assert worst_shown == worst

    shot = browser.screenshot(tmp_path / "report.png")
    img = cv2.imread(str(shot))
    assert img.shape[1] == 1280 and img.shape[0] > 2000  # the whole page, not one screen
    assert float(np.std(img)) > 20  # something was drawn
    print(f"screenshot: {shot}")
