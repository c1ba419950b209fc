"""Requests refused at the door: a state-changing request from another origin (even with a valid CSRF token),
dates far outside the calendar, huge numbers and unknown filter values get a 4xx with a reason, never a 500;
nothing a logged-in page or the API answers may be cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.console_helpers import ConsoleRig, csrf_of

OWN = "http://testserver"


@pytest.fixture
def rig(tmp_path: Path) -> ConsoleRig:
    return ConsoleRig(tmp_path)


def _ack(rig: ConsoleRig, headers: dict[str, str]) -> int:
    client = rig.client("school-a")
    alert = rig.raise_alert("c-a")
    page = client.get(f"/alerts/{alert.alert_id}")
    data = {"csrf_token": csrf_of(page.text), "note": "已电话通知"}
    status = client.post(f"/alerts/{alert.alert_id}/ack", data=data, headers=headers).status_code
    acknowledged = rig.console.alerts.get(alert.alert_id)
    assert acknowledged is not None
    assert (acknowledged.state == "acknowledged") == (status == 303)  # refused means nothing changed
    return status


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": OWN}, 303),
        ({"Referer": f"{OWN}/alerts"}, 303),
        ({}, 303),  # plain HTTP without either: the CSRF token alone decides, as in Django
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Referer": "https://evil.example/alerts"}, 403),
        ({"Origin": "https://evil.example", "Referer": f"{OWN}/alerts"}, 403),
    ],
    ids=["own-origin", "own-referer", "neither", "foreign-origin", "null-origin", "foreign-referer", "origin-wins"],
)
def test_a_change_needs_the_consoles_own_origin_as_well_as_the_token(
    rig: ConsoleRig, headers: dict[str, str], status: int
) -> None:
    assert _ack(rig, headers) == status


def test_a_foreign_origin_is_refused_in_words_on_the_api_too(rig: ConsoleRig) -> None:
    client = rig.client("school-a")
    alert = rig.raise_alert("c-a")
    csrf = csrf_of(client.get("/alerts").text)
    answer = client.post(
        f"/api/v1/alerts/{alert.alert_id}/ack",
        json={"note": "x"},
        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    assert answer.status_code == 403
    assert "请求不是来自本平台的页面" in answer.json()["detail"]


def test_over_https_a_change_without_origin_or_referer_is_refused(rig: ConsoleRig) -> None:
    rig.console.https_only = False  # the test client speaks http; the rule is what https_only switches on
    client = rig.client("school-a")
    rig.console.https_only = True
    alert = rig.raise_alert("c-a")
    csrf = csrf_of(client.get(f"/alerts/{alert.alert_id}").text)
    assert client.post(f"/alerts/{alert.alert_id}/ack", data={"csrf_token": csrf}).status_code == 403


def test_a_bearer_token_client_is_not_asked_for_an_origin(rig: ConsoleRig) -> None:
    _, token = rig.console.store.issue_token("city", "ops", rig.clock.now())
    alert = rig.raise_alert("c-a")
    client = rig.client()
    answer = client.post(f"/api/v1/alerts/{alert.alert_id}/ack", json={}, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200


ROUTES = [
    "/alerts?from={d}",
    "/alerts?to={d}",
    "/api/v1/alerts?from={d}",
    "/api/v1/alerts?to={d}",
    "/api/v1/canteens/c-a/tests?date={d}",
    "/api/v1/canteens/c-a/samples?date={d}",
    "/trace?batch=B1&from={d}",
    "/trace?batch=B1&to={d}",
    "/trace?from={d}",
    "/inspections?from={d}",
    "/inspections?to={d}",
    "/reports/monthly?period={m}",
    "/reports/weekly?period={w}",
    "/p/c-a/{d}?t={token}",
]


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "2026-13-45", "1" * 30])
def test_every_route_answers_out_of_range_dates_with_a_4xx(rig: ConsoleRig, day: str) -> None:
    client = rig.client("city")
    _, token = rig.console.store.issue_public_token("c-a", "public", rig.clock.now())
    for route in ROUTES:
        week = {"9999-12-31": "9999-W52", "0001-01-01": "0001-W01"}.get(day, day)
        path = route.format(d=day, m=day[:7] if day[:1] in "90" else day, w=week, token=token)
        answer = client.get(path)
        assert 400 <= answer.status_code < 500, f"{path}: {answer.status_code}"


@pytest.mark.parametrize(
    "path",
    [
        "/alerts?page=" + "9" * 30,
        "/api/v1/alerts?offset=" + "9" * 30,
        "/api/v1/alerts?limit=" + "9" * 30,
        "/alerts?state=exploded",
        "/alerts?severity=apocalyptic",
        "/api/v1/alerts?state=exploded",
    ],
)
def test_huge_numbers_and_unknown_values_get_a_4xx_or_their_limit(rig: ConsoleRig, path: str) -> None:
    answer = rig.client("city").get(path)
    assert answer.status_code in (200, 400, 422), f"{path}: {answer.status_code}"
    if "state=" in path or "severity=" in path:
        assert answer.status_code in (400, 422)
        assert "exploded" in answer.text or "apocalyptic" in answer.text  # the reason names the value


def test_a_date_out_of_range_says_why(rig: ConsoleRig) -> None:
    client = rig.client("city")
    page = client.get("/alerts?from=9999-12-31")
    assert page.status_code == 400
    assert "9999-12-31" in page.text
    api = client.get("/api/v1/alerts?from=9999-12-31")
    assert api.status_code == 422
    assert "9999-12-31" in api.text


def test_logged_in_pages_and_api_answers_are_never_cached(rig: ConsoleRig) -> None:
    client = rig.client("city")
    for path in ("/alerts", "/overview", "/canteens/c-a", "/trace", "/api/v1/alerts", "/api/v1/canteens"):
        answer = client.get(path, follow_redirects=True)
        assert answer.status_code == 200, path
        assert answer.headers["cache-control"] == "no-store", path
    assert "no-store" not in client.get("/static/console.css").headers.get("cache-control", "")
