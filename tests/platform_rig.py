"""A platform running on the real Mosquitto with its console on a free port, for the browser tests, and a device
that publishes test results to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect

from broker_config.managed import ManagedMosquitto
from devices.topics import Channel, DeviceKind, DeviceTopic
from mqtt.device_link import MqttLink
from mqtt.link_options import LinkOptions
from runtime.clock import SystemClock
from simulators.payloads import PayloadFactory
from tests.console_helpers import CANTEENS, password, tenants_registry, write_passwords
from wiring.broker import BrokerAddress
from wiring.console import web_passwords_path
from wiring.platform import Platform
from wiring.settings import GatewaySettings, MqttSettings, RulesSettings, Settings, WebSettings


@asynccontextmanager
async def running_platform(
    tmp: Path, broker: ManagedMosquitto, uid: str, *, web: WebSettings | None = None
) -> AsyncIterator[Platform]:
    settings = Settings(
        data_dir=tmp,
        mqtt=MqttSettings(host=broker.host, port=broker.port),
        gateway=GatewaySettings(client_id=f"console-{uid}", canteens=list(CANTEENS)),
        rules=RulesSettings(tick_s=0.2),
    )
    # After construction: the environment's SHIAN_WEB__PORT would replace a [web] given to the constructor whole.
    settings = settings.model_copy(update={"web": web or WebSettings(port=0)})
    registry = tenants_registry()
    write_passwords(web_passwords_path(settings), registry)
    async with serving(Platform(settings, registry, SystemClock()), broker) as platform:
        yield platform


@asynccontextmanager
async def serving(platform: Platform, broker: ManagedMosquitto) -> AsyncIterator[Platform]:
    """The platform's console (and media server, when it has one) serving and its gateway subscribed on
    ``broker``, until the block ends; then stopped as ``shian run`` stops it."""
    platform.serve_console()
    await platform.start_video()
    platform.start(BrokerAddress(broker.host, broker.port))
    try:
        await platform.gateway_ready()
        yield platform
    finally:
        await platform.shutdown()
        await platform.close()


def url(platform: Platform, path: str) -> str:
    assert platform.console_server is not None
    return f"{platform.console_server.url}{path}"


async def log_in(browser: Browser, platform: Platform, username: str) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(url(platform, "/alerts"))
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password(username))
    await page.click("form[action='/login'] button[type=submit]")
    await expect(page.locator("h1")).to_contain_text("告警")
    return page


async def publish_test(broker: ManagedMosquitto, canteen: str, sample: str, **changes: Any) -> None:
    """One test result from ``canteen``'s detector over MQTT, its own msg_id each time."""
    device = f"{canteen}-det"
    factory = _FACTORIES.setdefault(device, PayloadFactory(device))
    result = factory.test_result(SystemClock().now(), fail_rate=0.0).model_copy(
        update={"sample_name": sample, **changes}
    )
    topic = DeviceTopic(canteen, DeviceKind.DETECTOR, device, Channel.EVENT)
    async with MqttLink(LinkOptions(host=broker.host, port=broker.port, client_id=device)) as link:
        await link.publish(str(topic), result.model_dump_json().encode(), qos=1)


_FACTORIES: dict[str, PayloadFactory] = {}


async def publish_failed_test(broker: ManagedMosquitto, canteen: str, sample: str) -> None:
    failed = {"result": "fail", "item_code": "pesticide.op_carbamate", "method": "enzyme_inhibition", "unit": "%"}
    # a batch of its own: two canteens' failures of one shared batch would also tell each other (batch_failed)
    await publish_test(broker, canteen, sample, value=78.0, batch_no=f"T-{canteen}-{sample}", **failed)
