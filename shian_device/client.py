"""One device's connection to a Shian platform: status with a last will, a typed method per message, records
kept in a durable outbox until their receipts, reconnects with backoff, warnings the receipts carry."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import BaseModel, ValidationError

from devices.messages import (
    AiViolation,
    CabinetReading,
    CameraStream,
    DetectorHeartbeat,
    DeviceStatus,
    Receipt,
    SampleDisposed,
    SampleRetained,
    TestResult,
)
from devices.topics import Channel, DeviceKind, DeviceTopic
from shian_device.outbox import Outbox, Pending

log = logging.getLogger("shian_device")


@dataclass(frozen=True)
class TlsFiles:
    """The broker's CA, and this device's client certificate and key (when the broker asks for one)."""

    cafile: Path
    certfile: Path | None = None
    keyfile: Path | None = None

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.cafile))
        if self.certfile is not None:
            context.load_cert_chain(str(self.certfile), str(self.keyfile) if self.keyfile else None)
        return context


@dataclass(frozen=True)
class DeviceConfig:
    """Who the device is (as the canteen registry has it) and where its platform is."""

    canteen_id: str
    kind: DeviceKind
    device_id: str
    host: str
    port: int = 1883
    #: The device's broker password (``shian broker provision``); its username is its device id.
    password: str | None = None
    tls: TlsFiles | None = None
    #: Where the outbox and the msg_id counter live: on flash, kept across reboots.
    state_dir: Path = Path("shian-device")
    #: A record without a receipt for this long is sent again (byte for byte).
    resend_after_s: float = 30.0
    keepalive_s: int = 30
    #: Reconnect backoff: from one second, doubling, at most this, with jitter.
    reconnect_max_s: float = 30.0
    #: The broker keeps the session (and the receipts for it) this long while the device is away.
    session_expiry_s: int = 3600


@dataclass
class DeviceStats:
    sent: int = 0
    resent: int = 0
    receipts: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    #: Receipts that said the device's clock is off (the platform flags such records).
    clock_skew_warnings: int = 0
    connects: int = 0


class Device:
    """``async with Device(config) as device: await device.send_test_result(...)``.

    Records (``send_test_result``, ``send_sample_retained``, ``send_sample_disposed``, ``send_ai_violation``)
    are written to the outbox before anything is sent, and kept until the platform's receipt: whatever happens
    to the connection or the device, each reaches the platform exactly once (the platform drops the resends of a
    record it already has). Telemetry (``send_detector_heartbeat``, ``send_cabinet_reading``,
    ``send_camera_stream``) is sent only while connected: the next reading replaces a lost one. Each method
    validates its fields against the contract's model first and raises ``ValueError`` naming what is wrong."""

    def __init__(
        self,
        config: DeviceConfig,
        *,
        on_rejected: Callable[[str, str], None] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        """``clock``: where ``ts`` comes from when a message does not give it (default: the device's own clock,
        with its local offset); a simulator passes its simulated one."""
        self.config = config
        self.clock = clock or _now
        self.stats = DeviceStats()
        self.connected = asyncio.Event()
        #: Set by every receipt (``drained`` waits on it).
        self._answered = asyncio.Event()
        self.on_rejected = on_rejected
        self._outbox: Outbox | None = None
        self._client: aiomqtt.Client | None = None
        self._runner: asyncio.Task[None] | None = None
        self._topics = {
            channel: str(DeviceTopic(config.canteen_id, config.kind, config.device_id, channel)) for channel in Channel
        }

    # --- lifecycle --------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Device:
        self._outbox = Outbox(self.config.state_dir / f"{self.config.device_id}.outbox.sqlite", self.config.device_id)
        self._runner = asyncio.create_task(self._run(), name=f"shian-device-{self.config.device_id}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Say ``offline`` (retained) and disconnect; records still waiting stay in the outbox for next time."""
        await self.send_status("offline")
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        if self._outbox is not None:
            self._outbox.close()

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            raise RuntimeError("use the device as 'async with Device(config) as device'")
        return self._outbox

    async def drained(self, timeout: float | None = None) -> None:
        """Wait until every record has its receipt."""
        async with asyncio.timeout(timeout):
            while self.outbox.waiting():
                self._answered.clear()
                await self._answered.wait()

    # --- records ----------------------------------------------------------------------------------------------

    async def send_test_result(self, **fields: Any) -> str:
        return await self._record(TestResult, "test.result", fields)

    async def send_sample_retained(self, **fields: Any) -> str:
        return await self._record(SampleRetained, "sample.retained", fields)

    async def send_sample_disposed(self, **fields: Any) -> str:
        return await self._record(SampleDisposed, "sample.disposed", fields)

    async def send_ai_violation(self, **fields: Any) -> str:
        return await self._record(AiViolation, "ai.violation", fields)

    # --- telemetry --------------------------------------------------------------------------------------------

    async def send_detector_heartbeat(self, **fields: Any) -> bool:
        return await self._telemetry(DetectorHeartbeat, "detector.heartbeat", fields)

    async def send_cabinet_reading(self, **fields: Any) -> bool:
        return await self._telemetry(CabinetReading, "cabinet.reading", fields)

    async def send_camera_stream(self, **fields: Any) -> bool:
        return await self._telemetry(CameraStream, "camera.stream", fields)

    # --- status -----------------------------------------------------------------------------------------------

    async def send_status(self, state: str) -> bool:
        """Say ``online`` or ``offline`` (retained) now, e.g. before a planned shutdown; the SDK says ``online``
        on every connect and its last will says ``offline`` by itself. False when not connected."""
        return await self._publish(self._topics[Channel.STATUS], self._status(state), retain=True)

    # --- inside -----------------------------------------------------------------------------------------------

    async def _record(self, model: type[BaseModel], kind: str, fields: dict[str, Any]) -> str:
        record = self.outbox.add(
            self._topics[Channel.EVENT], lambda msg_id: _payload(model, kind, msg_id, {"ts": self.clock(), **fields})
        )
        await self._send(record)
        return record.msg_id

    async def _telemetry(self, model: type[BaseModel], kind: str, fields: dict[str, Any]) -> bool:
        """Sent when connected (True); dropped otherwise (False)."""
        if self._client is None:
            return False  # before taking a msg_id: a reading never sent uses none
        payload = _payload(model, kind, self.outbox.next_telemetry_id(), {"ts": self.clock(), **fields})
        if not await self._publish(self._topics[Channel.TELEMETRY], payload):
            return False
        self.stats.sent += 1
        return True

    async def _send(self, record: Pending, *, again: bool = False) -> None:
        if not await self._publish(record.topic, record.payload):
            return  # sent from the outbox on reconnect
        self.outbox.sent(record.msg_id)
        if again:
            self.stats.resent += 1
        else:
            self.stats.sent += 1

    async def _publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        """QoS 1 on the current connection; False when there is none or it failed (the run loop reconnects)."""
        client = self._client
        if client is None:
            return False
        try:
            await client.publish(topic, payload, qos=1, retain=retain)
        except aiomqtt.MqttError:
            return False
        return True

    async def _run(self) -> None:
        delay = 1.0
        while True:
            try:
                async with self._connect() as client:
                    self._client = client
                    self.stats.connects += 1
                    delay = 1.0
                    await client.publish(self._topics[Channel.STATUS], self._status("online"), qos=1, retain=True)
                    await client.subscribe(self._topics[Channel.RECEIPT], qos=1)
                    self.connected.set()
                    log.info("connected to %s:%s as %s", self.config.host, self.config.port, self.config.device_id)
                    resender = asyncio.create_task(self._resend_forever(on_reconnect=True))
                    try:
                        async for message in client.messages:
                            self._receipt(bytes(message.payload) if isinstance(message.payload, bytes) else b"")
                    finally:
                        resender.cancel()
            except aiomqtt.MqttError as exc:
                log.warning("connection lost (%s); reconnecting in %.1f s", exc, delay)
            finally:
                self._client = None
                self.connected.clear()
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self.config.reconnect_max_s)

    def _connect(self) -> aiomqtt.Client:
        c = self.config
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = c.session_expiry_s
        return aiomqtt.Client(
            c.host,
            c.port,
            identifier=c.device_id,
            username=c.device_id,
            password=c.password,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=properties,
            keepalive=c.keepalive_s,
            will=aiomqtt.Will(self._topics[Channel.STATUS], self._status("offline"), qos=1, retain=True),
            tls_context=c.tls.context() if c.tls else None,
            timeout=10,
        )

    async def _resend_forever(self, *, on_reconnect: bool) -> None:
        """After a (re)connect everything waiting is sent at once; then what goes unanswered, every while."""
        first = on_reconnect
        while True:
            for record in self.outbox.due(0.0 if first else self.config.resend_after_s):
                await self._send(record, again=True)
            first = False
            await asyncio.sleep(min(1.0, self.config.resend_after_s))

    def _receipt(self, payload: bytes) -> None:
        try:
            receipt = Receipt.model_validate_json(payload)
        except ValidationError:
            log.warning("an unreadable receipt: %r", payload[:200])
            return
        self.stats.receipts += 1
        self.outbox.done(receipt.msg_id)
        self._answered.set()
        reason = receipt.reason or ""
        if receipt.status == "rejected":
            self.stats.rejected.append((receipt.msg_id, reason))
            log.error("record %s rejected: %s", receipt.msg_id, reason)
            if self.on_rejected is not None:
                self.on_rejected(receipt.msg_id, reason)
        elif reason.startswith("clock_skew"):
            self.stats.clock_skew_warnings += 1
            log.warning("the device clock is off: %s (synchronise it with NTP)", reason)
        elif reason:
            log.warning("record %s: %s", receipt.msg_id, reason)

    def _status(self, state: str) -> bytes:
        status = DeviceStatus.model_validate({"type": "device.status", "state": state, "ts": self.clock()})
        return status.model_dump_json().encode()


def _now() -> dt.datetime:
    return dt.datetime.now().astimezone()


def _payload(model: type[BaseModel], kind: str, msg_id: str, fields: dict[str, Any]) -> bytes:
    """The message as the contract has it. Raises ValueError naming bad fields."""
    data = {**fields, "type": kind, "msg_id": msg_id}
    try:
        return model.model_validate(data, strict=False).model_dump_json().encode()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise ValueError(f"{kind}: {problems}") from None
