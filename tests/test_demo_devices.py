"""The demo's simulated devices ride out their neighbours: a developer testing firmware under a demo device's id
(``mosquitto_pub -i ...``) takes its connection over, and the device reconnects with backoff, says so in the
log, and goes on; nothing ends the demo."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from broker_config.managed import ManagedMosquitto
from mqtt.device_link import MqttLink
from mqtt.link_options import LinkOptions
from runtime.clock import SystemClock
from simulators.demo import DemoDevice, DemoOptions, run_demo_fleet
from simulators.payloads import boot_stamp
from tests.helpers import eventually, make_registry


async def test_a_device_whose_connection_is_taken_over_reconnects(mosquitto: ManagedMosquitto, uid: str) -> None:
    registry = make_registry(uid, canteens=1)
    detector = f"detector0-{uid}"
    stop = asyncio.Event()
    options = DemoOptions(host=mosquitto.host, port=mosquitto.port, interval_s=0.2)
    with capture_logs() as logs:
        fleet = asyncio.create_task(run_demo_fleet(registry, options, SystemClock(), stop))

        def online(device: str) -> int:
            return sum(1 for e in logs if e["event"] == "device.online" and e["device"] == device)

        try:
            await eventually(lambda: online(detector) == 1, timeout=120, what="the detector online")
            # the intruder: same client id, so the broker closes the device's connection
            async with MqttLink(LinkOptions(host=mosquitto.host, port=mosquitto.port, client_id=detector)):
                await eventually(
                    lambda: any(e["event"] == "device.reconnecting" and e["device"] == detector for e in logs),
                    timeout=30,
                    what="the detector noticing the takeover",
                )
            await eventually(lambda: online(detector) >= 2, timeout=60, what="the detector online again")
            assert not fleet.done()  # no device task ended the fleet
        finally:
            stop.set()
            await asyncio.wait_for(fleet, 30)
    reconnect = next(e for e in logs if e["event"] == "device.reconnecting")
    assert reconnect["retry_in_s"] > 0
    assert reconnect["error"]


async def test_a_restarted_demo_device_sends_no_msg_id_it_sent_before(uid: str) -> None:
    """The contract forbids a counter that starts again after a restart: the demo's devices carry their start."""
    registry = make_registry(uid, canteens=1)
    canteen, detector = registry.canteens[0], registry.canteens[0].devices[0]

    def ids(options: DemoOptions) -> set[str]:
        device = DemoDevice(canteen, detector, options, SystemClock(), buggy=False, stop=asyncio.Event())
        return {device.factory.msg_id() for _ in range(100)}

    first = DemoOptions(host="127.0.0.1", port=1)
    await eventually(lambda: boot_stamp() != first.boot, what="the next millisecond")
    again = DemoOptions(host="127.0.0.1", port=1)  # the same demo, started again
    assert len(ids(first)) == 100
    assert not ids(first) & ids(again)
