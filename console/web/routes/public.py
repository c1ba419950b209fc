"""The pages anyone with a canteen's token may open, with no login: the kiosk at the test-room door and the
parents' daily page. A token opens one canteen's page of one kind and nothing else; docs/public.md says what
they may show."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response, StreamingResponse

from console.context import Console
from console.days import DayOutOfRange, parse_day
from console.digest.compose import CABINET_WORDS, compose
from console.live import freshness, handling_by_key, kiosk_row
from console.store import PublicPurpose
from console.video_access import STATE_WORDS, Tile
from console.web.deps import ConsoleDep
from console.web.render import templates
from console.words import Words
from devices.registry import Canteen
from devices.vocabulary import AREAS
from rules.alerts import AlertQuery

router = APIRouter(include_in_schema=False)


def _opened(console: Console, canteen_id: str, token: str | None, purpose: PublicPurpose) -> None:
    """404 unless ``token`` is an active token of ``purpose`` for this very canteen: the same answer for a
    wrong, revoked or other canteen's token as for a canteen that does not exist."""
    if console.registry.canteen(canteen_id) is None or not console.store.opens(token, canteen_id, purpose):
        raise HTTPException(404)


def _last_seen(console: Console, canteen_id: str) -> dt.datetime | None:
    """When any device of the canteen last sent anything, as the store knows it."""
    seen = [s.last_message for s in console.readings.devices(canteen_id).values() if s.last_message]
    return max(seen, default=None)


def _public_headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # a shared display must never show a cached yesterday
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    return response


def _handling_today(console: Console, canteen_id: str) -> dict[str, str]:
    """What was done with each of today's failed foods at the canteen, by kiosk key."""
    start, _ = console.day_bounds(console.today())
    query = AlertQuery(canteens=frozenset([canteen_id]), rule="test.failed", opened_from=start)
    failed, _ = console.alerts.search(query, limit=1000)
    return handling_by_key(failed, Words("zh"))


@router.get("/kiosk/{canteen_id}")
def kiosk(request: Request, canteen_id: str, console: ConsoleDep, t: str | None = None) -> Response:
    _opened(console, canteen_id, t, "kiosk")
    canteen = console.registry.canteen(canteen_id)
    assert canteen is not None
    words = Words("zh", console.registry.catalogue)
    start, end = console.day_bounds(console.today())
    tests = console.readings.tests(frozenset([canteen_id]), start, end)
    handling = _handling_today(console, canteen_id)
    response = templates.TemplateResponse(
        request,
        "kiosk.html",
        {
            "canteen": canteen,
            "today": console.today(),
            "rows": [asdict(kiosk_row(test, console.tz, words)) for test in tests],
            "state": {
                **freshness(console.clock, console.tz, _last_seen(console, canteen_id)),
                "stale_after_s": console.kiosk_stale_s,
                "events": f"/kiosk/{canteen_id}/events?t={t}",
                "handling": handling,
            },
            "camera": _kiosk_camera(console, canteen, t),
            "player_words": STATE_WORDS,
        },
    )
    return _public_headers(response)


def _kiosk_camera(console: Console, canteen: Canteen, token: str | None) -> Tile | None:
    """The one camera the kiosk shows beside the day's tests, when the canteen chose one."""
    if console.video is None or token is None or canteen.kiosk_camera is None:
        return None
    found = console.video.tiles(canteen, f"k.{token}", parents=True, only=canteen.kiosk_camera)
    return found[0] if found else None


@router.get("/kiosk/{canteen_id}/events")
def kiosk_events(canteen_id: str, console: ConsoleDep, t: str | None = None) -> Response:
    _opened(console, canteen_id, t, "kiosk")
    if console.live is None:
        raise HTTPException(503, "no live feed in this process")
    stream = console.live.stream(
        canteen_id,
        _last_seen(console, canteen_id),
        still_open=lambda: console.store.opens(t, canteen_id, "kiosk"),
        handling=lambda: _handling_today(console, canteen_id),
    )
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


#: Days the parents' page lists in its archive.
ARCHIVE_DAYS = 14


@router.get("/p/{canteen_id}/{day}")
def public_day(request: Request, canteen_id: str, day: str, console: ConsoleDep, t: str | None = None) -> Response:
    """A canteen's day for parents, made for a phone: open all day. Today shows the day so far until the
    day's digest is published, which is then the day's closing word; a past day shows its published digest (its
    latest version), or what the platform recorded when none was published."""
    _opened(console, canteen_id, t, "public")
    canteen = console.registry.canteen(canteen_id)
    assert canteen is not None
    today = console.today()
    try:
        date = today if day == "today" else parse_day(day)
    except DayOutOfRange:
        date = None
    if date is None or date > today:
        raise HTTPException(404)
    published = console.digests.latest(canteen_id, date) if console.digests else None
    now = console.clock.now()
    digest = published or compose(
        console.registry,
        console.readings,
        console.alerts,
        canteen,
        date,
        version=1,
        at=min(now, _end_of(console, date)),
    )
    response = templates.TemplateResponse(
        request,
        "public_day.html",
        {
            "canteen": canteen,
            "date": date,
            "digest": digest,
            "published": published is not None,
            "is_today": date == today,
            "as_of": now.astimezone(console.tz).strftime("%H:%M"),
            "cabinet_words": CABINET_WORDS,
            "days": [today - dt.timedelta(days=n) for n in range(ARCHIVE_DAYS) if today - dt.timedelta(days=n) != date],
            "token": t,
            "digest_time": console.digest_time.strftime("%H:%M"),
            **_kitchen(console, canteen, t if date == today else None),
        },
    )
    return _public_headers(response)


def _kitchen(console: Console, canteen: Canteen, token: str | None) -> dict[str, Any]:
    """The live kitchen on today's page: the canteen's cameras, each playing or saying why not."""
    if console.video is None or token is None:
        return {"tiles": []}
    credential = f"p.{token}"
    return {
        "tiles": console.video.tiles(canteen, credential, parents=True),
        "player_words": STATE_WORDS,
        "area_words": AREAS,
    }


def _end_of(console: Console, day: dt.date) -> dt.datetime:
    return console.day_bounds(day)[1]
