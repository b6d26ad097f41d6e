"""Playwright driving Debian's Chromium (apt-get install chromium); never a downloaded browser."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Every wait in these tests is for a state of the page (an element, a text, data-state), never a
# time: a bound only says how long a page that never gets there is given before the test fails.
# On a loaded machine a page can take seconds to answer, so the bounds are generous; a passing
# test waits no longer for them.
ACTION_TIMEOUT_MS = 30_000
EXPECT_TIMEOUT_MS = 20_000


# Module scope: the environment switch below must not outlive the browser tests (the rest of the
# suite runs `manage.py check --deploy` in subprocesses that inherit the environment).
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from django.db import connection

    if connection.vendor == "sqlite":
        # The live server would share the test's one in-memory SQLite connection with its request
        # threads; the page's concurrent requests then hang or fail with "table is locked".
        pytest.skip("needs PostgreSQL: the live server cannot share an in-memory SQLite database")
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs the browser tests: install Debian's chromium (/usr/bin/chromium).")
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)

    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between browser steps are ordinary synchronous calls all the same.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_page(browser):
    """`new_page()` opens a page in a fresh context (own cookies); all are closed afterwards."""
    contexts = []

    def make():
        context = browser.new_context(locale="en-GB", timezone_id="Asia/Kolkata")
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def sized_page(browser):
    """`sized_page(width)` opens a page of that width in a fresh context (own cookies)."""
    contexts = []

    def make(width: int = 1280):
        context = browser.new_context(
            viewport={"width": width, "height": 900}, locale="en-GB", timezone_id="Asia/Kolkata"
        )
        contexts.append(context)
        page = context.new_page()
        page.csp_errors = []
        page.on(
            "console",
            lambda m: (
                page.csp_errors.append(m.text) if "Content Security Policy" in m.text else None
            ),
        )
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("BROWSER_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> None:
        page.screenshot(path=folder / f"{name}.png", full_page=True)

    return take


@pytest.fixture(autouse=True)
def _dashboard_polls(settings):
    # The dashboard's tests count its polls on a paused clock; a live stream would add reads of its
    # own. The stream has its tests (test_activity_live.py), which switch it back on.
    settings.ACTIVITY_PUSH = False
