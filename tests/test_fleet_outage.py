"""Storm control on the real broker: the whole simulated fleet, the platform and Mosquitto, and the broker killed
under them. The city falling silent at once is one ``platform.mass_offline``, not an alert per device; once the
broker is back and the fleet has reconnected, it clears, and nobody is called offline."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from broker_config.managed import ManagedMosquitto
from rules.alerts import Alert
from simulators.behaviour import Behaviour, FleetStats
from simulators.fleet import run_fleet
from simulators.simclock import SimClock
from tests.helpers import eventually
from tests.test_fleet import CST, _small_city
from wiring.broker import BrokerAddress
from wiring.platform import Platform
from wiring.settings import GatewaySettings, MqttSettings, RulesSettings, Settings, WebSettings

#: A school morning's kitchen hours (cameras count), 20x: a camera's 90 s threshold is 4.5 real seconds.
START = dt.datetime(2026, 11, 25, 10, 0, tzinfo=CST)
SPEED = 20


def _alerts(platform: Platform, rule: str) -> list[Alert]:
    return [a for a in platform.rules.engine.store.alerts(limit=100_000) if a.rule == rule]


async def test_a_broker_restart_under_the_fleet_is_one_mass_offline_and_no_storm(tmp_path: Path) -> None:
    registry = _small_city(12)  # about 120 devices, most of them cameras
    broker = ManagedMosquitto(tmp_path / "broker")
    broker.start()
    settings = Settings(
        data_dir=tmp_path,
        mqtt=MqttSettings(host=broker.host, port=broker.port),
        gateway=GatewaySettings(client_id="gw-outage"),
        rules=RulesSettings(tick_s=0.2),
    ).model_copy(update={"web": WebSettings(enabled=False)})
    clock = SimClock(START, SPEED, held=True)
    platform = Platform(settings, registry, clock)
    stats, stop = FleetStats(), asyncio.Event()
    quiet = Behaviour(camera_dropout=0.0, violation_per_tick=0.0, compressor_failure_per_day=0.0)
    platform.start(BrokerAddress(broker.host, broker.port))
    try:
        await platform.gateway_ready()
        fleet = asyncio.create_task(
            run_fleet(registry, clock, host=broker.host, port=broker.port, stop=stop, stats=stats, behaviour=quiet)
        )
        await eventually(lambda: not clock.held, timeout=120, what="the fleet connected")
        await eventually(lambda: clock.now() >= START + dt.timedelta(minutes=5), timeout=60, what="5 quiet minutes")
        assert _alerts(platform, "device.offline") == []

        await asyncio.to_thread(broker.kill)
        await eventually(lambda: _alerts(platform, "platform.mass_offline") != [], timeout=60, what="mass offline")
        await asyncio.sleep(2)  # the detectors and cabinets cross their (longer) thresholds too, held
        await asyncio.to_thread(broker.restart)

        (outage,) = _alerts(platform, "platform.mass_offline")
        await eventually(
            lambda: platform.rules.engine.store.get(outage.alert_id).state == "resolved",  # type: ignore[union-attr]
            timeout=60,
            what="the outage cleared",
        )
        cleared = clock.now()
        # a further five simulated minutes: past every device's threshold, counted from the clearing
        await eventually(lambda: clock.now() >= cleared + dt.timedelta(minutes=5), timeout=60, what="5 more minutes")
        stop.set()
        await asyncio.wait_for(fleet, 30)
        assert stats.disconnects >= len(registry.canteens)  # the devices did lose the broker
        assert len(_alerts(platform, "platform.mass_offline")) == 1
        assert _alerts(platform, "device.offline") == []
        assert _alerts(platform, "canteen.offline") == []
    finally:
        stop.set()
        await platform.shutdown()
        await platform.close()
        broker.stop()
