"""The search page in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from search_helpers import (
    MATCHER_TOP_K,
    matcher_search_setup,
    photo_index_setup,
    running_server,
    tiny_search_setup,
)

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


def serve(tmp_path_factory, name: str, make_setup):
    """A real server over the index that ``make_setup`` builds (once) under ``name``."""
    from mcsan.search.server import create_app

    base = tmp_path_factory.getbasetemp() / name
    base.mkdir(exist_ok=True)
    return running_server(create_app(make_setup(base)["index"]))


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    with serve(tmp_path_factory, "search_setup", tiny_search_setup) as url:
        yield url


@pytest.fixture(scope="module")
def concept_url(tmp_path_factory):
    with serve(tmp_path_factory, "photo_setup", photo_index_setup) as url:
        yield url


@pytest.fixture(scope="module")
def matcher_url(tmp_path_factory, caption_parser):
    with serve(tmp_path_factory, "matcher_setup",
               lambda base: matcher_search_setup(base, caption_parser)) as url:  # fmt: skip
        yield url


def launch(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=LAUNCH_ARGS)


@contextlib.contextmanager
def new_page():
    """A 1200 x 900 page of a fresh headless Chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser.new_page(viewport={"width": 1200, "height": 900})
        finally:
            browser.close()


def test_page_shows_ranked_clips_with_level_bars(base_url, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
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
            assert "(mode: model)" in page.inner_text("#status")
            assert page.locator("#warning").is_hidden()
            assert "'tiny'" in page.inner_text("#domain")

            page.fill("#query", "a dog on a beach")
            page.click("#search-button")
            page.wait_for_selector("#warning:not([hidden])", timeout=30_000)
            warning = page.inner_text("#warning")
            assert "knows none" in warning and "'dog'" in warning and "'beach'" in warning

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


def test_page_of_a_concept_only_index_shows_the_matched_concepts(concept_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(concept_url + "/", wait_until="domcontentloaded")
            page.wait_for_function("document.getElementById('domain').textContent.length > 0")
            assert "ImageNet" in page.inner_text("#domain")
            assert page.locator("#mode option[value=model]").is_disabled()
            page.fill("#query", "a cup of coffee")
            page.fill("#k", "4")
            page.click("#search-button")
            page.wait_for_selector("#results li.hit", timeout=30_000)
            first = page.locator("#results li.hit").nth(0)
            assert first.get_attribute("data-video-id") == "coffee"
            concepts = [first.locator(".concepts li").nth(i).get_attribute("data-concept")
                        for i in range(first.locator(".concepts li").count())]
            assert "espresso" in concepts
            assert "(mode: concepts)" in page.inner_text("#status")
            assert "coffee → " in page.inner_text("#matched")

            page.fill("#query", "freedom and justice")
            page.click("#search-button")
            page.wait_for_selector("#warning:not([hidden])", timeout=30_000)
            assert "No concept matches" in page.inner_text("#warning")
            assert page.locator("#results li.hit").count() == 0
        finally:
            browser.close()


def test_page_of_a_matcher_index_shows_the_reranking(matcher_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(matcher_url + "/?q=a+red+ball+is+jumping&k=6&mode=model",
                      wait_until="domcontentloaded")  # fmt: skip
            page.wait_for_selector("#results li.hit", timeout=30_000)
            cards = page.locator("#results li.hit")
            assert cards.count() == 6
            matched = [cards.nth(i).locator(".match").count() for i in range(6)]
            assert matched == [1] * MATCHER_TOP_K + [0] * (6 - MATCHER_TOP_K)
            assert cards.nth(0).locator(".match").inner_text().startswith("match ")
            status = page.inner_text("#status")
            assert f"top {MATCHER_TOP_K} re-ranked by the binding matcher" in status
            shown = [float(cards.nth(i).locator(".score").inner_text()) for i in range(6)]
            assert shown == sorted(shown, reverse=True)  # the shown score is the order
            assert "fused + 2 x match" in cards.nth(0).locator(".score").get_attribute("title")
            fused = cards.nth(0).locator(".fused").inner_text()
            assert fused.startswith("fused ")
        finally:
            browser.close()


def test_page_offers_example_queries_from_the_index(matcher_url, concept_url):
    with new_page() as page:
        page.goto(matcher_url + "/", wait_until="domcontentloaded")
        page.wait_for_selector("#examples:not([hidden]) .example", timeout=30_000)
        examples = page.locator("#examples .example")
        assert examples.count() >= 2
        first = examples.nth(0).inner_text()
        examples.nth(0).click()
        page.wait_for_selector("#results li.hit", timeout=30_000)
        assert page.input_value("#query") == first
        cards = page.locator("#results li.hit")
        shown = [float(cards.nth(i).locator(".score").inner_text())
                 for i in range(cards.count())]  # fmt: skip
        assert shown == sorted(shown, reverse=True)
        video_id = cards.nth(0).get_attribute("data-video-id")
        assert video_id in cards.nth(0).locator(".id").get_attribute("title")  # full id

        page.goto(concept_url + "/", wait_until="domcontentloaded")
        page.wait_for_selector("#examples:not([hidden]) .example", timeout=30_000)
        texts = page.locator("#examples .example").all_inner_texts()
        assert "a person" in texts  # the people detector's concept, from the index
        page.locator("#examples .example", has_text="a person").click()
        page.wait_for_selector("#results li.hit", timeout=30_000)
        assert page.locator("#results li.hit").nth(0).get_attribute("data-video-id") == (
            "astronaut")
