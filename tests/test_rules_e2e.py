"""The rules engine end to end on the real Mosquitto: device -> gateway -> spool -> rules -> alerts topic,
acknowledgements back, a restart between the end of lunch and its deadline, webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import http.server
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from broker_config.managed import ManagedMosquitto
from devices.registry import Registry
from devices.topics import ALERTS_SUBSCRIPTION, Channel, DeviceKind, DeviceTopic, alert_ack_topic, alert_topic
from gateway.service import Gateway
from mqtt.device_link import MqttLink
from mqtt.link_options import LinkOptions
from mqtt.service_link import ServiceLink
from rules.config import RulesConfig
from rules.runner import RulesRunner
from rules.store import RulesStore
from rules.webhooks import Route, Webhooks, body_for
from runtime.clock import FakeClock, SystemClock
from simulators.payloads import PayloadFactory
from storage.local import LocalStore
from tests.gateway_harness import serving
from tests.helpers import eventually
from tests.rules_helpers import MORNING
from wiring.broker import BrokerAddress, gateway_link_options
from wiring.build import build_gateway, build_rules, rules_store_path
from wiring.settings import GatewaySettings, MqttSettings, Settings


def _registry(uid: str) -> Registry:
    return Registry.model_validate(
        {
            "region": "jincheng",
            "canteens": [
                {
                    "id": f"c{i}-{uid}",
                    "name": f"学校{i}",
                    "district": "城区",
                    "type": "primary",
                    "testing_tier": "lab",
                    "meals": [{"meal": "lunch", "start": "11:40", "end": "12:30", "dishes": ["米饭", "青菜"]}],
                    "devices": [
                        {"id": f"det{i}-{uid}", "kind": "detector", "heartbeat_s": 3600},
                        {"id": f"cab{i}-{uid}", "kind": "cabinet", "heartbeat_s": 3600},
                    ],
                }
                for i in range(2)
            ],
            "accounts": [
                {"username": f"school{i}-{uid}", "role": "school", "canteen": f"c{i}-{uid}"} for i in range(2)
            ],
        }
    )


class Rig:
    """A gateway and a rules engine (on a fake clock), made by the platform's builder, on the real broker, and an
    observer of the alerts topic."""

    def __init__(self, broker: ManagedMosquitto, tmp: Path, uid: str, clock: FakeClock) -> None:
        self.broker, self.tmp, self.uid, self.clock = broker, tmp, uid, clock
        self.registry = _registry(uid)
        self.settings = Settings(
            data_dir=tmp,
            mqtt=MqttSettings(host=broker.host, port=broker.port, session_expiry_s=3600),
            gateway=GatewaySettings(client_id=f"gw-{uid}"),
        )
        self.seen: list[dict[str, Any]] = []

    def options(self, client_id: str, **kw: Any) -> LinkOptions:
        return LinkOptions(host=self.broker.host, port=self.broker.port, client_id=f"{client_id}-{self.uid}", **kw)

    @contextlib.asynccontextmanager
    async def gateway(self) -> AsyncIterator[Gateway]:
        """The gateway as the platform runs it, reconnects and all; drained and stopped on exit."""
        gateway = build_gateway(self.settings, self.registry, self.clock)
        address = BrokerAddress(self.broker.host, self.broker.port)
        async with serving(gateway, gateway_link_options(self.settings, address)):
            yield gateway

    @contextlib.asynccontextmanager
    async def rules(self, extra_notifiers: list[Any] | None = None) -> AsyncIterator[RulesRunner]:
        runner, alerts_topic = build_rules(self.settings, self.registry, self.clock, config=RulesConfig())
        runner.notifiers += extra_notifiers or []
        async with ServiceLink(self.options("rules", session_expiry_s=3600)) as link:
            alerts_topic.bus = link
            acks = asyncio.create_task(runner.take_acknowledgements(link))
            try:
                yield runner
            finally:
                acks.cancel()
                await asyncio.gather(acks, return_exceptions=True)
                await runner.close()

    @contextlib.asynccontextmanager
    async def observe(self) -> AsyncIterator[None]:
        async with MqttLink(self.options("observer")) as link:
            await link.subscribe([ALERTS_SUBSCRIPTION])

            async def collect() -> None:
                async for incoming in link.messages():
                    if incoming.payload and self.uid in incoming.topic and not incoming.topic.endswith("/ack"):
                        self.seen.append(json.loads(incoming.payload))

            task = asyncio.create_task(collect())
            yield
            task.cancel()

    async def settled(self) -> None:
        """Once the observer has everything published before now: a marker sent after it arrives after it (the
        rules link's publications are acknowledged by the broker before a step returns)."""
        marker = f"marker-{len(self.seen)}-{self.uid}"
        async with MqttLink(self.options("marker")) as link:
            await link.publish(alert_topic(f"c0-{self.uid}", marker), json.dumps({"rule": marker}).encode(), qos=1)
        await eventually(lambda: any(a.get("rule") == marker for a in self.seen), what="the observer caught up")

    async def publish(self, canteen: int, kind: DeviceKind, channel: Channel, model: Any) -> None:
        device = f"{'det' if kind is DeviceKind.DETECTOR else 'cab'}{canteen}-{self.uid}"
        topic = DeviceTopic(f"c{canteen}-{self.uid}", kind, device, channel)
        async with MqttLink(self.options(device)) as link:
            await link.publish(str(topic), model.model_dump_json().encode(), qos=1)


@pytest.fixture
def rig(mosquitto: ManagedMosquitto, tmp_path: Path, uid: str) -> Rig:
    return Rig(mosquitto, tmp_path, uid, FakeClock(MORNING))


async def _until(runner: RulesRunner, condition: Any, what: str) -> None:
    for _ in range(500):
        await runner.step()
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{what} did not happen")


async def test_a_failed_test_reaches_the_alerts_topic_and_the_store(rig: Rig) -> None:
    failed = PayloadFactory(f"det0-{rig.uid}").test_result(MORNING, fail_rate=1.0)
    async with (
        rig.gateway(),
        rig.observe(),
        rig.rules() as runner,
    ):
        await rig.publish(0, DeviceKind.DETECTOR, Channel.EVENT, failed)
        await _until(runner, lambda: any(a["rule"] == "test.failed" for a in rig.seen), "test.failed published")
    (alert,) = [a for a in rig.seen if a["rule"] == "test.failed"]
    assert alert["severity"] == "critical"
    assert alert["state"] == "open"
    assert alert["canteen_id"] == f"c0-{rig.uid}"
    assert failed.msg_id in {e["msg_id"] for e in alert["evidence"]}
    store = LocalStore(rig.tmp / "store.sqlite")
    assert "test.failed" in [a["rule"] for a in store.open_alerts()]  # the alert measurement


async def test_missing_lunch_sample_fires_once_across_a_restart(rig: Rig) -> None:
    async with rig.observe():
        rig.clock.set(MORNING.replace(hour=12, minute=35))  # lunch is over; the deadline is 13:30
        async with rig.rules() as runner:
            await runner.step()
        # the engine is gone (killed) while the deadline passes; a new one starts
        rig.clock.set(MORNING.replace(hour=13, minute=45))
        async with rig.rules() as runner:
            await _until(runner, lambda: sum(a["rule"] == "sample.missing" for a in rig.seen) >= 2, "both canteens")
            rig.clock.set(MORNING.replace(hour=14))
            await runner.step()
        async with rig.rules() as runner:
            await runner.step()
            await rig.settled()  # a duplicate sent by this third engine would have arrived by now
    missing = [a for a in rig.seen if a["rule"] == "sample.missing"]
    assert sorted(a["canteen_id"] for a in missing) == [f"c0-{rig.uid}", f"c1-{rig.uid}"]  # once each


async def test_acknowledgement_from_the_school_is_applied_and_from_another_refused(rig: Rig) -> None:
    failed = PayloadFactory(f"det0-{rig.uid}").test_result(MORNING, fail_rate=1.0)
    async with (
        rig.gateway(),
        rig.observe(),
        rig.rules() as runner,
    ):
        await rig.publish(0, DeviceKind.DETECTOR, Channel.EVENT, failed)
        await _until(runner, lambda: bool(rig.seen), "alert published")
        alert_id, canteen = rig.seen[0]["alert_id"], rig.seen[0]["canteen_id"]
        async with MqttLink(rig.options("supervisor")) as supervisor:
            await supervisor.publish(
                alert_ack_topic(canteen, alert_id),
                json.dumps({"by": f"school1-{rig.uid}", "note": "not mine"}).encode(),
            )
            await _until(
                runner,
                lambda: any(e["action"] == "refused" for e in runner.engine.store.audit_for(alert_id)),
                "refusal recorded",
            )
            assert runner.engine.store.get(alert_id).state == "open"  # type: ignore[union-attr]
            await supervisor.publish(
                alert_ack_topic(canteen, alert_id), json.dumps({"by": f"school0-{rig.uid}", "note": "已退货"}).encode()
            )
            await _until(runner, lambda: any(a["state"] == "acknowledged" for a in rig.seen), "ack published")
    acked = [a for a in rig.seen if a["state"] == "acknowledged"][-1]
    assert (acked["acked_by"], acked["ack_note"]) == (f"school0-{rig.uid}", "已退货")


class Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[Any]] = []

    def do_POST(self) -> None:
        Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _about_test_failed(bodies: list[Any]) -> list[Any]:
    return [
        b for b in bodies if b.get("rule") == "test.failed" or "快检不合格 · " in b.get("text", {}).get("content", "")
    ]


