"""Alerts to people's group robots, routed by level: a district's robot hears an alert once it escalates, a
reminder repeats an unacknowledged critical alert, warnings wait out quiet hours, a robot's errcode is retried
and then reported, and what was owed survives a restart. A recording HTTP server plays the robots."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from rules.runner import RulesRunner
from rules.store import RulesStore
from rules.webhooks import Route, Webhooks
from spool import Spool
from tests.console_helpers import RecordingServer
from tests.rules_helpers import MORNING, Harness

M = dt.timedelta(minutes=1)


@pytest.fixture
def robots() -> Iterator[RecordingServer]:
    server = RecordingServer()
    yield server
    server.close()


class Routed:
    """The rules engine of the harness, its runner publishing to ``routes``."""

    def __init__(self, tmp: Path, routes: list[Route]) -> None:
        self.h = Harness(tmp)
        self.tmp = tmp
        self.routes = routes
        self.hooks = Webhooks(routes, RulesStore(self.h.path), self.h.registry, self.h.clock)
        self.runner = RulesRunner(self.h.engine, Spool(tmp / "spool.sqlite"), [self.hooks])

    def publish_and_deliver(self) -> None:
        asyncio.run(self.runner.publish_pending())
        asyncio.run(self.hooks.deliver_due())

    def later(self, delta: dt.timedelta) -> None:
        self.h.after(delta)  # ticks the engine: escalation and reminders
        self.publish_and_deliver()

    def restart(self) -> None:
        self.hooks = Webhooks(self.routes, RulesStore(self.h.path), self.h.registry, self.h.clock)
        self.runner = RulesRunner(self.h.engine, Spool(self.tmp / "spool.sqlite"), [self.hooks])


def _texts(robots: RecordingServer, path: str) -> list[str]:
    return [body["text"]["content"] for body in robots.received.get(path, [])]


def test_a_districts_robot_hears_an_alert_once_it_escalates_and_reminders_repeat_it(
    tmp_path: Path, robots: RecordingServer
) -> None:
    routes = [
        Route("城区一小群", f"{robots.url}/school", "wecom"),
        Route("城区教育局", f"{robots.url}/district", "dingtalk", level="district", district="城区"),
        Route("泽州教育局", f"{robots.url}/other", "dingtalk", level="district", district="泽州"),
        Route("市局", f"{robots.url}/city", "json", level="city"),
    ]
    r = Routed(tmp_path, routes)
    r.h.test(72.0, result="fail")  # test.failed: critical
    r.publish_and_deliver()
    assert len(_texts(robots, "/school")) == 1
    assert "/district" not in robots.received
    r.later(31 * M)  # unacknowledged for 30 min: escalated to the district, and a first reminder
    district = _texts(robots, "/district")
    assert district
    assert district[0].endswith("通知 城区教育局")
    assert "/other" not in robots.received  # another district's bureau hears nothing
    assert "/city" not in robots.received
    (alert,) = r.h.alerts("test.failed")
    assert alert.escalation == "district"
    assert alert.reminders == 1
    assert any(text.startswith("【第1次提醒】") for text in _texts(robots, "/school"))
    told = [e["to"] for e in r.h.store.audit_for(alert.alert_id) if e["action"] == "notified"]
    assert "城区教育局" in told
    assert "城区一小群" in told
    r.later(30 * M)  # an hour: the city hears of it too
    assert robots.received["/city"][-1]["escalation"] == "city"
    assert robots.received["/city"][-1]["to"] == "市局"


def test_an_acknowledged_alert_is_not_reminded(tmp_path: Path, robots: RecordingServer) -> None:
    r = Routed(tmp_path, [Route("群", f"{robots.url}/school", "wecom")])
    r.h.test(72.0, result="fail")
    r.publish_and_deliver()
    (alert,) = r.h.alerts("test.failed")
    r.h.store.acknowledge(alert.alert_id, "school-c1", "收到", r.h.clock.now())
    r.later(2 * 31 * M)
    assert not any("提醒" in text for text in _texts(robots, "/school"))


def test_warnings_wait_out_quiet_hours_and_critical_alerts_do_not(tmp_path: Path, robots: RecordingServer) -> None:
    quiet = (dt.time(7, 0), dt.time(9, 0))  # the harness's morning is 08:00
    r = Routed(tmp_path, [Route("群", f"{robots.url}/school", "wecom", quiet=quiet)])
    r.h.test(45.0)  # test.suspect: a warning
    r.h.test(72.0, result="fail", sample_no="S2")  # test.failed: critical
    r.publish_and_deliver()
    texts = _texts(robots, "/school")
    assert len(texts) == 1
    assert texts[0].startswith("【严重】")
    r.h.clock.set(MORNING.replace(hour=9, minute=0, second=1))
    asyncio.run(r.hooks.deliver_due())
    after = [t[:4] for t in _texts(robots, "/school")]
    assert after[0] == "【严重】"
    assert len(after) > 1
    assert set(after[1:]) == {"【警告】"}  # the warnings, once the quiet hours ended


def test_a_robots_errcode_is_retried_then_reported(tmp_path: Path) -> None:
    robots = RecordingServer(errcode_first={"/school": 99})
    try:
        r = Routed(tmp_path, [Route("群", f"{robots.url}/school", "wecom")])
        r.h.test(72.0, result="fail")
        r.publish_and_deliver()
        for _ in range(6):
            r.h.clock.advance(dt.timedelta(hours=1))
            asyncio.run(r.hooks.deliver_due())
        (alert,) = r.h.alerts("test.failed")
        failures = [e for e in r.h.store.audit_for(alert.alert_id) if e["action"] == "notify_failed"]
        assert len(failures) == 1
        assert "errcode 93000" in failures[0]["error"]
        assert r.hooks.failed == 1
        assert r.hooks.owed() == 0
    finally:
        robots.close()


def test_what_was_owed_is_delivered_after_a_restart(tmp_path: Path) -> None:
    robots = RecordingServer(fail_first={"/school": 1})
    try:
        r = Routed(tmp_path, [Route("群", f"{robots.url}/school", "wecom")])
        r.h.test(72.0, result="fail")
        r.publish_and_deliver()  # marked published; its delivery failed once and waits in the outbox
        assert "/school" not in robots.received
        r.restart()  # the process dies; a new one starts
        r.h.clock.advance(dt.timedelta(minutes=1))
        asyncio.run(r.hooks.deliver_due())
        assert len(_texts(robots, "/school")) == 1
    finally:
        robots.close()
