"""The public outputs: the parents' daily digest on its schedule (fake clock; real stores; group robots as a
recording HTTP server), the kiosk and the parents' page behind their tokens, and every output checked against
the privacy rules of docs/public.md."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.digest.compose import DailyDigest
from console.digest.outbox import DigestOutbox
from console.digest.service import DigestSchedule, DigestService
from console.privacy import INTERNAL_CODE, PHONE
from devices.topics import public_daily_topic
from tests.console_helpers import CANTEENS, ConsoleRig, RecordingServer, tenants_registry
from tests.rules_helpers import CST

#: Wednesday 2026-11-25; Friday the 27th is a holiday.
WEDNESDAY = dt.datetime(2026, 11, 25, 9, 0, tzinfo=CST)
SEND_AT = dt.time(17, 30)


class Published:
    """A broker stand-in that keeps what the digest service publishes (the real broker: test_public_e2e)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, object], bool]] = []

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self.messages.append((topic, json.loads(payload), retain))


@pytest.fixture
def robots() -> Iterator[RecordingServer]:
    server = RecordingServer()
    yield server
    server.close()


def _rig(tmp: Path, robots: RecordingServer) -> ConsoleRig:
    channels = {
        "c-a": [
            {"url": f"{robots.url}/wecom", "format": "wecom"},
            {"url": f"{robots.url}/dingtalk", "format": "dingtalk"},
            {"url": f"{robots.url}/bridge", "format": "json"},
        ]
    }
    registry = tenants_registry(parent_channels=channels, holidays=["2026-11-27"])
    return ConsoleRig(tmp, start=WEDNESDAY, registry=registry)


def _service(rig: ConsoleRig, published: Published, public_url: str | None = None) -> DigestService:
    """A digest service as a newly started platform makes it: its own connections to the same files."""
    return DigestService(
        registry=rig.registry,
        readings=rig.console.readings,
        alerts=rig.console.alerts,
        store=rig.console.store,
        outbox=DigestOutbox(rig.tmp / "console.sqlite"),
        clock=rig.clock,
        schedule=DigestSchedule(send_at=SEND_AT, public_url=public_url),
        bus=lambda: published,
    )


def _at(rig: ConsoleRig, day: int, hour: int, minute: int = 0) -> None:
    rig.clock.set(dt.datetime(2026, 11, day, hour, minute, tzinfo=CST))


def _day(rig: ConsoleRig) -> None:
    """A morning's work at c-a: two passes and a failure (its supplier left a phone number in the field)."""
    rig.test_result("c-a", result="pass", sample_name="小白菜")
    rig.test_result("c-a", result="pass", sample_name="菠菜")
    rig.test_result(
        "c-a",
        result="fail",
        sample_name="豇豆",
        supplier="丰收合作社 13812345678",
        value=72.0,
        unit="%",
        method="enzyme_inhibition",
        item_code="pesticide.op_carbamate",
    )


def test_the_digest_is_made_at_its_time_once_and_pushed_to_every_channel(
    tmp_path: Path, robots: RecordingServer
) -> None:
    rig, published = _rig(tmp_path, robots), Published()
    service = _service(rig, published)
    _day(rig)
    _at(rig, 25, 17, 29)
    asyncio.run(service.step())
    assert published.messages == []
    assert robots.received == {}
    _at(rig, 25, 17, 30)
    asyncio.run(service.step())
    asyncio.run(service.step())
    topics = [topic for topic, _, _ in published.messages]
    assert sorted(topics) == sorted(public_daily_topic(c) for c in CANTEENS)  # one each, retained
    assert all(retain for _, _, retain in published.messages)
    ours = next(body for topic, body, _ in published.messages if topic == public_daily_topic("c-a"))
    digest = DailyDigest.model_validate(ours)
    assert (digest.tests.total, digest.tests.passed, digest.tests.failed) == (3, 2, 1)
    assert digest.failures[0].sample == "豇豆"
    assert digest.failures[0].supplier == "丰收合作社 ***"
    assert digest.failures[0].handling == "待处理"
    assert digest.version == 1
    assert not digest.correction
    (wecom,) = robots.received["/wecom"]
    (dingtalk,) = robots.received["/dingtalk"]
    (bridge,) = robots.received["/bridge"]
    assert wecom == {"msgtype": "text", "text": {"content": digest.text}}
    assert dingtalk == {"msgtype": "text", "text": {"content": digest.text}}
    assert DailyDigest.model_validate(bridge) == digest
    assert digest.text.startswith("【城区一小食堂 11月25日 食品安全日报】")
    assert "今日快检 3 项：合格 2 项，不合格 1 项。" in digest.text


