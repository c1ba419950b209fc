"""The platform's MQTT link when the path or the broker fails, or the broker is not what Shian needs: every failure
of the path means drop the link, back off and reconnect, losing nothing; a broker that refuses Shian for good
stops it with one clear line. Against the real Mosquitto, through a proxy that can stop forwarding."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from pathlib import Path

import pytest
import structlog

from broker_config.managed import ManagedMosquitto
from gateway.runner import run_gateway
from gateway.service import Gateway
from mqtt.bus import BrokerRefusal, BusError
from mqtt.device_link import MqttLink
from mqtt.flow import QOS0_HELD
from mqtt.link_options import LinkOptions
from mqtt.service_link import ServiceLink
from runtime.clock import SystemClock
from spool import Spool
from tests.gateway_harness import publish_all
from tests.helpers import eventually, make_registry, records_for
from tests.proxy import StallingProxy


def _options(host: str, port: int, client_id: str, **kw: object) -> LinkOptions:
    return LinkOptions(host=host, port=port, client_id=client_id, **kw)  # type: ignore[arg-type]


async def test_a_request_on_a_dead_path_fails_the_link(mosquitto: ManagedMosquitto, uid: str) -> None:
    """A SUBSCRIBE nobody answers ends in BusError (which every serving loop reconnects from), not TimeoutError."""
    options = _options(mosquitto.host, mosquitto.port, f"svc-{uid}", connect_timeout_s=0.2)
    async with (
        StallingProxy(mosquitto.host, mosquitto.port, stall_after_reads=1).running() as proxy,
        ServiceLink(dataclasses.replace(options, host=proxy.host, port=proxy.port)) as link,
    ):
        with pytest.raises(BusError, match=r"no answer from the broker within 0\.6 s"):
            await link.subscribe([f"t/{uid}"])
        with pytest.raises(BusError):  # the link is over
            await link.receive(1)


class _Gateway:
    """A gateway served by ``run_gateway`` (reconnects and all) through ``host:port``, on its own spool."""

    def __init__(self, tmp: Path, uid: str, host: str, port: int, **options: object) -> None:
        self.registry = make_registry(uid)
        self.gateway = Gateway(self.registry, SystemClock(), Spool(tmp / "spool.sqlite"))
        defaults: dict[str, object] = {"session_expiry_s": 3600, "connect_timeout_s": 0.5, "keepalive_s": 2}
        self.options = _options(host, port, f"gw-{uid}", **{**defaults, **options})
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(run_gateway(self.gateway, self.options))

    async def stop(self) -> None:
        self.gateway.request_stop()
        assert self.task is not None
        await asyncio.wait([self.task], timeout=15)
        self.gateway.spool.close()

    def stored(self) -> int:
        return self.gateway.spool.count_records()


async def test_the_gateway_survives_a_half_open_path(mosquitto: ManagedMosquitto, tmp_path: Path, uid: str) -> None:
    """Its SUBSCRIBE vanishes into a path that stopped forwarding: it reconnects, and once the path works again
    it subscribes and stores everything that waited in the broker for its session."""
    await _subscribe_once(tmp_path, uid, mosquitto)
    messages = records_for(uid, 50)
    await publish_all(mosquitto, f"dev-{uid}", messages)
    async with StallingProxy(mosquitto.host, mosquitto.port, stall_after_reads=1).running() as proxy:
        gw = _Gateway(tmp_path, uid, proxy.host, proxy.port)
        with structlog.testing.capture_logs() as logs:
            gw.start()
            await eventually(lambda: proxy.connections >= 2, timeout=120, what="a second connection")
            assert gw.task is not None
            assert not gw.task.done()  # it reconnects rather than ends
            proxy.resume()
            await eventually(lambda: gw.stored() == len(messages), timeout=120, what="every record stored")
        await gw.stop()
    assert any(e["event"] == "gateway.disconnected" and "no answer" in e["error"] for e in logs)


async def _subscribe_once(tmp: Path, uid: str, broker: ManagedMosquitto) -> None:
    """Create the gateway's persistent session with its subscription, so the broker queues for it from then on."""
    gw = _Gateway(tmp, uid, broker.host, broker.port)
    gw.start()
    await eventually(gw.gateway.subscribed.is_set, what="subscribed")
    await gw.stop()


async def test_the_gateway_survives_a_hung_broker(tmp_path: Path, uid: str) -> None:
    """A broker stopped (SIGSTOP) past the keep-alive: the link fails, reconnects are refused until it runs again,
    and nothing published before, during or after is lost."""
    broker = ManagedMosquitto(tmp_path / "broker")
    broker.start()
    try:
        gw = _Gateway(tmp_path, uid, broker.host, broker.port, keepalive_s=1)
        gw.start()
        await eventually(gw.gateway.subscribed.is_set, what="subscribed")
        messages = records_for(uid, 60)
        await publish_all(broker, f"dev-{uid}", messages[:20])
        pid = broker.process.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        await asyncio.sleep(2.5)  # past 1.5 keep-alives: the link must notice
        os.kill(pid, signal.SIGCONT)
        await publish_all(broker, f"dev-{uid}", messages[20:])
        await eventually(lambda: gw.stored() == len(messages), timeout=120, what="every record stored")
        assert gw.task is not None
        assert not gw.task.done()
        await gw.stop()
    finally:
        broker.stop()


