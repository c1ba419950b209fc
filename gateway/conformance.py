"""Does one device speak the contract? What it published while watched, judged line by line: its topics and
ids, the schema of every message (the gateway's own intake decides), msg_id uniqueness, heartbeat regularity
against the registry, its clock, resends of records left without a receipt, the retained flags and the QoS.

Run it against a device on a bench broker where no gateway answers it: then every record stays without a
receipt, and a conforming device sends it again (``shian conformance --device ID``; docs/contract.md,
"Conformance")."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from devices.messages import DeviceStatus, Receipt, TestResult
from devices.reasons import Reason
from devices.registry import Registry
from devices.topics import ROOT, Channel, TopicError, parse_device_topic
from gateway.intake import Accepted, Classifier, Decision, Rejected
from mqtt.bus import Incoming
from mqtt.device_link import MqttLink

#: How far a conforming device's clock may be from the watcher's (NTP keeps it within a second or two; the
#: platform itself flags only minutes).
CLOCK_TOLERANCE = dt.timedelta(seconds=30)
#: A heartbeat is regular when the median interval is within this share of the registered one, and no gap is
#: longer than twice it.
INTERVAL_TOLERANCE = 0.25

Verdict = Literal["PASS", "FAIL", "----"]


@dataclass(frozen=True)
class Seen:
    """One message as the watcher received it."""

    at: dt.datetime
    incoming: Incoming


@dataclass(frozen=True)
class Finding:
    check: str
    verdict: Verdict
    detail: str

    def line(self) -> str:
        return f"{self.verdict}  {self.check}: {self.detail}"


#: The contract's resend rule (docs/contract.md, "Receipts"): a record without a receipt is sent again no later
#: than this after its last sending, on a live connection too (and at once after a reconnect).
RESEND_WITHIN = dt.timedelta(seconds=60)
#: The watcher's allowance for delivery delays when it times a resend (a quarter of a shorter bench bound).
RESEND_SLACK = dt.timedelta(seconds=5)


def judge(
    seen: list[Seen],
    registry: Registry,
    device_id: str,
    watched: dt.timedelta,
    *,
    resend_within: dt.timedelta = RESEND_WITHIN,
) -> list[Finding]:
    """Every check, in the order a vendor fixes things: first what the platform would refuse."""
    mine = [s for s in seen if _device_of(s.incoming.topic) == device_id]
    published = [s for s in mine if not s.incoming.topic.endswith(f"/{Channel.RECEIPT}")]
    receipts = [s for s in mine if s.incoming.topic.endswith(f"/{Channel.RECEIPT}")]
    classify = Classifier(registry)
    # judged as if published live: the gateway ignores a retained record, but its content is still the device's
    decided = [(s, classify(s.incoming._replace(retain=False))) for s in published]
    return [
        _topics(device_id, registry, decided),
        _schema(decided),
        _items(decided, registry),
        _msg_ids(decided),
        _heartbeat(device_id, registry, decided, watched),
        _clock(decided),
        _resends(decided, receipts, resend_within),
        _retained(published),
        _qos(published),
    ]


def _device_of(topic: str) -> str | None:
    try:
        return parse_device_topic(topic).device_id
    except TopicError:
        return None


Decided = list[tuple[Seen, Decision]]
#: The reasons a topic, not its payload, is refused for.
TOPIC_REASONS = frozenset(
    {Reason.BAD_TOPIC, Reason.BAD_ID, Reason.UNKNOWN_DEVICE, Reason.WRONG_CANTEEN, Reason.WRONG_KIND}
)


def _topics(device_id: str, registry: Registry, decided: Decided) -> Finding:
    check = "topic and id"
    if registry.assignment(device_id) is None:
        return Finding(check, "FAIL", f"{device_id!r} is not in the registry")
    if not decided:
        return Finding(check, "FAIL", "the device published nothing while watched")
    wrong = [d for _, d in decided if isinstance(d, Rejected) and d.reason in TOPIC_REASONS]
    if wrong:
        return Finding(check, "FAIL", f"{len(wrong)} messages on topics the registry refuses: {wrong[0].detail}")
    return Finding(check, "PASS", f"{len(decided)} messages, all on the device's own topics")


def _schema(decided: Decided) -> Finding:
    refused = [(s, d) for s, d in decided if isinstance(d, Rejected) and d.reason is not Reason.UNKNOWN_ITEM]
    if refused:
        reasons = sorted({f"{d.reason} ({d.detail})" for _, d in refused})
        return Finding("schema", "FAIL", f"{len(refused)} of {len(decided)} refused: " + "; ".join(reasons[:5]))
    return Finding("schema", "PASS", f"all {len(decided)} messages valid")


def _items(decided: Decided, registry: Registry) -> Finding:
    """The test items the device sent, by the catalogue's names, and any code the catalogue does not know."""
    unknown = sorted({_item_code(s) for s, d in decided if isinstance(d, Rejected) and d.reason is Reason.UNKNOWN_ITEM})
    tested: dict[str, int] = defaultdict(int)
    for _, decision in decided:
        if isinstance(decision, Accepted) and isinstance(decision.message, TestResult):
            tested[decision.message.item_code] += 1
    if unknown:
        known = ", ".join(item.code for item in registry.catalogue)
        return Finding("items", "FAIL", f"not in the item catalogue: {', '.join(unknown)} (known: {known})")
    if not tested:
        return Finding("items", "----", "no test result")
    named = [f"{code} {registry.catalogue.name(code)} x{count}" for code, count in sorted(tested.items())]
    return Finding("items", "PASS", "; ".join(named))