def test_a_restart_across_the_scheduled_time_sends_one_digest_not_zero_or_two(
    tmp_path: Path, robots: RecordingServer
) -> None:
    rig, published = _rig(tmp_path, robots), Published()
    _day(rig)
    _at(rig, 25, 17, 0)
    asyncio.run(_service(rig, published).step())  # before the time: nothing; then the platform is down
    _at(rig, 25, 18, 10)
    restarted = _service(rig, published)  # comes back after 17:30
    restarted.make_due(rig.clock.now())  # ... makes the digests, and dies before delivering them
    _at(rig, 25, 18, 12)
    asyncio.run(_service(rig, published).step())  # the next start delivers what is owed
    _at(rig, 25, 19, 0)
    asyncio.run(_service(rig, published).step())
    assert len([m for m in published.messages if m[0] == public_daily_topic("c-a")]) == 1
    assert len(robots.received["/wecom"]) == 1
    assert DigestOutbox(tmp_path / "console.sqlite").delivery_counts() == {"delivered": 6, "owed": 0}


def test_a_holiday_sends_none(tmp_path: Path, robots: RecordingServer) -> None:
    rig, published = _rig(tmp_path, robots), Published()
    _at(rig, 27, 8, 0)
    service = _service(rig, published)
    asyncio.run(service.step())
    _at(rig, 27, 18, 0)
    asyncio.run(service.step())
    assert published.messages == []
    assert robots.received == {}
    _at(rig, 28, 18, 0)  # Saturday: no school either
    asyncio.run(service.step())
    assert published.messages == []


def test_a_late_failed_test_sends_one_correction(tmp_path: Path, robots: RecordingServer) -> None:
    rig, published = _rig(tmp_path, robots), Published()
    service = _service(rig, published)
    rig.test_result("c-a", result="pass")
    _at(rig, 25, 17, 30)
    asyncio.run(service.step())
    # A detector that was offline all afternoon delivers its 16:00 failure at 18:00.
    late = dt.datetime(2026, 11, 25, 16, 0, tzinfo=CST)
    rig.record_at(late, "c-a", result="fail", sample_name="豆芽")
    _at(rig, 25, 18, 0)
    asyncio.run(service.step())
    _at(rig, 25, 18, 30)
    asyncio.run(service.step())
    bodies = [DailyDigest.model_validate(b) for t, b, _ in published.messages if t == public_daily_topic("c-a")]
    assert [(d.version, d.correction, d.tests.failed) for d in bodies] == [(1, False, 0), (2, True, 1)]
    assert bodies[1].text.startswith("【更正】")
    assert "此前发布的日报有误" in bodies[1].text
    assert len(robots.received["/wecom"]) == 2
    assert robots.received["/wecom"][1]["text"]["content"].startswith("【更正】")


def test_a_failed_delivery_is_retried_without_sending_the_others_again(tmp_path: Path) -> None:
    robots = RecordingServer(fail_first={"/dingtalk": 2})
    try:
        rig, published = _rig(tmp_path, robots), Published()
        service = _service(rig, published)
        _at(rig, 25, 17, 30)
        asyncio.run(service.step())
        assert "/dingtalk" not in robots.received
        rig.clock.advance(dt.timedelta(seconds=31))
        asyncio.run(service.step())  # the second attempt fails too
        rig.clock.advance(dt.timedelta(seconds=61))
        asyncio.run(service.step())
        assert len(robots.received["/dingtalk"]) == 1
        assert len(robots.received["/wecom"]) == 1
        assert len(robots.received["/bridge"]) == 1
    finally:
        robots.close()


