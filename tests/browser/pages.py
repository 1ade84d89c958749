"""What the page tests share: headless Chromium with axe-core, keyboard-only moves, accessibility checks.

Chromium is Debian's (`make browser`), driven by Playwright; axe-core comes from npm (infra/npm). Every view a
test shows is checked against WCAG 2.1 A and AA and photographed under .local/screenshots/<page>/.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from infra.template import ROOT

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
AXE = ROOT / ".tools" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / ".local" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@contextmanager
def launched_chromium() -> Iterator:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is needed at {CHROMIUM}: run 'make browser' (apt-get install -y chromium).")
    if not AXE.exists():
        pytest.fail(f"axe-core is needed at {AXE}: run 'make browser' (npm package axe-core).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def fresh_folder(name: str) -> Path:
    """The screenshots folder of one page's tests, emptied."""
    folder = SCREENSHOTS / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@contextmanager
def opened_page(browser, base_url: str, folder: Path, **context_options) -> Iterator:
    """A French page in a fresh context; console errors and page errors collect in `page.problems`, and the
    state it was left in is photographed (useful when the test failed)."""
    options = {"locale": "fr-FR", "timezone_id": "Europe/Paris", "viewport": {"width": 1280, "height": 1000}}
    context = browser.new_context(base_url=base_url, **(options | context_options))
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.problems = problems
    try:
        yield page
    finally:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / "zz-last-state.png"), full_page=True)
        context.close()


class Keyboard:
    """Moves through the page with Tab / Shift+Tab only, as a keyboard user does."""

    def __init__(self, page):
        self.page = page

    def focused(self, selector: str) -> bool:
        return self.page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector)

    def tab_to(self, selector: str, *, backwards: bool = False, limit: int = 60) -> None:
        for _ in range(limit):
            if self.focused(selector):
                outline = self.page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
                assert outline != "none", f"focus on {selector} is not visible"
                return
            self.page.keyboard.press("Shift+Tab" if backwards else "Tab")
        raise AssertionError(f"{selector} cannot be reached with the keyboard")

    def press(self, key: str) -> None:
        self.page.keyboard.press(key)

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)


def check_accessibility(page, folder: Path, view: str) -> None:
    """axe-core on the current view: no WCAG 2.1 A/AA violation, then a screenshot of it."""
    page.wait_for_load_state("networkidle")
    # evaluate() is not subject to the page's CSP, which rightly refuses injected <script> tags.
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})", WCAG_21_AA
    )
    violations = [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
    ]
    page.screenshot(path=str(folder / f"{view}.png"), full_page=True)
    assert not violations, f"{view}: {json.dumps(violations, indent=1, ensure_ascii=False)}"