async def test_webhooks_in_three_formats_and_a_dead_one_blocks_nothing(rig: Rig) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    Hook.received = []
    routes = [
        Route("json", url, "json"),
        Route("wecom", url, "wecom"),
        Route("dingtalk", url, "dingtalk"),
        Route("dead", "http://127.0.0.1:9/dead", "json"),
    ]
    hooks = Webhooks(routes, RulesStore(rules_store_path(rig.settings)), rig.registry, SystemClock())
    delivery = asyncio.create_task(hooks.deliver_forever(every_s=0.1))
    failed = PayloadFactory(f"det0-{rig.uid}").test_result(MORNING, fail_rate=1.0)
    try:
        async with (
            rig.gateway(),
            rig.observe(),
            rig.rules([hooks]) as runner,
        ):
            await rig.publish(0, DeviceKind.DETECTOR, Channel.EVENT, failed)
            await _until(runner, lambda: len(_about_test_failed(Hook.received)) >= 3, "three webhooks")
            assert hooks.owed() >= 1  # the dead one waits for its retry, in the outbox
            (alert,) = [a for a in runner.engine.store.alerts() if a.rule == "test.failed"]
            told = {e["to"] for e in runner.engine.store.audit_for(alert.alert_id) if e["action"] == "notified"}
            assert told == {"json", "wecom", "dingtalk"}  # the audit log says who heard of it
    finally:
        delivery.cancel()
        server.shutdown()
        await hooks.close()
    kinds = sorted(("rule" in body and "json") or body["msgtype"] for body in Hook.received)
    assert kinds == ["json", "text", "text"], Hook.received
    text = next(b for b in Hook.received if "text" in b)["text"]["content"]
    assert text.startswith("【严重】")
    assert rig.seen  # the MQTT notice went out although one webhook was dead