def test_the_disposition_a_supervisor_recorded_reaches_the_parents(tmp_path: Path, robots: RecordingServer) -> None:
    rig, published = _rig(tmp_path, robots), Published()
    _day(rig)
    failed = next(r for r in rig.tests_written if r["result"] == "fail")
    alert = rig.raise_alert("c-a", rule="test.failed", device=rig.device_of("c-a"), msg_id=failed["msg_id"])
    rig.rules.resolve(alert.alert_id, "school-a", "退回", rig.clock.now(), disposition="returned_to_supplier")
    _at(rig, 25, 17, 30)
    asyncio.run(_service(rig, published).step())
    digest = DailyDigest.model_validate(robots.received["/bridge"][0])
    assert digest.failures[0].handling == "已退回供应商"
    assert (digest.alerts.raised, digest.alerts.handled) == (1, 1)
    assert "——已退回供应商，未用于供餐。" in digest.text


# --- privacy: every public output against docs/public.md ------------------------------------------------------


def assert_public(text: str, rig: ConsoleRig, canteen: str) -> None:
    """Nothing a public output of ``canteen`` must never contain (docs/public.md)."""
    for other, (_, name) in CANTEENS.items():
        if other != canteen:
            assert name not in text, f"{other} leaks"
            assert f"{other}-" not in text, f"{other} leaks"
    for device in (d.id for c in rig.registry.canteens for d in c.devices):
        assert device not in text, device
    assert INTERNAL_CODE.findall(text) == []
    assert PHONE.search(text) is None
    for account in rig.registry.accounts:
        assert account.username not in text, account.username


def test_every_public_output_keeps_to_the_privacy_rules(tmp_path: Path, robots: RecordingServer) -> None:
    rig, published = _rig(tmp_path, robots), Published()
    _day(rig)
    rig.test_result("c-b", sample_name="另一所学校的样品", operator="王五 0356-2123456")
    _at(rig, 25, 17, 30)
    asyncio.run(_service(rig, published).step())
    _, kiosk_token = rig.console.store.issue_public_token("c-a", "kiosk", rig.clock.now())
    _, page_token = rig.console.store.issue_public_token("c-a", "public", rig.clock.now())
    client = rig.client()
    outputs = {
        "topic": json.dumps(
            [b for t, b, _ in published.messages if t == public_daily_topic("c-a")], ensure_ascii=False
        ),
        "robots": json.dumps(robots.received, ensure_ascii=False),
        "kiosk": client.get(f"/kiosk/c-a?t={kiosk_token}").text,
        "page": client.get(f"/p/c-a/2026-11-25?t={page_token}").text,
    }
    assert "豇豆" in outputs["kiosk"]
    assert "豇豆" in outputs["page"]
    for name, text in outputs.items():
        shown = re.sub(r"<[^>]*>", " ", text)  # what a page shows and carries as data, not its markup
        try:
            assert_public(shown, rig, "c-a")
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None


# --- tokens ------------------------------------------------------------------------------------------------


