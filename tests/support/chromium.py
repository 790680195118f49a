"""Debian's chromium driven by Playwright for Python (no browser download): a session fixture and the
offline check every report must pass. Registered as a plugin by conftest.py.

Tests that need it skip, with the reason, only when the chromium package is not installed.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless chromium (Playwright's Browser) for the session."""
    path = chromium_path()
    if path is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class OfflineVisit:
    """What a page did when opened with the network cut off."""

    requests: list[str] = field(default_factory=list)   # every URL other than the page itself
    errors: list[str] = field(default_factory=list)     # console errors and uncaught page errors
    text: str = ""                                       # the visible text
    headings: list[str] = field(default_factory=list)


def open_offline(browser: Any, page_path: Path) -> OfflineVisit:
    """Open an HTML file with every other request blocked; report what it tried and what it logged."""
    visit = OfflineVisit()
    url = page_path.resolve().as_uri()
    context = browser.new_context()
    page = context.new_page()
    page.on("console", lambda m: visit.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: visit.errors.append(str(e)))

    def route(r: Any) -> None:
        if r.request.url == url:
            r.continue_()
        else:
            visit.requests.append(r.request.url)
            r.abort()
    context.route("**/*", route)
    page.goto(url, wait_until="load")
    visit.text = page.inner_text("body")
    visit.headings = [h.strip() for h in page.locator("h1, h2").all_inner_texts()]
    context.close()
    return visit
