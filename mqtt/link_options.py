"""How to reach the broker: one set of options for both MQTT clients (``mqtt_link`` and ``service_link``)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class LastWill:
    """What the broker publishes for a client that disconnects without saying goodbye."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, kw_only=True)
class LinkOptions:
    """How to reach the broker and who to be there."""

    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    #: Keep the session (subscriptions and queued messages) this long after a disconnect; None: clean session.
    session_expiry_s: int | None = None
    will: LastWill | None = None
    #: Outgoing QoS 1 messages awaiting PUBACK (device clients); paho stalls past 65,535 and about 100 is fastest.
    max_inflight: int = 100
    #: Incoming QoS 1 deliveries the broker may send before they are acknowledged (MQTT 5 receive maximum; the
    #: service link): what the link holds in memory at most, each up to the broker's max_packet_size.
    receive_maximum: int = 65_535
    #: The largest packet the service link accepts, announced to the broker (which then never sends a larger
    #: one): above the broker's own limit (1 MiB managed, 65 KiB in production), far below what would hurt.
    maximum_packet_size: int = 4 * 1024 * 1024
    #: TLS: the CA to trust (None: plain TCP), and a client certificate and key when the broker demands one.
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: Seconds to wait for the TCP/TLS connection and the broker's CONNACK.
    connect_timeout_s: float = 10.0

    def tls_context(self) -> ssl.SSLContext | None:
        if self.tls_ca is None:
            return None
        context = ssl.create_default_context(cafile=str(self.tls_ca))
        if self.tls_cert is not None:
            context.load_cert_chain(str(self.tls_cert), str(self.tls_key) if self.tls_key else None)
        return context
