"""A real browser for the console's tests: Debian's Chromium, driven by Playwright (whose own browser download
is not reachable here). ``./dev`` installs the chromium and fonts-wqy-microhei packages."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright

#: Flags for a headless Chromium as root on a machine without a network: no sandbox (root), and none of the
#: background connections that a closed network refuses.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Where the tests leave screenshots for docs/ when set (``SHIAN_SCREENSHOTS=docs/screenshots``).
SCREENSHOTS_ENV = "SHIAN_SCREENSHOTS"


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("no Chromium: install Debian's chromium and fonts-wqy-microhei (./dev setup does)")
    return path


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


async def screenshot(page: Page, name: str) -> None:
    """Keep a screenshot for the docs when asked to (the tests themselves assert on the page, not on pixels)."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    if folder:
        await page.screenshot(path=str(Path(folder) / name), full_page=True)  # Playwright makes the folder