async def test_the_gateway_survives_a_broker_killed_during_subscribe(tmp_path: Path, uid: str) -> None:
    """The broker dies (SIGKILL) while the gateway's SUBSCRIBE is unanswered; it comes back with its persistence:
    the gateway reconnects, and the records queued for its session are all stored."""
    broker = ManagedMosquitto(tmp_path / "broker")
    broker.start()
    try:
        await _subscribe_once(tmp_path, uid, broker)
        messages = records_for(uid, 40)
        await publish_all(broker, f"dev-{uid}", messages)
        async with StallingProxy(broker.host, broker.port, stall_after_reads=1).running() as proxy:
            gw = _Gateway(tmp_path, uid, proxy.host, proxy.port)
            gw.start()
            await eventually(lambda: proxy.connections >= 1, what="connected through the proxy")
            await asyncio.sleep(0.2)  # its SUBSCRIBE is in the void
            broker.process.kill()
            broker.restart()
            proxy.resume()
            await eventually(lambda: gw.stored() == len(messages), timeout=120, what="every queued record stored")
            assert gw.task is not None
            assert not gw.task.done()
            await gw.stop()
    finally:
        broker.stop()


async def test_a_broker_granting_qos_0_only_is_refused_in_one_line(tmp_path: Path, uid: str) -> None:
    broker = ManagedMosquitto(tmp_path / "broker", max_qos=0)
    broker.start()
    try:
        with pytest.raises(BrokerRefusal, match=r"allows QoS 0 only \(max_qos 0\)"):
            async with ServiceLink(_options(broker.host, broker.port, f"svc-{uid}")):
                pass
        gw = _Gateway(tmp_path, uid, broker.host, broker.port)
        gw.start()
        assert gw.task is not None
        await asyncio.wait([gw.task], timeout=10)  # it stops rather than retries forever
        with pytest.raises(BrokerRefusal):
            gw.task.result()
        gw.gateway.spool.close()
    finally:
        broker.stop()


async def test_qos_2_is_never_asked_for(mosquitto: ManagedMosquitto, uid: str) -> None:
    async with ServiceLink(_options(mosquitto.host, mosquitto.port, f"svc-{uid}")) as link:
        with pytest.raises(ValueError, match="never answers QoS 2"):
            await link.subscribe([f"t/{uid}"], qos=2)


async def test_a_lost_session_is_said_and_what_it_means(tmp_path: Path, uid: str) -> None:
    """A broker restarted without persistence has forgotten the gateway's session: the reconnect says so."""
    broker = ManagedMosquitto(tmp_path / "broker", persistence=False)
    broker.start()
    try:
        gw = _Gateway(tmp_path, uid, broker.host, broker.port)
        with structlog.testing.capture_logs() as logs:
            gw.start()
            await eventually(gw.gateway.subscribed.is_set, what="subscribed")
            broker.process.kill()
            broker.restart()
            await eventually(
                lambda: any(e["event"] == "gateway.session_lost" for e in logs), timeout=15, what="session_lost"
            )
        await gw.stop()
        (lost,) = [e for e in logs if e["event"] == "gateway.session_lost"]
        assert lost["log_level"] == "warning"
        assert "messages queued for it while it was away are lost" in lost["meaning"]
        assert [e["session_present"] for e in logs if e["event"] == "gateway.connected"][:2] == [False, False]
    finally:
        broker.stop()


async def test_qos_0_deliveries_are_bounded_while_the_consumer_is_busy(mosquitto: ManagedMosquitto, uid: str) -> None:
    """A flood of QoS 0 while nobody calls receive(): the link stops reading (the broker keeps or drops the rest)
    instead of holding everything in memory."""
    async with ServiceLink(_options(mosquitto.host, mosquitto.port, f"svc-{uid}", receive_maximum=100)) as link:
        await link.subscribe([f"t/{uid}"], qos=0)
        # 20,000 publications wait in the client's buffer before the sync's round trip: on a busy machine that
        # takes longer than the default 10 s operation timeout
        async with MqttLink(_options(mosquitto.host, mosquitto.port, f"dev-{uid}", connect_timeout_s=120)) as device:
            for n in range(20_000):
                await device.publish(f"t/{uid}", b"x" * 100, qos=0)
                if n % 1000 == 0:
                    await asyncio.sleep(0)
            await device.sync()  # the broker has had every publication (paho drops unsent QoS 0 on disconnect)
        await eventually(lambda: link.qos0.pauses >= 1, timeout=60, what="the link stopped reading")
        await asyncio.sleep(0.2)  # what was already in the socket buffers arrives
        held = len(link._deliveries)
        assert held <= 2 * QOS0_HELD, held  # at most twice the pause mark
        assert link.qos0.held_max <= 2 * QOS0_HELD
        taken = 0
        async with asyncio.timeout(60):
            while taken < held:
                taken += len(await link.receive(500))
        assert not link.qos0.paused  # reading again once the consumer caught up
