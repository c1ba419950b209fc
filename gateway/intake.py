"""Decide what one delivery is: an accepted device message, a rejection with its reason, or not ours.

Pure: no I/O, no clock. The gateway acts on the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import pydantic_core
from pydantic import TypeAdapter, ValidationError

from devices.decode import DecodeError, Decoder, decoder_for
from devices.ids import RESERVED_CANTEEN_IDS
from devices.items import BUILTIN, ItemCatalogue
from devices.messages import DeliveryReceived, DeviceMessage, MsgId, TestResult
from devices.reasons import Reason
from devices.registry import Registry
from devices.topics import ROOT, Channel, DeviceTopic, TopicError, parse_device_topic, receipt_topic
from mqtt.bus import Incoming


class Route(NamedTuple):
    """A device topic the registry accepts, with the plain strings that storing and answering it need."""

    topic: DeviceTopic
    device_id: str
    canteen_id: str
    kind: str
    channel: str
    receipt_topic: str
    decode: Decoder  # for this topic's kind and channel

    @classmethod
    def of(cls, topic: DeviceTopic) -> Route:
        return cls(
            topic,
            topic.device_id,
            topic.canteen_id,
            topic.kind.value,
            topic.channel.value,
            receipt_topic(topic),
            decoder_for(topic.kind, topic.channel),
        )


class Accepted(NamedTuple):
    route: Route
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


Decision = Accepted | Rejected | Ignored

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


class _TopicCheck(NamedTuple):
    """Everything :func:`classify` decides from the topic alone, in its order."""

    first: Ignored | Rejected | None  # a platform topic, a malformed topic, a receipt
    is_status: bool  # retained status messages are live; retained records are replays
    then: Route | Rejected | None  # the registry's word on the device (None when ``first`` decides)


def _check_topic(name: str, registry: Registry) -> _TopicCheck:
    if name.startswith(_PLATFORM_TREES):
        return _TopicCheck(Ignored("platform topic"), False, None)
    try:
        topic = parse_device_topic(name)
    except TopicError as exc:
        return _TopicCheck(Rejected(Reason(exc.reason), str(exc)), False, None)
    if topic.channel is Channel.RECEIPT:
        return _TopicCheck(Ignored("receipt"), False, None)
    return _TopicCheck(None, topic.channel is Channel.STATUS, _check_device(topic, registry))


def _check_device(topic: DeviceTopic, registry: Registry) -> Route | Rejected:
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
    return Route.of(topic)


class Classifier:
    """:func:`classify` for one registry, remembering what each topic means: a fleet publishes on a few topics
    per device, and checking a topic's ids and registry entry again for every message cost as much as
    validating the payload."""

    def __init__(self, registry: Registry, *, topics: int = 65_536) -> None:
        self.registry = registry
        self._max_topics = topics
        self._topics: dict[str, _TopicCheck] = {}

    def __call__(self, incoming: Incoming) -> Decision:
        check = self._topics.get(incoming.topic)
        if check is None:
            if len(self._topics) >= self._max_topics:
                self._topics.clear()  # a flood of odd topics must not grow memory without bound
            check = self._topics[incoming.topic] = _check_topic(incoming.topic, self.registry)
        if check.first is not None:
            return check.first
        if incoming.retain and not check.is_status:
            # A retained record would be replayed to every new subscriber: only the live delivery counts.
            return Ignored("retained replay")
        route = check.then
        if not isinstance(route, Route):
            assert route is not None  # set whenever ``first`` is not
            return route
        # decide()'s body inline: one Python call fewer per delivery, on the gateway's hottest path
        try:
            message = route.decode(incoming.payload)
        except DecodeError as exc:
            return Rejected(exc.reason, exc.detail, route.device_id, route.topic, _msg_id_of(incoming.payload))
        if type(message) is DeliveryReceived and message.entered_by is not None:
            return Rejected(
                Reason.INVALID_VALUE,
                "entered_by: set only by the platform's console for deliveries entered by hand, never by a device",
                route.device_id,
                route.topic,
                message.msg_id,
            )
        if type(message) is TestResult:
            if message.entered_by is not None:
                return Rejected(
                    Reason.INVALID_VALUE,
                    "entered_by: set only by the platform's console for results entered by hand, never by a device",
                    route.device_id,
                    route.topic,
                    message.msg_id,
                )
            refused = _check_item(message, route, self.registry.catalogue)
            if refused is not None:
                return refused
        return tuple.__new__(Accepted, (route, message))  # a named tuple's own constructor is a Python function


def _check_item(test: TestResult, route: Route, catalogue: ItemCatalogue) -> Rejected | None:
    """A test of an item the catalogue does not know, or by a method and unit its item is not tested by."""
    item = catalogue.get(test.item_code)
    if item is None:
        known = ", ".join(i.code for i in catalogue)
        return Rejected(
            Reason.UNKNOWN_ITEM,
            f"item_code: {test.item_code!r} is not in the item catalogue (known: {known})",
            route.device_id,
            route.topic,
            test.msg_id,
        )
    if not item.accepts(test.method, test.unit):
        ways = ", ".join(f"{s.method} in {s.unit!r}" for s in item.standards)
        return Rejected(
            Reason.INVALID_VALUE,
            f"method/unit: {test.item_code} is tested by {ways}, not {test.method} in {test.unit!r}",
            route.device_id,
            route.topic,
            test.msg_id,
        )
    return None


def decide(route: Route, payload: bytes, catalogue: ItemCatalogue = BUILTIN) -> Accepted | Rejected:
    """The payload of a topic the registry accepted: decoded, or rejected with its reason (the console's hand-
    entered results come this way; :class:`Classifier` does the same inline)."""
    try:
        message = route.decode(payload)
    except DecodeError as exc:
        return Rejected(exc.reason, exc.detail, route.device_id, route.topic, _msg_id_of(payload))
    if type(message) is TestResult:
        refused = _check_item(message, route, catalogue)
        if refused is not None:
            return refused
    return tuple.__new__(Accepted, (route, message))  # a named tuple's own constructor is a Python function


def classify(incoming: Incoming, registry: Registry) -> Decision:
    """Decide what one delivery is. Pure; :class:`Classifier` is the same with a memory of topics."""
    return Classifier(registry)(incoming)
