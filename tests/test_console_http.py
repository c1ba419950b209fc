"""The console over HTTP: logging in, scope, the attack matrix, acknowledging and resolving, the API.

The browser tests (test_console_browser.py) drive the same pages in Chromium on the real broker; these check
every tenant against every other tenant's objects, which a browser would take minutes to do."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner

from console.web.deps import SESSION_COOKIE
from devices.topics import Channel, DeviceKind
from simulators.payloads import PayloadFactory
from tests.console_helpers import ACCOUNTS, CANTEENS, SEES, ConsoleRig, csrf_of, login

XSS = "<script>alert('x')</script>\"'&"


@pytest.fixture
def rig(tmp_path: Path) -> ConsoleRig:
    return ConsoleRig(tmp_path)


def test_logging_in_shows_the_inbox_and_logging_out_ends_the_session(rig: ConsoleRig) -> None:
    alert = rig.raise_alert("c-a")
    client = rig.client()
    assert client.get("/alerts").headers["location"].startswith("/login")
    response = login(client, "school-a")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert client.get("/").headers["location"] == "/canteens/c-a"  # a school lands on its own canteen's day
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    page = client.get("/alerts")
    assert page.status_code == 200
    assert alert.message in page.text
    out = client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303
    assert client.get("/alerts").status_code == 303


def test_a_wrong_password_or_an_unknown_account_is_refused_alike(rig: ConsoleRig) -> None:
    client = rig.client()
    wrong = login(client, "school-a", "not-the-password")
    unknown = login(client, "nobody", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert "账号或密码错误" in wrong.text
    assert "账号或密码错误" in unknown.text
    assert client.get("/alerts").status_code == 303


def test_the_eleventh_wrong_password_in_a_minute_is_throttled_until_the_minute_passes(rig: ConsoleRig) -> None:
    client = rig.client()
    for _ in range(10):
        assert login(client, "school-a", "guess").status_code == 401
    throttled = login(client, "school-a")  # even the right password waits
    assert throttled.status_code == 429
    assert "尝试次数过多" in throttled.text
    rig.clock.advance(dt.timedelta(seconds=61))
    assert login(client, "school-a").status_code == 303


def test_a_form_without_the_csrf_token_is_refused(rig: ConsoleRig) -> None:
    alert = rig.raise_alert("c-a")
    client = rig.client("school-a")
    refused = client.post(f"/alerts/{alert.alert_id}/ack", data={"note": "收到"})
    forged = client.post(f"/alerts/{alert.alert_id}/ack", data={"note": "收到", "csrf_token": "forged"})
    assert refused.status_code == forged.status_code == 403
    assert rig.rules.get(alert.alert_id).state == "open"  # type: ignore[union-attr]
    assert client.post("/login", data={"username": "school-a", "password": "x"}).status_code == 403


def _cookie(rig: ConsoleRig, payload: dict[str, str], *, key: str, signed_at: float | None = None) -> str:
    import base64

    data = base64.b64encode(json.dumps(payload).encode())
    signer = TimestampSigner(key)
    if signed_at is not None:
        signer.get_timestamp = lambda: int(signed_at)  # type: ignore[method-assign]
    return signer.sign(data).decode()


def test_a_forged_or_expired_session_cookie_is_refused(rig: ConsoleRig) -> None:
    rig.raise_alert("c-a")
    secret = rig.console.secret_key
    fingerprint = rig.console.passwords.fingerprint("city")
    assert fingerprint is not None
    session = {"user": "city", "sid": rig.console.store.start_session("city", fingerprint, rig.clock.now())}
    forged = _cookie(rig, session, key="another-key-that-an-attacker-might-try-to-use")
    expired = _cookie(rig, session, key=secret, signed_at=dt.datetime.now().timestamp() - 9 * 3600)
    valid = _cookie(rig, session, key=secret)
    for cookie, status in ((forged, 303), (expired, 303), (valid, 200)):
        client = rig.client()
        client.cookies.set(SESSION_COOKIE, cookie)
        assert client.get("/alerts").status_code == status
        assert client.get("/api/v1/alerts").status_code == (401 if status == 303 else 200)


def _objects(rig: ConsoleRig) -> dict[str, dict[str, str]]:
    """For each canteen: one alert, with a secret in its message that must never leak to another tenant."""
    made = {}
    for canteen in CANTEENS:
        rig.test_result(canteen, sample_name=f"secret-sample-of-{canteen}")
        alert = rig.raise_alert(canteen, message=f"secret-alert-of-{canteen}")
        made[canteen] = {"alert": alert.alert_id, "secret": f"secret-alert-of-{canteen}"}
    return made


def test_every_role_against_every_other_tenant_gets_404_and_never_data(rig: ConsoleRig) -> None:
    made = _objects(rig)
    for username in ACCOUNTS:
        client = rig.client(username)
        csrf = csrf_of(client.get("/alerts").text)
        inbox = client.get("/alerts").text
        api_list = client.get("/api/v1/alerts").json()
        for canteen, obj in made.items():
            alert_id, secret = obj["alert"], obj["secret"]
            urls = [
                f"/alerts/{alert_id}",
                f"/canteens/{canteen}",
                f"/api/v1/alerts/{alert_id}",
                f"/api/v1/canteens/{canteen}",
                f"/api/v1/canteens/{canteen}/tests",
                f"/api/v1/canteens/{canteen}/samples",
                f"/api/v1/canteens/{canteen}/devices",
            ]
            if canteen in SEES[username]:
                assert secret in inbox
                assert any(a["alert_id"] == alert_id for a in api_list["alerts"])
                for url in urls:
                    assert client.get(url).status_code == 200, (username, url)
                continue
            assert secret not in inbox, (username, canteen)
            assert all(a["canteen_id"] in SEES[username] for a in api_list["alerts"])
            for url in urls:
                response = client.get(url)
                assert response.status_code in (403, 404), (username, url, response.status_code)
                assert secret not in response.text
                assert f"secret-sample-of-{canteen}" not in response.text
            for action in ("ack", "resolve"):
                posted = client.post(
                    f"/alerts/{alert_id}/{action}", data={"csrf_token": csrf, "disposition": "destroyed"}
                )
                assert posted.status_code == 404, (username, action)
                api = client.post(f"/api/v1/alerts/{alert_id}/{action}", json={}, headers={"X-CSRF-Token": csrf})
                assert api.status_code == 404, (username, action)
            filtered = client.get(f"/alerts?canteen={canteen}").text  # a filter cannot widen the scope
            assert secret not in filtered
    for obj in made.values():
        assert rig.rules.get(obj["alert"]).state == "open"  # type: ignore[union-attr]


def test_district_pages_are_for_their_district_and_the_city(rig: ConsoleRig) -> None:
    assert rig.client("city").get("/districts/泽州").status_code == 200
    assert rig.client("district-zz").get("/districts/泽州").status_code == 200
    assert rig.client("district-cq").get("/districts/泽州").status_code == 404
    assert rig.client("school-a").get("/districts/城区").status_code == 404
    assert rig.client("district-cq").get("/overview").headers["location"] == "/districts/%E5%9F%8E%E5%8C%BA"


def test_device_text_is_inert_in_every_page_and_response(rig: ConsoleRig) -> None:
    rig.test_result("c-a", sample_name=XSS, supplier=XSS, operator=XSS)
    alert = rig.raise_alert("c-a", message=f"样品 {XSS} 不合格", sample_name=XSS)
    client = rig.client("school-a")
    for url in ("/alerts", f"/alerts/{alert.alert_id}", "/canteens/c-a", "/alerts?fragment=1"):
        html = client.get(url).text
        assert "<script>alert(" not in html, url
        assert "&lt;script&gt;alert(" in html, url
    api = client.get(f"/api/v1/alerts/{alert.alert_id}")
    assert api.headers["content-type"] == "application/json"
    assert api.json()["alert"]["evidence"][0]["sample_name"] == XSS  # kept as data, never as markup
    page = client.get("/canteens/c-a")
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_a_school_acknowledges_with_a_note_and_the_audit_shows_who(rig: ConsoleRig) -> None:
    alert = rig.raise_alert("c-a")
    client = rig.client("school-a")
    page = client.get(f"/alerts/{alert.alert_id}")
    response = client.post(
        f"/alerts/{alert.alert_id}/ack", data={"note": "已通知厨师长", "csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 303
    stored = rig.rules.get(alert.alert_id)
    assert stored is not None
    assert stored.state == "acknowledged"
    assert stored.acked_by == "school-a"
    detail = client.get(f"/alerts/{alert.alert_id}").text
    assert "已通知厨师长" in detail
    assert "school-a" in detail
    assert "确认收到" in detail


def test_a_failed_test_is_resolved_only_with_its_disposition(rig: ConsoleRig) -> None:
    alert = rig.raise_alert("c-a", rule="test.failed")
    client = rig.client("district-cq")
    csrf = csrf_of(client.get(f"/alerts/{alert.alert_id}").text)
    client.post(f"/alerts/{alert.alert_id}/resolve", data={"note": "处理", "csrf_token": csrf})
    assert rig.rules.get(alert.alert_id).state == "open"  # type: ignore[union-attr]
    client.post(
        f"/alerts/{alert.alert_id}/resolve",
        data={"note": "整批退回", "disposition": "returned_to_supplier", "csrf_token": csrf},
    )
    resolved = rig.rules.get(alert.alert_id)
    assert resolved is not None
    assert resolved.state == "resolved"
    assert resolved.disposition == "returned_to_supplier"
    audit = rig.rules.audit_for(alert.alert_id)
    assert audit[-1]["actor"] == "district-cq"
    assert audit[-1]["disposition"] == "returned_to_supplier"
    assert "退回供应商" in client.get(f"/alerts/{alert.alert_id}").text


def test_a_camera_violation_is_resolved_with_its_review(rig: ConsoleRig) -> None:
    alert = rig.raise_alert("c-c", rule="camera.violation")
    client = rig.client("city")
    conflict = client.post(f"/api/v1/alerts/{alert.alert_id}/resolve", json={}, headers={})
    assert conflict.status_code == 403  # the session cookie without the CSRF header
    _token_id, token = rig.console.store.issue_token("city", "test", rig.clock.now())
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.post(f"/api/v1/alerts/{alert.alert_id}/resolve", json={}, headers=bearer).status_code == 409
    done = client.post(f"/api/v1/alerts/{alert.alert_id}/resolve", json={"review": "false_positive"}, headers=bearer)
    assert done.status_code == 200
    assert done.json()["review"] == "false_positive"


def test_bearer_tokens_are_scoped_and_revocable(rig: ConsoleRig) -> None:
    _objects(rig)
    token_id, token = rig.console.store.issue_token("district-zz", "ops", rig.clock.now())
    client = rig.client()
    bearer = {"Authorization": f"Bearer {token}"}
    alerts = client.get("/api/v1/alerts", headers=bearer).json()
    assert {a["canteen_id"] for a in alerts["alerts"]} == {"c-c"}
    assert alerts["total"] == 1
    assert [c["id"] for c in client.get("/api/v1/canteens", headers=bearer).json()] == ["c-c"]
    rig.console.store.revoke_token(token_id, rig.clock.now())
    assert client.get("/api/v1/alerts", headers=bearer).status_code == 401
    assert client.get("/api/v1/alerts", headers={"Authorization": "Bearer shian_made_up"}).status_code == 401


def test_the_inbox_filters_and_pages(rig: ConsoleRig) -> None:
    for _ in range(60):
        rig.raise_alert("c-a", rule="device.offline")
    failed = rig.raise_alert("c-b", rule="test.failed")
    client = rig.client("city")
    first = client.get("/alerts").text
    assert "第 1 页，共 61 条" in first
    assert "下一页" in first
    second = client.get("/alerts?page=2").text
    assert second.count("data-alert=") == 11
    only = client.get("/alerts?rule=test.failed").text
    assert only.count("data-alert=") == 1
    assert failed.alert_id in only
    assert client.get("/alerts?district=泽州").text.count("data-alert=") == 0
    api = client.get("/api/v1/alerts", params={"rule": "device.offline", "limit": 5, "offset": 58}).json()
    assert api["total"] == 60
    assert len(api["alerts"]) == 2
    today = rig.clock.now().date().isoformat()
    assert client.get(f"/alerts?from={today}&to={today}").text.count("data-alert=") == 50


def test_the_canteen_page_shows_todays_tests_in_words(rig: ConsoleRig) -> None:
    rig.test_result(
        "c-a",
        item_code="vetdrug.clenbuterol",
        result="fail",
        unit="qualitative",
        value=None,
        method="colloidal_gold",
        operator="王芳",
    )
    reading = PayloadFactory("c-a-cab").cabinet_reading(rig.clock.now(), 3)
    rig.record("c-a", DeviceKind.CABINET, Channel.TELEMETRY, reading)
    html = rig.client("school-a").get("/canteens/c-a").text
    assert "克伦特罗（瘦肉精）" in html
    assert "不合格" in html
    assert "胶体金" in html
    assert "王芳" in html
    assert "temperature-data" in html
    assert "c-a-cab" in html
    english = rig.client("school-a")
    english.cookies.set("shian_lang", "en")
    assert "Clenbuterol" in english.get("/canteens/c-a").text


def test_the_city_overview_counts_coverage_and_open_alerts(rig: ConsoleRig) -> None:
    rig.test_result("c-a")
    rig.test_result("c-c", result="fail")
    rig.raise_alert("c-c", rule="test.failed")
    rig.raise_alert("c-c", rule="device.offline")
    html = rig.client("city").get("/overview").text
    assert "2 / 3 个食堂" in html
    assert "50.0 %" in html
    assert "泽州中学食堂" in html


def test_each_role_lands_on_its_own_home(rig: ConsoleRig) -> None:
    assert rig.client("school-b").get("/").headers["location"] == "/canteens/c-b"
    assert rig.client("district-cq").get("/").headers["location"].startswith("/districts/")
    assert rig.client("city").get("/").headers["location"] == "/overview"
