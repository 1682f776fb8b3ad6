"""The browser of the UI tests: Debian's Chromium driven by Playwright, a page that
records what must not happen (script errors, a refusal of the Content-Security-Policy, a
request to anywhere but the server), and the screenshot of a step in tests/artifacts/ui/."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, closed when the block ends (a failing test too)."""
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install chromium"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Browser, errors: list[str]) -> Page:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The server's Content-Security-Policy lets the UI do all it does.
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and "Content Security Policy" in m.text
            else None
        ),
    )
    # Everything the page loads comes from the server itself.
    page.on(
        "request",
        lambda r: (
            errors.append(f"outside request {r.url}")
            if not r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
            else None
        ),
    )
    return page


def shot(page: Page, name: str) -> None:
    # Nothing stray (a "null", "undefined") between the blocks of the page.
    stray = page.evaluate(
        "() => [...document.getElementById('app').childNodes]"
        ".filter(n => n.nodeType === 3 && n.textContent.trim()).map(n => n.textContent)"
    )
    assert not stray, stray
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
