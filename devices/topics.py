"""The topic grammar of wire contract version 1: the one place that knows how topics are spelled.

Device topics are ``shian/v1/{canteen_id}/{kind}/{device_id}/{channel}``; the platform publishes receipts,
alerts and dead letters on the topics built here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from devices.ids import check_canteen_id, check_id

ROOT = "shian/v1"


class DeviceKind(StrEnum):
    DETECTOR = "detector"
    CABINET = "cabinet"
    CAMERA = "camera"


class Channel(StrEnum):
    """The topics a device publishes on, and the one it reads."""

    TELEMETRY = "telemetry"
    EVENT = "event"
    STATUS = "status"
    RECEIPT = "receipt"


#: Channels a device may publish on; ``receipt`` flows the other way.
DEVICE_PUBLISH_CHANNELS = frozenset({Channel.TELEMETRY, Channel.EVENT, Channel.STATUS})


class TopicError(ValueError):
    """A topic that is not a valid version-1 device topic.

    ``reason`` is ``bad_topic`` when the topic is not shaped like a device topic at all, and ``bad_id`` when it
    is shaped right but one of its ids breaks the id rule.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    """A parsed device topic. Constructing one validates every part."""

    canteen_id: str
    kind: DeviceKind
    device_id: str
    channel: Channel

    def __post_init__(self) -> None:
        check_canteen_id(self.canteen_id)
        check_id(self.device_id, "device id")
        # Accept plain strings from callers but store the enums.
        object.__setattr__(self, "kind", DeviceKind(self.kind))
        object.__setattr__(self, "channel", Channel(self.channel))

    def __str__(self) -> str:
        return f"{ROOT}/{self.canteen_id}/{self.kind.value}/{self.device_id}/{self.channel.value}"

    def with_channel(self, channel: Channel) -> DeviceTopic:
        return DeviceTopic(self.canteen_id, self.kind, self.device_id, channel)


def parse_device_topic(topic: str) -> DeviceTopic:
    """Parse a device topic, raising :class:`TopicError` with a specific reason."""
    parts = topic.split("/")
    if len(parts) != 6 or "/".join(parts[:2]) != ROOT:
        raise TopicError("bad_topic", f"{topic!r} is not of the form {ROOT}/<canteen>/<kind>/<device>/<channel>")
    _, _, canteen_id, kind, device_id, channel = parts
    if kind not in DeviceKind.__members__.values():
        raise TopicError("bad_topic", f"{topic!r}: unknown device kind {kind!r}")
    if channel not in Channel.__members__.values():
        raise TopicError("bad_topic", f"{topic!r}: unknown channel {channel!r}")
    try:
        return DeviceTopic(canteen_id, DeviceKind(kind), device_id, Channel(channel))
    except ValueError as exc:
        raise TopicError("bad_id", f"{topic!r}: {exc}") from None


def receipt_topic(topic: DeviceTopic) -> str:
    """Where the platform answers what a device published on ``topic``."""
    return str(topic.with_channel(Channel.RECEIPT))


def format_device_topic(canteen_id: str, kind: DeviceKind | str, device_id: str, channel: Channel | str) -> str:
    return str(DeviceTopic(canteen_id, DeviceKind(kind), device_id, Channel(channel)))


def device_subscription(canteen_id: str = "+", channel: Channel | str = "+") -> str:
    """Filter for device publications, of all canteens (``+``) or of one."""
    if canteen_id != "+":
        check_canteen_id(canteen_id)
    channel_level = channel if channel == "+" else Channel(channel).value
    return f"{ROOT}/{canteen_id}/+/+/{channel_level}"


def alert_topic(canteen_id: str, alert_id: str) -> str:
    return f"{ROOT}/alerts/{check_canteen_id(canteen_id)}/{check_id(alert_id, 'alert id')}"


def alert_ack_topic(canteen_id: str, alert_id: str) -> str:
    return f"{alert_topic(canteen_id, alert_id)}/ack"


def deadletter_topic(reason: str) -> str:
    return f"{ROOT}/deadletter/{check_id(reason, 'dead-letter reason')}"


def public_daily_topic(canteen_id: str) -> str:
    """The day's results of one canteen for parents, retained (docs/public.md)."""
    return f"{ROOT}/public/{check_canteen_id(canteen_id)}/daily"


DEADLETTER_SUBSCRIPTION = f"{ROOT}/deadletter/#"
ALERTS_SUBSCRIPTION = f"{ROOT}/alerts/#"