def _item_code(seen: Seen) -> str:
    try:
        raw = json.loads(seen.incoming.payload)
    except ValueError:
        return "?"
    return str(raw.get("item_code", "?")) if isinstance(raw, dict) else "?"


def _msg_ids(decided: Decided) -> Finding:
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for seen, decision in decided:
        if isinstance(decision, Accepted) and not isinstance(decision.message, DeviceStatus):
            bodies[decision.message.msg_id].add(seen.incoming.payload)
    reused = sorted(msg_id for msg_id, payloads in bodies.items() if len(payloads) > 1)
    if reused:
        return Finding("msg_id", "FAIL", f"reused for other content: {', '.join(reused[:5])} (never reuse a msg_id)")
    if not bodies:
        return Finding("msg_id", "----", "no message with a msg_id")
    return Finding("msg_id", "PASS", f"{len(bodies)} distinct, none reused (a resend repeats its bytes)")


def _heartbeat(device_id: str, registry: Registry, decided: Decided, watched: dt.timedelta) -> Finding:
    check = "heartbeat"
    assignment = registry.assignment(device_id)
    if assignment is None:
        return Finding(check, "----", "no registered interval")
    interval = assignment.device.heartbeat_s
    times = sorted(
        s.at.timestamp()
        for s, d in decided
        if isinstance(d, Accepted) and d.route.channel == Channel.TELEMETRY and not s.incoming.retain
    )
    if watched.total_seconds() < 3 * interval:
        return Finding(check, "----", f"watch at least {3 * interval:g} s to judge a {interval:g} s heartbeat")
    if len(times) < 3:
        return Finding(check, "FAIL", f"{len(times)} telemetry messages in {watched.total_seconds():g} s")
    gaps = [b - a for a, b in itertools.pairwise(times)]
    median, longest = statistics.median(gaps), max(gaps)
    detail = f"median {median:.1f} s, longest gap {longest:.1f} s, registered {interval:g} s"
    regular = abs(median - interval) <= INTERVAL_TOLERANCE * interval and longest <= 2 * interval
    return Finding(check, "PASS" if regular else "FAIL", ("" if regular else "irregular: ") + detail)


