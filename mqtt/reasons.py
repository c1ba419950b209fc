"""MQTT 5 reason codes, as error messages name them (MQTT 5.0 section 2.4), and the CONNACKs this client
cannot work with."""

from __future__ import annotations

from mqtt.bus import BrokerRefusal, BusError
from mqtt.link_options import LinkOptions
from mqtt.wire import Connack

#: CONNACK and DISCONNECT reason codes worth a name in an error message (MQTT 5.0 section 3.2.2.2).
REASONS = {
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8C: "bad authentication method",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x90: "topic name invalid",
    0x93: "receive maximum exceeded",
    0x94: "topic alias invalid",
    0x95: "packet too large",
    0x96: "message rate too high",
    0x97: "quota exceeded",
    0x98: "administrative action",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "QoS not supported",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9F: "connection rate exceeded",
    0xA0: "maximum connect time",
    0xA1: "subscription identifiers not supported",
    0xA2: "wildcard subscriptions not supported",
}
#: CONNACK refusals that trying again will not change: the configuration must.
PERMANENT_REFUSALS = frozenset({0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C})


def describe(code: int) -> str:
    return f"{REASONS.get(code, 'error')} (0x{code:02x})"


def refusal(connack: Connack, options: LinkOptions) -> BusError | None:
    """Why this connection cannot be used, or None: a refused CONNECT (a :class:`BrokerRefusal` when trying
    again will not help), or a broker that grants less than QoS 1."""
    if connack.reason_code >= 0x80:
        why = f": {connack.reason_string}" if connack.reason_string else ""
        message = f"the broker refused the connection of {options.client_id!r}: {describe(connack.reason_code)}{why}"
        if connack.reason_code in PERMANENT_REFUSALS:
            return BrokerRefusal(f"{message} (check mqtt.username, mqtt.password and the broker's accounts)")
        return BusError(message)
    if connack.maximum_qos < 1:
        return BrokerRefusal(
            f"the broker at {options.host}:{options.port} allows QoS 0 only (max_qos 0); Shian acknowledges a "
            "message only once it is stored, which needs QoS 1"
        )
    return None
