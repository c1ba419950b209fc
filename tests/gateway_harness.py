"""Run gateways against the real broker for the reliability tests: in this process, or as a `shian run`
child process that a test can SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path

import yaml

from broker_config.managed import ManagedMosquitto
from devices.registry import Registry
from gateway.runner import run_gateway
from gateway.service import MAX_BATCH, Gateway
from mqtt.device_link import MqttError, MqttLink
from mqtt.link_options import LinkOptions
from runtime.clock import Clock, SystemClock
from spool import Spool
from tests.children import Child
from tests.helpers import eventually


def write_registry(registry: Registry, path: Path) -> Path:
    path.write_text(yaml.safe_dump(registry.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
    return path


def gateway_options(broker: ManagedMosquitto, client_id: str) -> LinkOptions:
    return LinkOptions(host=broker.host, port=broker.port, client_id=client_id, session_expiry_s=3600)


#: A test publisher's operation timeout (aiomqtt's): a busy machine's broker takes longer than the default 10 s
#: to acknowledge a window of QoS 1 messages, and a timeout would resend the window without end.
PUBLISH_TIMEOUT_S = 120.0


@contextlib.asynccontextmanager
async def gateway_in_process(
    broker: ManagedMosquitto,
    registry: Registry,
    spool_path: Path,
    client_id: str,
    canteens: Iterable[str] = (),
    max_batch: int = MAX_BATCH,
    clock: Clock | None = None,
) -> AsyncIterator[Gateway]:
    """A gateway with reconnects, as `shian run` runs it; drained and stopped on exit. ``clock``: the time the
    test's records live in (the system clock by default)."""
    gateway = Gateway(registry, clock or SystemClock(), Spool(spool_path), canteens=canteens, max_batch=max_batch)
    async with serving(gateway, gateway_options(broker, client_id)):
        yield gateway


@contextlib.asynccontextmanager
async def serving(gateway: Gateway, options: LinkOptions) -> AsyncIterator[Gateway]:
    """``gateway`` run with reconnects, as `shian run` runs it, until exit; then drained, stopped and closed."""
    task = asyncio.create_task(run_gateway(gateway, options))
    try:
        await eventually(gateway.subscribed.is_set, what="gateway subscribed")
        yield gateway
    finally:
        gateway.request_stop()
        await asyncio.wait([task], timeout=15)
        if not task.done():
            task.cancel()
        gateway.spool.close()


async def publish_all(
    broker: ManagedMosquitto, client_id: str, messages: Sequence[tuple[str, bytes]], *, window: int = 100
) -> None:
    """Publish at QoS 1 like a device with an outbox: every message until the broker acknowledges it,
    reconnecting and resending across broker outages."""
    sent = 0
    while sent < len(messages):
        try:
            options = LinkOptions(
                host=broker.host, port=broker.port, client_id=client_id, connect_timeout_s=PUBLISH_TIMEOUT_S
            )
            async with MqttLink(options) as link:
                while sent < len(messages):
                    chunk = messages[sent : sent + window]
                    await asyncio.gather(*(link.publish(topic, payload, qos=1) for topic, payload in chunk))
                    sent += len(chunk)
        except MqttError:
            await asyncio.sleep(0.2)  # the broker is away: the outbox keeps the chunk and tries again


def records_in(spool_path: Path) -> int:
    if not spool_path.exists():
        return 0
    spool = Spool(spool_path)
    try:
        return spool.count_records()
    finally:
        spool.close()


class GatewayProcess:
    """`shian run` against an existing broker, as a child process with its own JSON log (a
    :class:`tests.children.Child`: it ends with the test, however the test ends)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.child: Child | None = None
        self._log_offset = 0

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.child.process if self.child is not None else None

    @staticmethod
    def write_config(
        path: Path,
        broker: ManagedMosquitto,
        *,
        registry: Path,
        data_dir: Path,
        client_id: str,
        canteens: Sequence[str] = (),
    ) -> Path:
        canteen_list = ", ".join(f'"{c}"' for c in canteens)
        path.write_text(
            f'registry = "{registry}"\ndata_dir = "{data_dir}"\nlog_format = "json"\n'
            f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nsession_expiry_s = 3600\n'
            f'[gateway]\nclient_id = "{client_id}"\ncanteens = [{canteen_list}]\n'
            "[web]\nport = 0\n",  # the console on a free port: two gateways side by side must not share one
            encoding="utf-8",
        )
        return path

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHIAN_")}
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        self.child = Child(
            [sys.executable, "-m", "shian.cli", "run", "--config", str(self.config)], log=self.log, env=env
        )

    def wait_subscribed(self, timeout: float = 120.0) -> None:
        """Until this run of the process has logged its subscription."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gateway exited with {self.process.returncode}")
            with self.log.open("rb") as handle:
                handle.seek(self._log_offset)
                if b'"gateway.subscribed"' in handle.read():
                    return
            time.sleep(0.02)
        raise AssertionError("gateway did not subscribe in time")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> int:
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout=60)
