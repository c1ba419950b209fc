"""The platform's background loops besides its three services: health figures, the rules engine's own
connection, spool pruning, and the operator's view of dead letters and alerts."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable

import structlog

from devices.messages import DeadLetter
from devices.topics import ALERTS_SUBSCRIPTION, DEADLETTER_SUBSCRIPTION
from gateway.stats import GatewayStats
from mqtt.device_link import MqttLink
from mqtt.link_options import LinkOptions
from mqtt.reconnect import serve_connected
from mqtt.service_link import ServiceLink
from rules.notify import MqttAlerts
from rules.runner import RulesRunner
from rules.stats import RulesStats
from runtime.clock import Clock
from spool import Spool
from storage.drain import StorageDrain
from storage.schema import gateway_point
from storage.writers import WriteError

log = structlog.get_logger("shian")

STATS_EVERY_S = 5.0
PRUNE_EVERY_S = 600.0


async def report_stats(instance: str, stats: GatewayStats, drain: StorageDrain, rules: RulesStats) -> None:
    """Every few seconds: the counters in the log, and a `gateway` point for the platform-health board."""
    while True:
        await asyncio.sleep(STATS_EVERY_S)
        log.info("gateway.stats", **stats.snapshot())
        log.info("storage.stats", **drain.stats.snapshot())
        log.info("rules.stats", **rules.snapshot())
        point = gateway_point(
            instance,
            dt.datetime.now(dt.UTC),
            received=stats.received,
            stored=stats.stored,
            duplicates=stats.duplicates,
            rejected_by_reason=dict(stats.rejected),
            spool_backlog=drain.stats.backlog,
            write_lag_s=drain.stats.oldest_unwritten_age_s,
        )
        try:
            await asyncio.to_thread(drain.writer.write, [point])
        except WriteError as exc:  # a health sample is not a record: skip it, the next one comes soon
            log.warning("storage.health_point_skipped", error=str(exc))


async def rules_link(runner: RulesRunner, alerts_topic: MqttAlerts, options: LinkOptions) -> None:
    """The rules engine's own connection: publishes alerts, takes acknowledgements; reconnects."""

    async def serve(link: ServiceLink) -> None:
        alerts_topic.bus = link
        try:
            await runner.take_acknowledgements(link)
        finally:
            alerts_topic.bus = None

    await serve_connected(options, serve, name="rules")


async def forward_wakes(committed: asyncio.Event, wake: Callable[[], None]) -> None:
    """Each commit of the gateway (an event of this loop) wakes the rules engine on its own loop."""
    while True:
        await committed.wait()
        committed.clear()
        wake()


async def prune_spool(spool: Spool, clock: Clock) -> None:
    """Forget dedup keys past the window and records every consumer has passed, every few minutes."""
    while True:
        await asyncio.sleep(PRUNE_EVERY_S)
        keys, records = await asyncio.to_thread(spool.prune, clock.now())
        log.info("spool.pruned", dedup_keys=keys, records=records)


async def watch_operator_topics(options: LinkOptions) -> None:
    """What an operator and a supervisor would see, in the log: dead letters and alerts as they arrive."""
    async with MqttLink(options) as link:
        await link.subscribe([DEADLETTER_SUBSCRIPTION, ALERTS_SUBSCRIPTION])
        async for incoming in link.messages():
            if not incoming.payload or incoming.topic.endswith("/ack"):
                continue  # a cleared retained alert, or a supervisor's acknowledgement (the rules engine takes it)
            try:
                _show_operator_notice(incoming.topic, incoming.payload)
            except ValueError as exc:  # what anyone may publish there must never stop the platform
                log.warning("operator_topic.unreadable", topic=incoming.topic, error=str(exc)[:200])


def _show_operator_notice(topic: str, payload: bytes) -> None:
    if topic.startswith(DEADLETTER_SUBSCRIPTION[:-1]):
        letter = DeadLetter.model_validate_json(payload, strict=False)
        log.warning(
            "deadletter.received",
            reason=letter.reason,
            detail=letter.detail,
            client_id=letter.client_id,
            topic=letter.topic,
        )
        return
    alert = json.loads(payload)
    if not isinstance(alert, dict):
        raise ValueError("an alert is a JSON object")
    log.warning(
        "alert.received",
        rule=alert.get("rule"),
        severity=alert.get("severity"),
        state=alert.get("state"),
        message=alert.get("message"),
    )