def _clock(decided: Decided) -> Finding:
    skews = [
        (d.message.ts - s.at).total_seconds()
        for s, d in decided
        if isinstance(d, Accepted) and not isinstance(d.message, DeviceStatus) and not s.incoming.retain
    ]
    if not skews:
        return Finding("clock", "----", "no timestamped message")
    worst = max(skews, key=abs)
    detail = f"ts is {worst:+.1f} s from the watcher's clock at worst (tolerance {CLOCK_TOLERANCE.seconds} s)"
    return Finding("clock", "FAIL" if abs(worst) > CLOCK_TOLERANCE.total_seconds() else "PASS", detail)


def _resends(decided: Decided, receipts: list[Seen], within: dt.timedelta) -> Finding:
    """A record left without a receipt comes again (byte for byte) within ``within`` of each sending. Records
    whose next resend would fall after the watch ended are not judged."""
    answered = set()
    for seen in receipts:
        with contextlib.suppress(ValueError):
            answered.add(Receipt.model_validate_json(seen.incoming.payload).msg_id)
    sends: dict[str, list[dt.datetime]] = defaultdict(list)
    for seen, decision in decided:
        if isinstance(decision, Accepted) and decision.route.channel == Channel.EVENT:
            message = decision.message
            if not isinstance(message, DeviceStatus):
                sends[message.msg_id].append(seen.at)
    if not sends:
        return Finding("resend", "----", "no record (event) published while watched")
    unanswered = {m: times for m, times in sends.items() if m not in answered}
    if not unanswered:
        return Finding("resend", "----", "every record had its receipt: run without a gateway to judge resends")
    end = max(seen.at for seen, _ in decided)
    bound = within + min(RESEND_SLACK, within / 4)
    late: list[str] = []
    judged = 0
    for msg_id, times in unanswered.items():
        times.sort()
        if len(times) == 1 and times[0] + bound > end:
            continue  # sent too near the end to owe a resend yet
        judged += 1
        gaps_late = any(later - earlier > bound for earlier, later in itertools.pairwise(times))
        if gaps_late or times[-1] + bound <= end:  # a resend came too late, or the last one never came
            late.append(msg_id)
    limit = f"{within.total_seconds():g} s"
    if late:
        return Finding(
            "resend", "FAIL", f"{len(late)} records without a receipt not sent again within {limit}: {late[0]}"
        )
    if not judged:
        return Finding("resend", "----", f"watch for longer than {limit} to judge resends")
    return Finding("resend", "PASS", f"all {judged} records without a receipt were sent again within {limit}")


def _retained(published: list[Seen]) -> Finding:
    wrong = [s.incoming.topic for s in published if s.incoming.retain != s.incoming.topic.endswith("/status")]
    if wrong:
        return Finding(
            "retain",
            "FAIL",
            f"{len(wrong)} messages with the wrong retained flag (status: retained; telemetry "
            f"and events: never), e.g. on {wrong[0]}",
        )
    return Finding("retain", "PASS", "status retained, telemetry and events not")


def _qos(published: list[Seen]) -> Finding:
    wrong = [s.incoming.topic for s in published if s.incoming.qos < 1 and not s.incoming.topic.endswith("/telemetry")]
    if wrong:
        return Finding("qos", "FAIL", f"{len(wrong)} status or event messages below QoS 1, e.g. on {wrong[0]}")
    return Finding("qos", "PASS", "events and status at QoS 1")


async def watch(link: MqttLink, device_id: str, duration: dt.timedelta, now: Callable[[], dt.datetime]) -> list[Seen]:
    """Everything on the device's topics (its receipts too) for ``duration``, with the retained flag as the
    device published it (MQTT 5 retain-as-published) and each message's arrival time."""
    seen: list[Seen] = []
    await link.subscribe([f"{ROOT}/+/+/{device_id}/#"], retain_as_published=True)

    async def collect() -> None:
        async for incoming in link.messages():
            seen.append(Seen(now(), incoming))

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(collect(), duration.total_seconds())
    return seen
