"""Decide what one delivery is: an accepted device message, a rejection with its reason, or not ours.

Pure: no I/O, no clock. The gateway acts on the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import pydantic_core
from pydantic import TypeAdapter, ValidationError

from devices.decode import DecodeError, decode
from devices.ids import RESERVED_CANTEEN_IDS
from devices.messages import DeviceMessage, MsgId
from devices.reasons import Reason
from devices.registry import Registry
from devices.topics import ROOT, Channel, DeviceTopic, TopicError, parse_device_topic
from gateway.bus import Incoming


@dataclass(frozen=True, slots=True)
class Accepted:
    topic: DeviceTopic
    message: DeviceMessage


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: Reason
    detail: str
    #: The device the topic names, once the topic parses: the broker's ACL ties it to the sender.
    device_id: str | None = None
    #: Set when the registry confirms the topic belongs to that device: only then may the platform answer it
    #: with a receipt (on this topic's receipt channel) for ``msg_id``.
    reply_to: DeviceTopic | None = None
    msg_id: str | None = None


@dataclass(frozen=True, slots=True)
class Ignored:
    """Deliveries that are not device input: the platform's own topics, receipts, retained replays."""

    why: str


Verdict = Accepted | Rejected | Ignored

_PLATFORM_TREES = tuple(f"{ROOT}/{word}/" for word in sorted(RESERVED_CANTEEN_IDS))


_MSG_ID: TypeAdapter[str] = TypeAdapter(MsgId)


def _msg_id_of(payload: bytes) -> str | None:
    """The ``msg_id`` of a payload that failed validation, if a valid one can still be read, for the receipt."""
    try:
        raw = pydantic_core.from_json(payload)
    except ValueError:
        return None
    msg_id = raw.get("msg_id") if isinstance(raw, dict) else None
    try:
        return _MSG_ID.validate_python(msg_id)
    except ValidationError:
        return None  # no usable id: the device gets no receipt, the dead letter keeps everything


def classify(incoming: Incoming, registry: Registry) -> Verdict:
    if incoming.topic.startswith(_PLATFORM_TREES):
        return Ignored("platform topic")
    try:
        topic = parse_device_topic(incoming.topic)
    except TopicError as exc:
        return Rejected(Reason(exc.reason), str(exc))
    if topic.channel is Channel.RECEIPT:
        return Ignored("receipt")
    if incoming.retain and topic.channel is not Channel.STATUS:
        # A retained record would be replayed to every new subscriber: only the live delivery counts.
        return Ignored("retained replay")
    assignment = registry.assignment(topic.device_id)
    if assignment is None:
        return Rejected(Reason.UNKNOWN_DEVICE, f"device {topic.device_id!r} is not in the registry", topic.device_id)
    if assignment.device.revoked:
        return Rejected(Reason.UNKNOWN_DEVICE, f"device {topic.device_id!r} is revoked", topic.device_id)
    if assignment.canteen.id != topic.canteen_id:
        return Rejected(
            Reason.WRONG_CANTEEN,
            f"device {topic.device_id!r} belongs to canteen {assignment.canteen.id!r}, not {topic.canteen_id!r}",
            topic.device_id,
        )
    if assignment.device.kind is not topic.kind:
        return Rejected(
            Reason.WRONG_KIND,
            f"device {topic.device_id!r} is a {assignment.device.kind}, not a {topic.kind}",
            topic.device_id,
        )
    try:
        message = decode(incoming.payload, topic.kind, topic.channel)
    except DecodeError as exc:
        return Rejected(exc.reason, exc.detail, topic.device_id, topic, _msg_id_of(incoming.payload))
    return Accepted(topic, message)
