"""The gateway: receive every delivery, validate it, dead-letter what is bad, acknowledge in arrival order."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable

import structlog

from devices.messages import DeadLetter, Receipt
from devices.registry import Registry
from devices.topics import ROOT, Channel, deadletter_topic
from gateway.bus import BusClient, Incoming
from gateway.intake import Accepted, Ignored, Rejected, Verdict, classify
from gateway.stats import GatewayStats
from shian.clock import Clock

log = structlog.get_logger("shian.gateway")


class Gateway:
    """Validates device messages for the canteens it owns (all of them when ``canteens`` is empty)."""

    def __init__(self, registry: Registry, clock: Clock, *, canteens: Iterable[str] = ()) -> None:
        self.registry = registry
        self.clock = clock
        self.canteens = tuple(sorted(set(canteens)))
        self.stats = GatewayStats()
        #: Set once the gateway's subscriptions are in place (after every reconnect).
        self.subscribed = asyncio.Event()

    def subscriptions(self) -> list[str]:
        # The whole tree, not just device-shaped topics, so that a malformed topic is dead-lettered rather
        # than unseen; the platform's own subtrees are ignored on arrival.
        if not self.canteens:
            return [f"{ROOT}/#"]
        return [f"{ROOT}/{canteen}/#" for canteen in self.canteens]

    async def serve(self, bus: BusClient) -> None:
        """Subscribe and handle deliveries until cancelled or the connection drops."""
        await bus.subscribe(self.subscriptions(), qos=1)
        self.subscribed.set()
        log.info("gateway.subscribed", filters=self.subscriptions())
        async for incoming in bus.messages():
            await self.handle(bus, incoming)

    async def handle(self, bus: BusClient, incoming: Incoming) -> Verdict:
        self.stats.received += 1
        verdict = classify(incoming, self.registry)
        match verdict:
            case Accepted(topic=topic, message=message):
                self.stats.accepted[message.type] += 1
                log.debug("message.accepted", topic=str(topic), type=message.type)
            case Rejected():
                self.stats.rejected[verdict.reason] += 1
                await self._dead_letter(bus, incoming, verdict)
            case Ignored(why=why):
                self.stats.ignored[why] += 1
                log.debug("message.ignored", topic=incoming.topic, why=why)
        bus.ack(incoming)
        return verdict

    async def _dead_letter(self, bus: BusClient, incoming: Incoming, rejected: Rejected) -> None:
        letter = DeadLetter(
            reason=rejected.reason,
            detail=rejected.detail,
            topic=incoming.topic,
            client_id=rejected.device_id,
            payload_b64=base64.b64encode(incoming.payload).decode("ascii"),
            received_at=self.clock.now(),
        )
        log.warning(
            "message.rejected",
            reason=str(rejected.reason),
            detail=rejected.detail,
            topic=incoming.topic,
            client_id=rejected.device_id,
        )
        await bus.publish(deadletter_topic(rejected.reason), letter.model_dump_json().encode(), qos=1)
        if rejected.reply_to is not None and rejected.msg_id is not None:
            receipt = Receipt(msg_id=rejected.msg_id, status="rejected", reason=f"{rejected.reason}: {rejected.detail}")
            receipt_topic = str(rejected.reply_to.with_channel(Channel.RECEIPT))
            await bus.publish(receipt_topic, receipt.model_dump_json().encode(), qos=1)
