"""A browser crawl of the console as each role and of the public pages: the visible text of every page reached
by its links carries no raw codes (item codes, rule names), no English verdict words on a Chinese page, no
``None``, no pydantic message, no field name; the English pages have no Chinese labels left over."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from urllib.parse import urldefrag, urlparse

from playwright.async_api import Browser, Page

from broker_config.managed import ManagedMosquitto
from tests.browser import chromium
from tests.helpers import eventually
from tests.platform_rig import log_in, publish_failed_test, publish_test, running_platform, url
from tests.words_check import chinese_in, leftovers
from wiring.platform import Platform

#: Pages per role at most: each route family is reached long before.
MAX_PAGES = 45
#: Not pages: the event streams, downloads, the API and the machine-readable.
SKIP = ("/events", "/logout", "/static/", "/api/", "format=", "/lang/", ".json")
#: What a page names as data: canteens and districts, devices, accounts; Chinese on an English page is these.
LABEL_SELECTORS = "h1, h2, h3, th, label, legend, button, caption, dt, nav"


def _data_names(platform: Platform) -> list[str]:
    registry = platform.registry
    names = [c.name for c in registry.canteens] + [c.district for c in registry.canteens]
    names += [d.id for c in registry.canteens for d in c.devices] + [a.username for a in registry.accounts]
    names += [c.id for c in registry.canteens]
    return sorted(set(names), key=len, reverse=True)


async def _crawl(page: Page, platform: Platform, start: str) -> list[tuple[str, str, str]]:
    """(path, visible text, label text) of every page reached from ``start`` by same-site links."""
    base = url(platform, "")
    queue, seen = deque([start]), {start}
    found: list[tuple[str, str, str]] = []
    while queue and len(found) < MAX_PAGES:
        path = queue.popleft()
        answer = await page.goto(url(platform, path))
        if answer is None or answer.status >= 400 or "text/html" not in (answer.headers.get("content-type") or ""):
            continue
        text = await page.evaluate("document.body.innerText")
        labels = await page.evaluate(
            f"[...document.querySelectorAll({LABEL_SELECTORS!r})].map((e) => e.innerText).join('\\n')"
        )
        found.append((path, text, labels))
        for href in await page.evaluate("[...document.querySelectorAll('a[href]')].map((a) => a.href)"):
            link = urldefrag(href)[0]
            if not link.startswith(base):
                continue
            target = link[len(base) :] or "/"
            parsed = urlparse(target)
            family = parsed.path.rstrip("0123456789-")
            if any(s in target for s in SKIP) or target in seen or sum(p.startswith(family) for p in seen) > 6:
                continue
            seen.add(target)
            queue.append(target)
    return found


async def _check(browser: Browser, platform: Platform, username: str, allow: tuple[str, ...]) -> int:
    page = await log_in(browser, platform, username)
    pages = await _crawl(page, platform, "/")

    for path, text, _ in pages:
        assert leftovers(text, "zh", allow=allow) == [], f"{username} {path}: {leftovers(text, 'zh', allow=allow)}"
    await page.goto(url(platform, "/lang/en?next=/"))
    for path, text, labels in await _crawl(page, platform, "/"):
        assert leftovers(text, "en", allow=allow) == [], f"{username} {path} (en): {leftovers(text, 'en', allow=allow)}"
        rest = labels
        for name in allow:
            rest = rest.replace(name, "")
        assert chinese_in(rest) == [], f"{username} {path} (en) has Chinese labels: {rest[:300]}"
    await page.close()
    return len(pages)


async def test_every_page_speaks_words_to_every_role(tmp_path: Path, mosquitto: ManagedMosquitto, uid: str) -> None:
    async with running_platform(tmp_path, mosquitto, uid) as platform, chromium() as browser:
        console = platform.console
        assert console is not None
        await publish_test(mosquitto, "c-a", "小白菜", result="pass")
        await publish_failed_test(mosquitto, "c-a", "豇豆")
        await eventually(lambda: console.alerts.count() >= 1, what="the failed test's alert")
        await eventually(lambda: platform.drain.stats.written_records >= 2, what="the tests in the store")
        allow = tuple(_data_names(platform))
        crawled = {}
        for username in ("school-a", "district-cq", "city"):
            crawled[username] = await _check(browser, platform, username, allow)
        assert crawled["city"] >= 10, crawled  # the crawl reached the console's rooms, not a login page
        # the public faces, behind their tokens
        _, kiosk = console.store.issue_public_token("c-a", "kiosk", console.clock.now())
        _, parents = console.store.issue_public_token("c-a", "public", console.clock.now())
        page = await browser.new_page()
        for path in (f"/kiosk/c-a?t={kiosk}", f"/p/c-a/today?t={parents}"):
            await page.goto(url(platform, path))
            await page.wait_for_timeout(300)  # the kiosk draws its rows from its data
            text = await page.evaluate("document.body.innerText")
            assert "豇豆" in text
            assert leftovers(text, "zh", allow=allow) == [], f"{path}: {leftovers(text, 'zh', allow=allow)}"
