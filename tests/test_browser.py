"""The box in a real browser: Debian's Chromium, driven by Playwright, against a real
`recommender serve`: the demo article page, a page of another origin (CORS), and a service that
is down or too slow (the page stays as it was)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from recommender.articles import Article
from tests.server import free_port, running_server

pytestmark = pytest.mark.slow
playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium")
BULGARIAN_DATE = re.compile(
    r"^\d{1,2} (януари|февруари|март|април|май|юни|юли|август|септември|октомври|ноември|декември)"
    r" \d{4}$"
)
SCREENSHOT_ENV = "RECOMMENDER_SCREENSHOT"
"""Where to save a copy of the demo screenshot (the one in docs/ is made this way)."""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Another origin: a plain static web server, as a news site embedding the box."""
    root = tmp_path_factory.mktemp("site")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()


@pytest.fixture(scope="module")
def service(
    sample_index: Path,
    model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    site: tuple[str, Path],
) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("browser-srv")
    with running_server(
        sample_index,
        model_dir,
        tmp / "cache.sqlite",
        tmp / "server.log",
        RECOMMENDER_CORS_ORIGINS=site[0],
        RECOMMENDER_ACCESS_LOG="false",
    ) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        pytest.fail("chromium is not on PATH (.ci/run installs Debian's chromium)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def _loaded(page: object, selector: str = "[data-related-article]") -> str:
    el = page.wait_for_selector(  # type: ignore[attr-defined]
        f"{selector}[data-related-state]:not([data-related-state=loading])",
        state="attached",
        timeout=15_000,
    )
    return str(el.get_attribute("data-related-state"))


def test_demo_page_shows_the_box_and_its_links_open_the_stories(
    service: str, browser: object, sample_articles: list[Article], tmp_path: Path
) -> None:
    article = sample_articles[0]
    expected = httpx.get(f"{service}/articles/{article.id}/related", params={"k": 5}).json()
    page = browser.new_page(viewport={"width": 900, "height": 1400})  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{service}/demo/articles/{article.id}")
    assert page.locator("h1.article-title").inner_text() == article.title
    assert BULGARIAN_DATE.match(page.locator(".article .article-date").inner_text())
    assert _loaded(page) == "loaded"

    box = page.locator("section.related-stories")
    heading_id = box.get_attribute("aria-labelledby")
    assert page.locator(f"#{heading_id}").inner_text() == "Свързани новини"
    items = box.locator("li.related-stories__item")
    ids = items.evaluate_all("els => els.map(e => e.dataset.articleId)")
    assert ids == [i["id"] for i in expected["items"]] and len(ids) == 5
    titles = box.locator("a.related-stories__link").all_inner_texts()
    assert titles == [i["title"] for i in expected["items"]]
    for date in box.locator("time.related-stories__date").all_inner_texts():
        assert BULGARIAN_DATE.match(date), date
    sources = box.locator(".related-stories__source").all_inner_texts()
    assert sources == [i["source"] for i in expected["items"]]

    shot = tmp_path / "demo-article.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get(SCREENSHOT_ENV):
        shutil.copyfile(shot, os.environ[SCREENSHOT_ENV])

    first = expected["items"][0]
    box.locator("a.related-stories__link").first.click()
    page.wait_for_url(f"{service}/demo/articles/{first['id']}")
    assert page.locator("h1.article-title").inner_text() == first["title"]
    assert _loaded(page) == "loaded"
    shown = page.locator("li.related-stories__item").evaluate_all(
        "els => els.map(e => e.dataset.articleId)"
    )
    assert first["id"] not in shown
    assert errors == []


def test_demo_index_links_to_article_pages(service: str, browser: object) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(f"{service}/demo")
    link = page.locator("a.article-list__link").first
    title = link.inner_text()
    link.click()
    page.wait_for_url(re.compile(r".*/demo/articles/[^/]+$"))
    assert page.locator("h1.article-title").inner_text() == title


def _write_page(root: Path, name: str, script: str, placeholder: str) -> None:
    root.joinpath(name).write_text(
        '<!doctype html><html lang="bg"><head><meta charset="utf-8"></head><body>'
        f'<p id="own">Съдържание на сайта.</p>{placeholder}{script}</body></html>',
        encoding="utf-8",
    )


def test_the_script_fills_a_box_on_the_site_origin_with_the_api_options(
    service: str, browser: object, site: tuple[str, Path], sample_articles: list[Article]
) -> None:
    origin, root = site
    article = sample_articles[0]
    other = next(a.section for a in sample_articles if a.section != article.section)
    _write_page(
        root,
        "embed.html",
        f'<script src="{service}/static/related.js" defer></script>',
        f'<div data-related-article="{article.id}" data-k="3" data-section="{other}"></div>',
    )
    expected = httpx.get(
        f"{service}/articles/{article.id}/related", params={"k": 3, "section": other}
    ).json()
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(f"{origin}/embed.html")
    assert _loaded(page) == "loaded"
    ids = page.locator("li.related-stories__item").evaluate_all(
        "els => els.map(e => e.dataset.articleId)"
    )
    assert ids == [i["id"] for i in expected["items"]] and len(ids) == 3
    links = page.locator("a.related-stories__link").evaluate_all("els => els.map(e => e.href)")
    assert links == [i["url"] for i in expected["items"]]


def test_an_origin_not_configured_gets_no_box_and_an_intact_page(
    service: str, browser: object, site: tuple[str, Path], sample_articles: list[Article]
) -> None:
    origin, root = site
    _write_page(
        root,
        "foreign.html",
        f'<script src="{service}/static/related.js" defer></script>',
        f'<div data-related-article="{sample_articles[0].id}"></div>',
    )
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(origin.replace("127.0.0.1", "localhost") + "/foreign.html")
    assert _loaded(page) == "error"
    assert page.locator("[data-related-article]").inner_html() == ""
    assert page.locator("#own").inner_text() == "Съдържание на сайта."


def test_a_service_that_is_down_or_silent_leaves_the_page_as_it_was(
    service: str, browser: object, site: tuple[str, Path]
) -> None:
    origin, root = site
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections and never answers
    try:
        for name, api, timeout, state in (
            ("down.html", f"http://127.0.0.1:{free_port()}", 3000, "error"),
            ("slow.html", f"http://127.0.0.1:{silent.getsockname()[1]}", 400, "timeout"),
        ):
            _write_page(
                root,
                name,
                f'<script src="{service}/static/related.js" data-api="{api}" defer></script>',
                f'<div data-related-article="a1001" data-timeout="{timeout}"></div>',
            )
            page = browser.new_page()  # type: ignore[attr-defined]
            errors: list[str] = []
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            page.goto(f"{origin}/{name}")
            assert _loaded(page) == state
            assert page.locator("[data-related-article]").inner_html() == ""
            assert page.locator("#own").inner_text() == "Съдържание на сайта."
            assert errors == []
    finally:
        silent.close()
