"""Fixtures of the page tests: one headless Chromium per session, and a fresh page per test, photographed
into the folder the test module's `screenshots` fixture names."""

from __future__ import annotations

import pytest

from tests.browser.pages import launched_chromium, opened_page


@pytest.fixture(scope="session")
def browser():
    with launched_chromium() as chromium:
        yield chromium


@pytest.fixture
def page(browser, stack, screenshots):
    with opened_page(browser, stack.base_url, screenshots) as page:
        yield page
