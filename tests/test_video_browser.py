"""The live kitchen in Debian's Chromium: the parents' page plays the canteen's camera on a phone-sized screen
(the picture advances and changes), stops within 10 s of its token's revocation and says why; a district's
camera wall plays its schools' cameras and not another district's; an AI violation's still is on its page."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.async_api import Page, ViewportSize, expect

from broker_config.managed import ManagedMosquitto
from tests.browser import chromium, screenshot
from tests.helpers import eventually
from tests.platform_rig import log_in, url
from tests.video_rig import (
    alerts_of,
    camera,
    now,
    playlist_url,
    publish_violation,
    publishing,
    until,
    video_platform,
    video_registry,
)
from video.keys import clear_keys

pytestmark = pytest.mark.slow

#: The frame's pixels, summed: a moving picture changes them.
FRAME_SUM = """(video) => {
    const canvas = document.createElement("canvas");
    canvas.width = 64; canvas.height = 36;
    const context = canvas.getContext("2d");
    context.drawImage(video, 0, 0, 64, 36);
    return Array.from(context.getImageData(0, 0, 64, 36).data).reduce((a, b) => a + b, 0);
}"""
FETCH_STATUS = "async (urls) => Promise.all(urls.map(async (u) => (await fetch(u, {cache: 'no-store'})).status))"
PHONE: ViewportSize = {"width": 390, "height": 844}


async def _played(page: Page, selector: str) -> float:
    return float(await page.locator(selector).evaluate("v => v.currentTime"))


async def test_parents_watch_the_kitchen_until_their_link_is_revoked(
    tmp_path: Path, mosquitto: ManagedMosquitto, uid: str
) -> None:
    async with video_platform(tmp_path, mosquitto, uid, video_registry()) as platform, chromium() as browser:
        assert platform.console is not None
        keys = clear_keys(tmp_path)
        async with camera(platform, "c-a-cam", keys["c-a-cam"], tmp_path):
            await eventually(lambda: publishing(platform, "c-a-cam"), what="the picture")
            token_id, token = platform.console.store.issue_public_token("c-a", "public", now())
            page = await browser.new_page(viewport=PHONE)
            await page.goto(url(platform, f"/p/c-a/today?t={token}"))
            video = "#kitchen .camera[data-camera='c-a-cam'] video"
            await expect(page.locator(video)).to_be_visible()
            started = await until(lambda: _advanced(page, video, 0.5), what="the picture playing")
            before = await page.locator(video).evaluate(FRAME_SUM)
            await until(lambda: _advanced(page, video, started + 5), what="five more seconds of picture")
            assert await page.locator(video).evaluate(FRAME_SUM) != before, "the picture did not change"
            width = await page.locator(video).evaluate("v => v.getBoundingClientRect().width")
            assert width <= PHONE["width"]
            page_text = await page.content()
            assert keys["c-a-cam"] not in page_text  # no stream key
            assert "rtmp://" not in page_text  # no publish address
            await screenshot(page, "parents-live.png")
            # the same player address with another canteen's token, fetched by the page: the media server refuses it
            _, other = platform.console.store.issue_public_token("c-b", "public", now())
            playlist = await page.locator("#kitchen .camera[data-camera='c-a-cam']").get_attribute("data-playlist")
            assert playlist is not None
            foreign = playlist.replace(f"p.{token}", f"p.{other}")
            statuses = await page.evaluate(FETCH_STATUS, [foreign, foreign.replace("index.m3u8", "0.ts")])
            assert statuses == [403, 403]

            platform.console.store.revoke_public_token(token_id, now())
            stopped_at = await _stalls_within(page, video, seconds=10)
            assert stopped_at > started
            await expect(page.locator("#kitchen .camera[data-camera='c-a-cam'] .words")).to_contain_text("链接已失效")


async def _advanced(page: Page, selector: str, beyond: float) -> float | None:
    played = await _played(page, selector)
    return played if played > beyond else None


async def _stalls_within(page: Page, selector: str, *, seconds: float) -> float:
    """The position at which the player stopped advancing, which it must do within ``seconds``: two readings
    a player's refresh apart that are equal (or a player taken down)."""
    last = {"at": -1.0}

    async def stalled() -> float | None:
        if not await page.locator(selector).count() or await page.locator(selector).is_hidden():
            return last["at"] if last["at"] >= 0 else 0.0001
        played = await _played(page, selector)
        same = played == last["at"]
        last["at"] = played
        return played if same else None

    return await until(stalled, timeout=seconds, what="the revoked player stopping")


async def test_a_district_wall_plays_its_schools_and_no_other_district(
    tmp_path: Path, mosquitto: ManagedMosquitto, uid: str
) -> None:
    async with video_platform(tmp_path, mosquitto, uid, video_registry()) as platform, chromium() as browser:
        keys = clear_keys(tmp_path)
        async with (
            camera(platform, "c-a-cam", keys["c-a-cam"], tmp_path / "a"),
            camera(platform, "c-c-cam", keys["c-c-cam"], tmp_path / "c"),
        ):
            await eventually(lambda: publishing(platform, "c-a-cam") and publishing(platform, "c-c-cam"), what="both")
            district = await log_in(browser, platform, "district-cq")
            await district.goto(url(platform, "/cameras"))
            tiles = district.locator(".wall .camera")
            await expect(tiles).to_have_count(2)  # c-a and c-b of 城区; never 泽州's c-c
            assert "c-c-cam" not in await district.content()
            video = ".camera[data-camera='c-a-cam'] video"
            await until(lambda: _advanced(district, video, 2.0), what="the wall playing")
            await screenshot(district, "camera-wall.png")

            playlist = await district.locator(".camera[data-camera='c-a-cam']").get_attribute("data-playlist")
            assert playlist is not None
            # a supervisor's still, taken from the wall, is kept and shown
            async with district.expect_navigation():
                await district.click(".camera[data-camera='c-a-cam'] form button")
            assert "/cameras/c-a-cam/stills/" in district.url
            assert await district.locator("img").evaluate("img => img.naturalWidth") > 0
            other = await district.goto(url(platform, "/canteens/c-c/cameras"))
            assert other is not None
            assert other.status == 404
            # and the media server refuses the district's own pass for another district's camera
            credential = playlist.split("/video/", 1)[1].split("/", 1)[0]
            async with httpx.AsyncClient(timeout=10) as client:
                refused = await client.get(playlist_url(platform, credential, "c-c-cam"))
                assert refused.status_code == 403


async def test_an_ai_violation_page_shows_the_still_from_the_stream(
    tmp_path: Path, mosquitto: ManagedMosquitto, uid: str
) -> None:
    async with video_platform(tmp_path, mosquitto, uid, video_registry()) as platform, chromium() as browser:
        keys = clear_keys(tmp_path)
        async with camera(platform, "c-a-cam", keys["c-a-cam"], tmp_path):
            await eventually(lambda: publishing(platform, "c-a-cam"), what="the picture")
            violation = await publish_violation(mosquitto, "c-a", "c-a-cam")
            await eventually(lambda: bool(alerts_of(platform, "camera.violation")), what="the alert")
            alert = alerts_of(platform, "camera.violation")[0]
            await eventually((tmp_path / "evidence" / alert.alert_id / "still.jpg").is_file, what="the still")
            school = await log_in(browser, platform, "school-a")
            await school.goto(url(platform, f"/alerts/{alert.alert_id}"))
            still = school.locator("#pictures img")
            await expect(still).to_be_visible()
            assert await still.evaluate("img => img.complete && img.naturalWidth") > 0
            assert violation.snapshot_url in await school.content()  # the device's own snapshot stays beside it