def test_webhook_bodies() -> None:
    from rules.alerts import Alert

    at = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    alert = Alert(
        alert_id="a-1",
        rule="cabinet.temperature",
        severity="warning",
        state="resolved",
        canteen_id="c1",
        message="温度超标",
        evidence=[],
        opened_at=at,
        updated_at=at,
        dedup_key="k",
    )
    assert body_for(alert, "json", "城区教育局")["alert_id"] == "a-1"
    assert body_for(alert, "json", "城区教育局")["to"] == "城区教育局"
    assert "dedup_key" not in body_for(alert, "json", "城区教育局")
    assert body_for(alert, "dingtalk", "城区教育局") == {
        "msgtype": "text",
        "text": {"content": "【警告】温度超标（已解除）\n留样柜温度异常 · 告警编号 a-1 · 通知 城区教育局"},
    }


async def test_an_alert_is_retained_while_open_and_cleared_when_resolved(rig: Rig) -> None:
    async def retained_alerts() -> list[str]:
        found: list[str] = []
        async with MqttLink(rig.options("late-subscriber")) as late:
            await late.subscribe([f"shian/v1/alerts/c0-{rig.uid}/#"])
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    async for incoming in late.messages():
                        if incoming.retain and incoming.payload:
                            found.append(incoming.topic)
        return found

    failed = PayloadFactory(f"det0-{rig.uid}").test_result(MORNING, fail_rate=1.0)
    async with (
        rig.gateway(),
        rig.observe(),
        rig.rules() as runner,
    ):
        await rig.publish(0, DeviceKind.DETECTOR, Channel.EVENT, failed)
        await _until(runner, lambda: any(a["rule"] == "test.failed" for a in rig.seen), "alert published")
        alert_id = next(a["alert_id"] for a in rig.seen if a["rule"] == "test.failed")
        assert any(topic.endswith(f"/{alert_id}") for topic in await retained_alerts())
        runner.engine.store.resolve(alert_id, "ops", "batch returned", rig.clock.now())
        await _until(
            runner,
            lambda: any(a["alert_id"] == alert_id and a["state"] == "resolved" for a in rig.seen),
            "resolution published",
        )
        assert not any(topic.endswith(f"/{alert_id}") for topic in await retained_alerts())