def test_a_token_opens_its_canteens_page_of_its_kind_and_nothing_else(tmp_path: Path) -> None:
    rig = ConsoleRig(tmp_path)
    store, now = rig.console.store, rig.clock.now()
    kiosk_id, kiosk_a = store.issue_public_token("c-a", "kiosk", now)
    _, page_a = store.issue_public_token("c-a", "public", now)
    _, kiosk_b = store.issue_public_token("c-b", "kiosk", now)
    rig.test_result("c-a", sample_name="本校样品")
    rig.test_result("c-b", sample_name="他校样品")
    client = rig.client()
    page = client.get(f"/kiosk/c-a?t={kiosk_a}")
    assert page.status_code == 200
    assert "本校样品" in page.text
    assert "他校样品" not in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    for url in (
        f"/kiosk/c-b?t={kiosk_a}",  # canteen A's token on B's kiosk
        f"/kiosk/c-b/events?t={kiosk_a}",
        f"/p/c-b/today?t={page_a}",
        f"/p/c-a/today?t={kiosk_a}",  # a kiosk token is not a parents' page token
        f"/kiosk/c-a?t={page_a}",
        f"/kiosk/c-a?t={kiosk_b}",
        "/kiosk/c-a",
        f"/kiosk/c-a?t={kiosk_a}x",
        f"/kiosk/nowhere?t={kiosk_a}",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "本校样品" not in response.text
        assert "他校样品" not in response.text
    store.revoke_public_token(kiosk_id, now)
    assert client.get(f"/kiosk/c-a?t={kiosk_a}").status_code == 404
    assert client.get(f"/p/c-a/today?t={page_a}").status_code == 200


def test_the_kiosk_shows_only_todays_tests_in_words(tmp_path: Path) -> None:
    rig = ConsoleRig(tmp_path)
    _, token = rig.console.store.issue_public_token("c-a", "kiosk", rig.clock.now())
    rig.record_at(rig.clock.now() - dt.timedelta(days=1), "c-a", sample_name="昨天的样品")
    rig.test_result(
        "c-a",
        sample_name="今天的样品",
        item_code="vetdrug.clenbuterol",
        unit="qualitative",
        value=None,
        method="colloidal_gold",
        result="pass",
        operator="张丽",
    )
    html = rig.client().get(f"/kiosk/c-a?t={token}").text
    assert "今天的样品" in html
    assert "昨天的样品" not in html
    assert "克伦特罗（瘦肉精）" in html
    assert "胶体金" in html
    assert "合格" in html
    assert "张丽" in html
    assert "vetdrug.clenbuterol" not in html


def test_a_new_installation_owes_no_digest_of_the_days_before_it(tmp_path: Path, robots: RecordingServer) -> None:
    rig, published = _rig(tmp_path, robots), Published()
    # first started in the small hours of Thursday, on a clock that keeps UTC (as the system clock does)
    rig.clock.set(dt.datetime(2026, 11, 25, 17, 0, tzinfo=dt.UTC))
    service = _service(rig, published)
    asyncio.run(service.step())
    _at(rig, 26, 17, 30)
    asyncio.run(service.step())
    days = {DailyDigest.model_validate(body).date for _, body, _ in published.messages}
    assert days == {dt.date(2026, 11, 26)}  # Thursday's, not Wednesday's


def test_the_parents_page_is_open_all_day_and_answers_in_one_line(tmp_path: Path, robots: RecordingServer) -> None:
    """Before the digest: the day so far, with its one-line verdict, lunch not yet served explaining its empty
    samples; after it: the digest as the day's closing word; an archive of earlier days, each readable."""
    rig = _rig(tmp_path, robots)
    _, token = rig.console.store.issue_public_token("c-a", "public", rig.clock.now())
    client = rig.client()
    _at(rig, 25, 9, 30)
    rig.test_result("c-a", result="pass", sample_name="小白菜")
    morning = client.get(f"/p/c-a/today?t={token}").text
    assert "今日快检全部合格" in morning
    assert "截至 09:30 的记录" in morning
    assert '午餐：2 道菜，留样 <b class="ok">0</b> 份<span class="small">（尚未供餐）</span>' in morning
    assert "℃" not in morning  # written °C, which every font has
    rig.test_result("c-a", result="suspect", sample_name="芹菜", value=45.0, unit="%", method="enzyme_inhibition")
    _day(rig)
    failed = next(r for r in rig.tests_written if r["result"] == "fail")
    alert = rig.raise_alert("c-a", rule="test.failed", device=rig.device_of("c-a"), msg_id=failed["msg_id"])
    rig.rules.resolve(alert.alert_id, "school-a", "整批退回", rig.clock.now(), disposition="returned_to_supplier")
    noon = client.get(f"/p/c-a/today?t={token}").text
    assert "今日 1 项不合格，已退回供应商" in noon
    assert "已退回供应商，未用于供餐" in noon
    assert "可疑 1 项：结果接近限量，复检合格前不使用。" in noon
    _at(rig, 25, 17, 30)
    asyncio.run(_service(rig, Published()).step())
    evening = client.get(f"/p/c-a/today?t={token}").text
    assert "截至" not in evening  # the published digest is the day's word
    assert "今日 1 项不合格，已退回供应商" in evening
    _at(rig, 26, 8, 0)
    archive = client.get(f"/p/c-a/today?t={token}").text
    assert f'href="/p/c-a/2026-11-25?t={token}"' in archive
    assert "今日暂无快检记录" in archive
    past = client.get(f"/p/c-a/2026-11-24?t={token}").text  # before anything was recorded: said, not an error
    assert "当日未发布日报" in past
    assert client.get(f"/p/c-a/2026-11-27?t={token}").status_code == 404  # not a day yet
