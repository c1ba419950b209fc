"""The test harness: real Mosquitto, InfluxDB 1.x and VictoriaMetrics on free loopback ports, one of each per
test session, and a message bus fixture that runs a component test on memory and on the real broker."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol

import pytest
from hypothesis import settings as hypothesis_settings

from broker_config.managed import ManagedMosquitto
from mqtt.bus import BusClient
from mqtt.link_options import LinkOptions
from mqtt.memory_bus import MemoryBroker
from mqtt.service_link import ServiceLink
from tests.children import become_subreaper, end_all, reap_leftovers
from tests.servers import InfluxDB1, VictoriaMetrics

# CI explores the same examples every run, so that a landing never depends on luck; a developer's runs explore
# new ones (and hypothesis keeps the failures it finds in .hypothesis/).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

# Every platform a test starts (in this process or as `shian run` / `shian demo`) serves its console on a free
# port: tests run side by side, and a developer's own console may hold 8080.
os.environ["SHIAN_WEB__PORT"] = "0"

#: Seed of the randomised tests: fixed in CI, new on every developer run.
FUZZ_SEED = "ci" if os.environ.get("CI") else uuid.uuid4().hex


def pytest_configure(config: pytest.Config) -> None:
    # Orphans of the processes tests start (a SIGKILLed platform's broker) come back to this process, so that
    # the check at the end of the session finds them.
    become_subreaper()


@pytest.fixture(autouse=True)
def _children_end_with_their_test() -> Iterator[None]:
    """Whatever a test started as a :class:`tests.children.Child` ends with it, however the test ended."""
    yield
    end_all()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any process a test started outlived the session (every fixture has ended by now)."""
    left = reap_leftovers()
    if left:
        listing = "\n".join(f"  {pid}: {cmdline}" for pid, cmdline in sorted(left.items()))
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"processes started by tests were still running at the end of the session (now killed):\n{listing}"
        if reporter is not None:
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedMosquitto]:
    broker = ManagedMosquitto(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    server = InfluxDB1(tmp_path_factory.mktemp("influxdb"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics(tmp_path_factory.mktemp("victoria"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def uid() -> str:
    """A short id unique to this test, for canteen and device ids that no other test uses."""
    return uuid.uuid4().hex[:10]


class BusFactory(Protocol):
    name: str

    def connect(
        self, client_id: str, *, session_expiry_s: int | None = None
    ) -> contextlib.AbstractAsyncContextManager[BusClient]: ...


class MemoryBusFactory:
    name = "memory"

    def __init__(self) -> None:
        self.broker = MemoryBroker()

    @contextlib.asynccontextmanager
    async def connect(self, client_id: str, *, session_expiry_s: int | None = None) -> AsyncIterator[BusClient]:
        yield self.broker.client(client_id)


class MosquittoBusFactory:
    name = "mosquitto"

    def __init__(self, broker: ManagedMosquitto, uid: str) -> None:
        self.broker = broker
        self.uid = uid

    @contextlib.asynccontextmanager
    async def connect(self, client_id: str, *, session_expiry_s: int | None = None) -> AsyncIterator[BusClient]:
        options = LinkOptions(
            host=self.broker.host,
            port=self.broker.port,
            client_id=f"{client_id}-{self.uid}",
            session_expiry_s=session_expiry_s,
        )
        async with ServiceLink(options) as link:
            yield link


@pytest.fixture(params=["memory", "mosquitto"])
def bus(request: pytest.FixtureRequest, uid: str) -> BusFactory:
    """Run the test once on the in-memory bus and once on the real Mosquitto."""
    if request.param == "memory":
        return MemoryBusFactory()
    return MosquittoBusFactory(request.getfixturevalue("mosquitto"), uid)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
