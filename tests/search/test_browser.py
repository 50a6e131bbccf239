"""The search page in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

from pathlib import Path

import pytest
from search_helpers import running_server, tiny_search_setup

CHROMIUM = Path("/usr/lib/chromium/chromium")
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.is_file(),
        reason=f"{CHROMIUM} is missing; `make browser` installs Debian's chromium",
    ),
]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    from mcsan.search.server import create_app

    base = tmp_path_factory.getbasetemp() / "search_setup"
    base.mkdir(exist_ok=True)
    setup = tiny_search_setup(base)
    with running_server(create_app(setup["index"])) as url:
        yield url


def test_page_shows_ranked_clips_with_level_bars(base_url, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(base_url + "/", wait_until="domcontentloaded")
            page.fill("#query", "a red square moves left")
            page.fill("#k", "6")
            page.click("#search-button")
            page.wait_for_selector("#results li.hit", timeout=30_000)
            cards = page.locator("#results li.hit")
            assert cards.count() == 6
            ranks = [int(cards.nth(i).get_attribute("data-rank")) for i in range(6)]
            scores = [float(cards.nth(i).get_attribute("data-score")) for i in range(6)]
            assert ranks == [1, 2, 3, 4, 5, 6]
            assert scores == sorted(scores, reverse=True)
            first = cards.nth(0)
            levels = [first.locator(".track").nth(i).get_attribute("data-level")
                      for i in range(4)]
            assert levels == ["global", "entity", "action", "relation"]
            assert first.locator(".fill").count() == 4
            src = first.locator("video").get_attribute("src")
            assert src.startswith("/media/") and src.endswith(".mp4")
            assert "6 results" in page.inner_text("#status")

            page.fill("#query", "   ")
            page.evaluate("document.getElementById('query').removeAttribute('required')")
            page.click("#search-button")
            page.wait_for_selector("#status.error", timeout=10_000)
            assert "empty" in page.inner_text("#status")

            page.fill("#query", "a blue square moves right")
            page.click("#search-button")
            page.wait_for_selector("#results li.hit", timeout=30_000)
            shot = tmp_path / "search_page.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
