"""Sessions that end on the server: a logged-out cookie is worth nothing, signing out everywhere ends every copy,
a rotated or removed password ends the account's sessions, and the open event streams (the inbox's live feed,
a kiosk's) end within 10 s of any of these or of a token's revocation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2 as httpx
import pytest

from console.live import LiveTests
from console.web.app import create_app
from console.web.deps import SESSION_COOKIE
from console.web.server import ConsoleServer
from spool import Spool
from tests.console_helpers import ConsoleRig, csrf_of, password

#: The issue's promise: a stream stops serving within this long of the end of what opened it.
ENDS_WITHIN_S = 10.0


@pytest.fixture
def rig(tmp_path: Path) -> ConsoleRig:
    return ConsoleRig(tmp_path)


def test_a_logged_out_cookie_opens_nothing(rig: ConsoleRig) -> None:
    client = rig.client("city")
    copy = client.cookies[SESSION_COOKIE]
    assert client.get("/alerts").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf_of(client.get("/alerts").text)}).status_code == 303
    replay = rig.client()
    replay.cookies.set(SESSION_COOKIE, copy)  # the cookie as it was before the logout, copied elsewhere
    assert replay.get("/alerts").status_code == 303  # to the login page
    assert replay.get("/api/v1/alerts").status_code == 401


def test_signing_out_everywhere_ends_every_session_of_the_account(rig: ConsoleRig) -> None:
    laptop, phone, other = rig.client("district-cq"), rig.client("district-cq"), rig.client("city")
    assert phone.get("/api/v1/alerts").status_code == 200
    form = laptop.get("/alerts").text
    assert "/logout/everywhere" in form
    assert laptop.post("/logout/everywhere", data={"csrf_token": csrf_of(form)}).status_code == 303
    assert phone.get("/api/v1/alerts").status_code == 401
    assert laptop.get("/alerts").status_code == 303
    assert other.get("/api/v1/alerts").status_code == 200  # another account is not touched


def test_a_new_password_ends_the_accounts_sessions(rig: ConsoleRig) -> None:
    kept, rotated = rig.client("school-b"), rig.client("school-a")
    passwords = rig.console.passwords
    passwords.set_password("school-a", "a-brand-new-password-for-school-a")
    passwords.save()  # as `shian broker provision --rotate school-a` writes it
    assert rotated.get("/api/v1/alerts").status_code == 401
    assert kept.get("/api/v1/alerts").status_code == 200
    fresh = rig.client()
    fresh.post(
        "/login",
        data={
            "username": "school-a",
            "password": "a-brand-new-password-for-school-a",
            "csrf_token": csrf_of(fresh.get("/login").text),
        },
    )
    assert fresh.get("/api/v1/alerts").status_code == 200
    # and an account taken out of the password file altogether
    passwords.keep_only({"school-a"})
    passwords.save()
    assert kept.get("/api/v1/alerts").status_code == 401


# --- the streams, on a real server ------------------------------------------------------------------------


@pytest.fixture
async def server(rig: ConsoleRig, tmp_path: Path) -> AsyncIterator[str]:
    Spool(tmp_path / "spool.sqlite").close()
    rig.console.live = LiveTests(tmp_path / "spool.sqlite", rig.registry, rig.clock)
    console_server = ConsoleServer(create_app(rig.console), "127.0.0.1", 0)
    serving = asyncio.create_task(console_server.serve())
    try:
        yield console_server.url
    finally:
        console_server.request_stop()
        await asyncio.wait_for(serving, 10)


async def _logged_in(base: str, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=30)
    form = await client.get("/login")
    data = {"username": username, "password": password(username), "csrf_token": csrf_of(form.text)}
    assert (await client.post("/login", data=data)).status_code == 303
    return client


async def _events_until_closed(stream: httpx.Response) -> list[str]:
    return [line.removeprefix("event: ") async for line in stream.aiter_lines() if line.startswith("event: ")]


async def _ends_after(stream: httpx.Response, end: object) -> str:
    """The last event of a stream that the server closes, within the promised bound of ``end``."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    events = await asyncio.wait_for(_events_until_closed(stream), ENDS_WITHIN_S)
    assert loop.time() - began < ENDS_WITHIN_S, f"the stream outlived {end} by {loop.time() - began:.1f} s"
    assert events, f"the stream closed after {end} without saying why"
    return events[-1]


@pytest.mark.parametrize("ending", ["logout elsewhere", "new password"])
async def test_the_live_feed_ends_with_the_session(rig: ConsoleRig, server: str, ending: str) -> None:
    browser = await _logged_in(server, "district-cq")
    try:
        async with browser.stream("GET", "/events") as stream:
            assert stream.status_code == 200
            if ending == "logout elsewhere":
                other = await _logged_in(server, "district-cq")
                page = await other.get("/alerts")
                await other.post("/logout/everywhere", data={"csrf_token": csrf_of(page.text)})
                await other.aclose()
            else:
                rig.console.passwords.set_password("district-cq", "another-long-password-now")
                rig.console.passwords.save()
            assert await _ends_after(stream, ending) == "logout"
        assert (await browser.get("/events", follow_redirects=False)).status_code == 303
    finally:
        await browser.aclose()


async def test_a_kiosk_stream_ends_when_its_token_is_revoked(rig: ConsoleRig, server: str) -> None:
    store = rig.console.store
    token_id, token = store.issue_public_token("c-a", "kiosk", rig.clock.now())
    async with httpx.AsyncClient(base_url=server, timeout=30) as display:
        async with display.stream("GET", f"/kiosk/c-a/events?t={token}") as stream:
            assert stream.status_code == 200
            store.revoke_public_token(token_id, rig.clock.now())
            assert await _ends_after(stream, "revoked") == "revoked"
        assert (await display.get(f"/kiosk/c-a/events?t={token}")).status_code == 404
        assert (await display.get(f"/kiosk/c-a?t={token}")).status_code == 404
