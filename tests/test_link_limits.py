"""The platform's MQTT link against the provisioned broker (accounts, ACL, the production packet limit, TLS):
what any device can send never costs the gateway its connection, and a broker that will not have Shian says so
once instead of being retried forever."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker_config.mosquitto_conf import TlsFiles
from devices.messages import DEADLETTER_PAYLOAD_BYTES, DeadLetter
from devices.topics import Channel, DeviceKind, DeviceTopic, deadletter_topic
from gateway.runner import run_gateway
from gateway.service import Gateway
from mqtt.bus import BrokerRefusal, BusError
from mqtt.device_link import MqttLink
from mqtt.service_link import ServiceLink
from runtime.clock import SystemClock
from spool import Spool
from tests.certificates import make_certificates
from tests.helpers import eventually
from tests.test_broker_security import SecureBroker, _reading, security_registry


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    broker = SecureBroker(tmp_path_factory.mktemp("limits"), security_registry())
    yield broker
    broker.broker.stop()


async def test_invalid_60kb_payloads_never_cost_the_gateway_its_connection(
    secure: SecureBroker, tmp_path: Path
) -> None:
    """At the production limit (65 KiB), the dead-letter notice of a 60 KB payload would not fit: it carries the
    payload's first 16 KiB, its size and hash; the spool keeps it whole."""
    gateway = Gateway(secure.registry, SystemClock(), Spool(tmp_path / "spool.sqlite"))
    topic = str(DeviceTopic("c1", DeviceKind.CAMERA, "camera1", Channel.TELEMETRY))
    bad = b'{"type": "camera.stream", "junk": "' + b"x" * 60_000 + b'"}'
    async with ServiceLink(secure.options("gateway")) as link:
        task = asyncio.create_task(gateway.serve(link))
        await eventually(gateway.subscribed.is_set, what="subscribed")
        async with MqttLink(secure.options("camera1")) as device:
            for _ in range(5):
                await device.publish(topic, bad)
            await device.publish(topic, _reading("camera1", "after-the-flood"))
        await eventually(lambda: gateway.stats.stored == 1, what="the good record stored")
        await link.flush()
        assert not task.done()  # never disconnected
        assert (link.posts_failed, link.oversized) == (0, 0)  # every notice and receipt went out
        gateway.request_stop()
        await asyncio.wait([task], timeout=10)
    letters = gateway.spool.dead_letters()
    assert len(letters) == 5
    assert all(letter.payload == bad for letter in letters)  # the spool keeps the payload whole
    notice = DeadLetter.of(
        bad, reason="x", detail="d", topic=topic, client_id="camera1", received_at=letters[0].received_at
    )
    assert notice.truncated
    assert base64.b64decode(notice.payload_b64) == bad[:DEADLETTER_PAYLOAD_BYTES]
    assert (notice.payload_size, notice.payload_sha256) == (len(bad), hashlib.sha256(bad).hexdigest())
    gateway.spool.close()


async def test_a_publication_over_the_brokers_maximum_is_refused_not_sent(secure: SecureBroker) -> None:
    topic = deadletter_topic("too_large")
    async with ServiceLink(secure.options("gateway")) as link:
        link.post(topic, b"x" * 70_000)
        await link.flush()
        assert (link.oversized, link.posts_failed) == (1, 1)
        with pytest.raises(BusError, match="exceeds the broker's maximum packet size"):
            await link.publish(topic, b"x" * 70_000)
        await link.publish(topic, b"{}")  # still connected
        await link.sync()


async def test_a_wrong_password_stops_the_gateway_with_one_line(secure: SecureBroker, tmp_path: Path) -> None:
    options = secure.options("gateway", password="wrong")
    with pytest.raises(BrokerRefusal, match=r"refused the connection of 'gateway': not authorized \(0x87\)"):
        async with ServiceLink(options):
            pass
    gateway = Gateway(secure.registry, SystemClock(), Spool(tmp_path / "spool.sqlite"))
    task = asyncio.create_task(run_gateway(gateway, options))
    await asyncio.wait([task], timeout=10)
    assert task.done()  # not retried forever
    with pytest.raises(BrokerRefusal, match=r"check mqtt\.username, mqtt\.password"):
        task.result()
    gateway.spool.close()


async def test_the_service_link_over_tls(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs")
    tls = TlsFiles(cafile=certs["ca_crt"], certfile=certs["server_crt"], keyfile=certs["server_key"])
    broker = SecureBroker(tmp_path / "tls", security_registry(), tls=tls)
    try:
        async with ServiceLink(broker.options("gateway", tls_ca=certs["ca_crt"])) as link:
            await link.subscribe(["shian/v1/c1/#"])
            await link.publish(deadletter_topic("probe"), b"{}")
        with pytest.raises(BusError, match="CERTIFICATE_VERIFY_FAILED"):  # a CA the link does not trust
            async with ServiceLink(broker.options("gateway", tls_ca=certs["stranger_crt"])):
                pass
        # the certificate names 127.0.0.1, not localhost
        wrong_name = dataclasses.replace(broker.options("gateway", tls_ca=certs["ca_crt"]), host="localhost")
        with pytest.raises(BusError, match=r"CERTIFICATE_VERIFY_FAILED|[Hh]ostname mismatch"):
            async with ServiceLink(wrong_name):
                pass
        with pytest.raises(BusError):  # plain TCP to the TLS listener
            async with ServiceLink(broker.options("gateway", connect_timeout_s=2)):
                pass
    finally:
        broker.broker.stop()
