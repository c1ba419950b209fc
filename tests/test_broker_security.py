"""The attack matrix, on a real Mosquitto running the files `shian broker provision` generates.

Every verdict is judged by what is delivered (or stored), never by a SUBACK or a PUBACK: Mosquitto grants any
subscription and acknowledges a denied publish under MQTT 3.1.1 alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml

from broker_config.managed import ManagedMosquitto, SecureOptions
from broker_config.mosquitto_conf import TlsFiles
from broker_config.provision import PRODUCTION_MAX_PACKET_BYTES, check_password, provision
from devices.messages import WireModel
from devices.registry import RULES_SUFFIX, Registry, rules_account
from devices.topics import Channel, DeviceKind, DeviceTopic, alert_ack_topic, alert_topic, public_daily_topic
from gateway.service import Gateway
from mqtt.bus import Incoming
from mqtt.device_link import MqttError, MqttLink
from mqtt.link_options import LinkOptions
from mqtt.service_link import ServiceLink
from runtime.clock import SystemClock
from simulators.payloads import PayloadFactory
from spool import Spool
from tests.certificates import make_certificates
from tests.helpers import NOW, eventually

KINDS = (DeviceKind.DETECTOR, DeviceKind.CABINET, DeviceKind.CAMERA)
#: The rules engine's connection of the platform that logs in as "gateway".
RULES = rules_account("gateway")


def security_registry(extra_devices: int = 0) -> Registry:
    """Three canteens (two in 城区, one in 泽州县), one device of each kind, and every kind of account."""
    canteens = []
    for i, district in enumerate(["城区", "城区", "泽州县"]):
        devices = [{"id": f"{kind}{i}", "kind": kind} for kind in KINDS]
        devices += [{"id": f"cabinet{i}x{n}", "kind": "cabinet"} for n in range(extra_devices)]
        canteens.append(
            {"id": f"c{i}", "name": f"食堂{i}", "district": district, "type": "primary", "devices": devices}
        )
    accounts = [
        {"username": "gateway", "role": "gateway"},
        {"username": "gateway2", "role": "gateway"},  # a second platform, with a session of its own
        *({"username": f"school{i}", "role": "school", "canteen": f"c{i}"} for i in range(3)),
        {"username": "district-cq", "role": "district", "district": "城区"},
        {"username": "city", "role": "city"},
    ]
    return Registry.model_validate({"region": "sec", "canteens": canteens, "accounts": accounts})


class SecureBroker:
    def __init__(self, workdir: Path, registry: Registry, tls: TlsFiles | None = None) -> None:
        self.workdir = workdir
        self.registry = registry
        self.tls = tls
        self.files = workdir / "provisioned"
        self.result = provision(registry, self.files, tls=tls, persistence_dir=workdir / "data")
        self.broker = ManagedMosquitto(
            workdir / "broker",
            secure=SecureOptions(
                password_file=self.result.passwd,
                acl_file=self.result.acl,
                tls=tls,
                max_packet_bytes=PRODUCTION_MAX_PACKET_BYTES,
            ),
        )
        self.broker.start()

    def password(self, username: str) -> str:
        data: dict[str, str] = yaml.safe_load(self.result.credentials.read_text())
        # a rules engine's account shares its gateway's password
        return data.get(username) or data[username.removesuffix(RULES_SUFFIX)]

    def options(
        self, username: str, *, client_id: str | None = None, password: str | None = None, **kw: object
    ) -> LinkOptions:
        return LinkOptions(
            host=self.broker.host,
            port=self.broker.port,
            client_id=client_id or username,
            username=username,
            password=self.password(username) if password is None else password,
            **kw,  # type: ignore[arg-type]
        )

    def reprovision(self, registry: Registry, rotate: tuple[str, ...] = ()) -> None:
        self.registry = registry
        self.result = provision(registry, self.files, rotate=rotate, tls=self.tls, persistence_dir=self.workdir)
        self.broker.write_config()  # hands the new files to the broker's user
        self.broker.reload()


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    broker = SecureBroker(tmp_path_factory.mktemp("secure"), security_registry())
    yield broker
    broker.broker.stop()


@pytest.fixture
async def gateway(secure: SecureBroker, tmp_path: Path) -> AsyncIterator[Gateway]:
    gw = Gateway(secure.registry, SystemClock(), Spool(tmp_path / "spool.sqlite"))
    async with ServiceLink(secure.options("gateway")) as link:
        task = asyncio.create_task(gw.serve(link))
        await eventually(gw.subscribed.is_set)
        yield gw
        gw.request_stop()
        await asyncio.wait([task], timeout=10)
    gw.spool.close()


def _reading(device: str, msg_id: str) -> bytes:
    """Valid telemetry for ``device`` (its kind is the start of its id)."""
    factory = PayloadFactory(device)
    model: WireModel
    if device.startswith(DeviceKind.DETECTOR):
        model = factory.detector_heartbeat(NOW)
    elif device.startswith(DeviceKind.CABINET):
        model = factory.cabinet_reading(NOW, samples_held=1)
    else:
        model = factory.camera_stream(NOW)
    return model.model_copy(update={"msg_id": msg_id}).model_dump_json().encode()


def _stored(gateway: Gateway) -> set[str]:
    return {r.msg_id for r in gateway.spool.all_records()}


def test_provisioned_passwords_are_mosquitto_hashes(secure: SecureBroker) -> None:
    lines = dict(line.split(":", 1) for line in secure.result.passwd.read_text().splitlines())
    assert set(lines) == {f"{k}{i}" for k in KINDS for i in range(3)} | {
        "gateway",
        "gateway-rules",
        "gateway2",
        "gateway2-rules",
        "school0",
        "school1",
        "school2",
        "district-cq",
        "city",
        "public-c0",
        "public-c1",
        "public-c2",
    }
    assert all(h.startswith("$7$101$") for h in lines.values())
    assert check_password(secure.password("cabinet0"), lines["cabinet0"])
    assert secure.result.credentials.stat().st_mode & 0o077 == 0  # secret: owner only
    # mosquitto_passwd agrees with the hash format: a file it writes has the same shape
    other = secure.workdir / "probe"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(other), "probe", "pw"], check=True)
    assert other.read_text().startswith("probe:$7$101$")


async def test_every_cross_device_publish_is_never_stored(secure: SecureBroker, gateway: Gateway) -> None:
    devices = [(f"{k}{i}", DeviceTopic(f"c{i}", k, f"{k}{i}", Channel.TELEMETRY)) for i in range(3) for k in KINDS]
    attempts = 0
    for (attacker, _), (victim, victim_topic) in itertools.permutations(devices, 2):
        async with MqttLink(secure.options(attacker)) as link:
            for channel in (Channel.TELEMETRY, Channel.EVENT, Channel.STATUS):
                await link.publish(
                    str(victim_topic.with_channel(channel)), _reading(victim, f"x-{attacker}-{victim}-{channel}")
                )
                attempts += 1
            # its own topic afterwards: once this is stored, anything it sent before has been delivered, if at all
            own = next(t for d, t in devices if d == attacker)
            await link.publish(str(own), _reading(attacker, f"own-{attacker}-{victim}"))
    assert attempts == 9 * 8 * 3
    await eventually(lambda: gateway.stats.received >= 9 * 8, what="every control received")
    stored = _stored(gateway)
    assert {m for m in stored if m.startswith("own-")} == {
        f"own-{a}-{v}" for (a, _), (v, _) in itertools.permutations(devices, 2)
    }
    assert not {m for m in stored if m.startswith("x-")}
    assert gateway.stats.received == 9 * 8  # not even dead-lettered: the broker never delivered them


async def test_cross_canteen_subscriptions_receive_nothing(secure: SecureBroker, gateway: Gateway) -> None:
    """Accounts subscribe far beyond their grant; the gateway then publishes alerts of every canteen and devices
    publish data. Each account receives exactly what its role allows."""
    subscribers = ["school0", "district-cq", "city", "camera0", "detector1"]
    received: dict[str, list[str]] = {name: [] for name in subscribers}
    links = []
    for name in subscribers:
        link = MqttLink(secure.options(name))
        await link.__aenter__()
        await link.subscribe(["shian/v1/#", "shian/v1/alerts/#", "shian/v1/c1/#", "#"])
        links.append((name, link))

    async def collect(name: str, link: MqttLink) -> None:
        async for incoming in link.messages():
            received[name].append(incoming.topic)

    tasks = [asyncio.create_task(collect(name, link)) for name, link in links]
    try:
        async with MqttLink(secure.options(RULES)) as publisher:
            for i in range(3):
                await publisher.publish(alert_topic(f"c{i}", f"a{i}"), b'{"alert": 1}')
        for i in range(3):
            async with MqttLink(secure.options(f"cabinet{i}")) as device:
                await device.publish(
                    str(DeviceTopic(f"c{i}", DeviceKind.CABINET, f"cabinet{i}", Channel.TELEMETRY)),
                    _reading(f"cabinet{i}", f"sub-{i}"),
                )
        await eventually(lambda: {f"sub-{i}" for i in range(3)} <= _stored(gateway), what="device data delivered")
        for _, link in links:
            await link.sync()  # whatever the broker queued for this client before now has been read
        await asyncio.sleep(0.2)
    finally:
        for task in tasks:
            task.cancel()
        for _, link in links:
            await link.__aexit__(None, None, None)
    alerts = {i: alert_topic(f"c{i}", f"a{i}") for i in range(3)}
    # (sets: with overlapping subscriptions, MQTT 5 delivers a copy per matching subscription)
    assert set(received["school0"]) == {alerts[0]}
    assert set(received["district-cq"]) == {alerts[0], alerts[1]}
    assert set(received["city"]) == set(alerts.values())
    # devices see no alerts and no other device's data ($SYS included)
    assert received["camera0"] == []
    assert received["detector1"] == []


async def test_a_canteens_public_account_reads_its_own_digest_and_nothing_else(secure: SecureBroker) -> None:
    """The parents' digest is retained on each canteen's public topic; canteen 0's public account reads canteen 0's
    and no other, and may publish nothing there."""
    async with MqttLink(secure.options(RULES)) as platform:
        for i in range(3):
            await platform.publish(
                public_daily_topic(f"c{i}"), json.dumps({"canteen_id": f"c{i}"}).encode(), retain=True
            )
    received: list[str] = []
    async with MqttLink(secure.options("public-c0")) as reader:
        await reader.subscribe(["#", "shian/v1/public/#", "shian/v1/public/c1/#", "shian/v1/alerts/#"])
        await reader.publish(public_daily_topic("c1"), b'{"forged": true}', retain=True)  # refused by the ACL

        async def collect() -> None:
            async for incoming in reader.messages():
                received.append(incoming.topic)

        task = asyncio.create_task(collect())
        await reader.sync()
        await asyncio.sleep(0.3)
        task.cancel()
    assert set(received) == {public_daily_topic("c0")}
    async with MqttLink(secure.options("public-c1")) as other:
        await other.subscribe([public_daily_topic("c1")])
        first = await anext(other.messages())
    assert json.loads(first.payload) == {"canteen_id": "c1"}  # not the forged copy


async def test_sys_topics_deliver_nothing_to_a_device(secure: SecureBroker, mosquitto: ManagedMosquitto) -> None:
    async def first_sys_message(options: LinkOptions) -> Incoming | None:
        async with MqttLink(options) as link:
            await link.subscribe(["$SYS/#"])
            try:
                return await asyncio.wait_for(anext(aiter(link.messages())), 2.0)
            except TimeoutError:
                return None

    # Control: where no ACL applies, $SYS/broker/version (retained) arrives at once.
    control = await first_sys_message(LinkOptions(host=mosquitto.host, port=mosquitto.port, client_id="sys-probe"))
    assert control is not None
    assert control.topic.startswith("$SYS/")
    assert await first_sys_message(secure.options("camera0")) is None


async def test_a_second_connection_cannot_take_a_devices_identity(secure: SecureBroker, gateway: Gateway) -> None:
    victim_topic = DeviceTopic("c0", DeviceKind.CABINET, "cabinet0", Channel.TELEMETRY)
    async with MqttLink(secure.options("cabinet0")) as victim:
        for options in (
            LinkOptions(host=secure.broker.host, port=secure.broker.port, client_id="cabinet0"),  # anonymous
            secure.options("cabinet0", password="wrong"),
        ):
            with pytest.raises(MqttError):
                async with MqttLink(options):
                    pass
        # Another device's valid account, asking for the victim's client id, becomes itself (username as client
        # id): the victim is not disconnected, and the intruder cannot write the victim's topics.
        async with MqttLink(secure.options("cabinet1", client_id="cabinet0")) as intruder:
            await intruder.publish(str(victim_topic), _reading("cabinet0", "intruder"))
            await victim.publish(str(victim_topic), _reading("cabinet0", "victim-still-here"))
        await eventually(lambda: "victim-still-here" in _stored(gateway), what="the victim still publishes")
    assert "intruder" not in _stored(gateway)


async def test_a_retained_device_publish_is_not_acted_on_twice(
    secure: SecureBroker, gateway: Gateway, tmp_path: Path
) -> None:
    topic = str(DeviceTopic("c2", DeviceKind.CABINET, "cabinet2", Channel.TELEMETRY))
    async with MqttLink(secure.options("cabinet2")) as device:
        await device.publish(topic, _reading("cabinet2", "retained-once"), retain=True)
    await eventually(lambda: "retained-once" in _stored(gateway))
    # a new gateway session gets the retained replay, and ignores it
    second = Gateway(secure.registry, SystemClock(), Spool(tmp_path / "second.sqlite"))
    async with ServiceLink(secure.options("gateway2")) as link:
        task = asyncio.create_task(second.serve(link))
        await eventually(lambda: second.stats.ignored["retained replay"] >= 1, what="replay seen")
        second.request_stop()
        await asyncio.wait([task], timeout=10)
    assert second.stats.stored == 0
    async with MqttLink(secure.options("cabinet2")) as device:
        await device.publish(topic, b"", retain=True)


async def test_an_oversized_packet_disconnects_its_sender(secure: SecureBroker) -> None:
    topic = str(DeviceTopic("c1", DeviceKind.CAMERA, "camera1", Channel.TELEMETRY))

    async def send_oversized() -> None:
        async with MqttLink(secure.options("camera1")) as link:
            # The broker drops the connection (reason 149, packet too large); the PUBACK never comes.
            with contextlib.suppress(TimeoutError, MqttError):
                await asyncio.wait_for(link.publish(topic, b"x" * (PRODUCTION_MAX_PACKET_BYTES + 1)), 3)
            await link.sync()  # a connected client would get its UNSUBACK

    with pytest.raises(MqttError):
        await send_oversized()


async def test_a_school_cannot_acknowledge_another_schools_alert(secure: SecureBroker) -> None:
    seen: list[str] = []
    async with MqttLink(secure.options(RULES)) as observer:
        await observer.subscribe(["shian/v1/alerts/#"])

        async def collect() -> None:
            async for incoming in observer.messages():
                seen.append(incoming.topic)

        task = asyncio.create_task(collect())
        async with MqttLink(secure.options("school0")) as school:
            await school.publish(alert_ack_topic("c1", "a1"), json.dumps({"by": "school0"}).encode())
            await school.publish(alert_ack_topic("c0", "a0"), json.dumps({"by": "school0"}).encode())
        await eventually(lambda: alert_ack_topic("c0", "a0") in seen, what="its own ack delivered")
        task.cancel()
    assert alert_ack_topic("c1", "a1") not in seen


@pytest.mark.parametrize("client_certificates", [False, True], ids=["password", "password+client-cert"])
async def test_tls_trusts_only_the_fleet_ca(tmp_path: Path, client_certificates: bool) -> None:
    certs = make_certificates(tmp_path / "certs")
    tls = TlsFiles(
        cafile=certs["ca_crt"],
        certfile=certs["server_crt"],
        keyfile=certs["server_key"],
        require_certificate=client_certificates,
    )
    secure = SecureBroker(tmp_path / "tls", security_registry(), tls=tls)
    topic = str(DeviceTopic("c0", DeviceKind.CABINET, "cabinet0", Channel.TELEMETRY))
    cert, key = certs["client_crt"], certs["client_key"]
    try:
        with pytest.raises(MqttError):  # does not trust the broker's CA
            async with MqttLink(secure.options("cabinet0", tls_ca=certs["stranger_crt"], tls_cert=cert, tls_key=key)):
                pass
        with pytest.raises(MqttError):  # no TLS at all
            async with MqttLink(secure.options("cabinet0")):
                pass
        if client_certificates:
            with pytest.raises(MqttError):  # trusts the CA, but brings no certificate of its own
                async with MqttLink(secure.options("cabinet0", tls_ca=certs["ca_crt"])):
                    pass
        async with MqttLink(secure.options("cabinet0", tls_ca=certs["ca_crt"], tls_cert=cert, tls_key=key)) as link:
            await link.publish(topic, _reading("cabinet0", "over-tls"))
    finally:
        secure.broker.stop()


async def test_add_rotate_and_revoke_take_effect_on_reload_without_disconnecting_others(tmp_path: Path) -> None:
    registry = security_registry(extra_devices=2)  # cabinet0x0 and cabinet0x1 besides the usual ones
    secure = SecureBroker(tmp_path / "rotation", registry)
    gateway = Gateway(registry, SystemClock(), Spool(tmp_path / "spool.sqlite"))
    steady_topic = str(DeviceTopic("c0", DeviceKind.CABINET, "cabinet0", Channel.TELEMETRY))
    counter = itertools.count()
    try:
        async with (
            ServiceLink(secure.options("gateway")) as gateway_link,
            MqttLink(secure.options("cabinet0")) as steady,
        ):
            gateway_task = asyncio.create_task(gateway.serve(gateway_link))
            await eventually(gateway.subscribed.is_set)

            async def publish_steadily() -> None:
                while True:
                    await steady.publish(steady_topic, _reading("cabinet0", f"steady-{next(counter)}"))
                    await asyncio.sleep(0.01)

            publisher = asyncio.create_task(publish_steadily())
            old_password = secure.password("cabinet0x1")

            # revoke cabinet0x0, rotate cabinet0x1, add cabinet0x2
            canteens = [c.model_dump() for c in registry.canteens]
            devices = canteens[0]["devices"]
            devices[[d["id"] for d in devices].index("cabinet0x0")]["revoked"] = True
            devices.append({"id": "cabinet0x2", "kind": "cabinet"})
            changed = Registry.model_validate({**registry.model_dump(), "canteens": canteens})
            secure.reprovision(changed, rotate=("cabinet0x1",))
            assert secure.result.removed == ["cabinet0x0"]
            assert secure.result.rotated == ["cabinet0x1"]
            assert secure.result.created == ["cabinet0x2"]

            async def can_connect(options: LinkOptions) -> bool:
                try:
                    async with MqttLink(options):
                        return True
                except MqttError:
                    return False

            for _ in range(50):  # the broker handles SIGHUP in its own time
                if not await can_connect(secure.options("cabinet0x1", password=old_password)):
                    break
                await asyncio.sleep(0.05)
            assert not await can_connect(secure.options("cabinet0x1", password=old_password))
            assert await can_connect(secure.options("cabinet0x1"))
            assert await can_connect(secure.options("cabinet0x2"))
            assert not await can_connect(
                secure.options(
                    "cabinet0x0",
                    password=yaml.safe_load((secure.files / "credentials.yaml").read_text()).get("cabinet0x0", "gone"),
                )
            )

            sent_before = next(counter)
            await eventually(lambda: gateway.stats.stored > sent_before, what="steady device still publishing")
            publisher.cancel()
            gateway.request_stop()
            await asyncio.wait([gateway_task], timeout=10)
        assert gateway.stats.stored >= sent_before
    finally:
        gateway.spool.close()
        secure.broker.stop()
