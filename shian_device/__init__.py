"""Shian's device SDK: what a detector, sample cabinet or camera needs to speak the wire contract
(docs/contract.md) — connect with its password or TLS certificate, say online/offline with a last will, send
each message type through a typed method, and keep every record in a durable outbox until the platform's
receipt. docs/device-sdk.md has a complete example."""

from devices.topics import DeviceKind
from shian_device.client import Device, DeviceConfig, DeviceStats, TlsFiles
from shian_device.outbox import Outbox

__all__ = ["Device", "DeviceConfig", "DeviceKind", "DeviceStats", "Outbox", "TlsFiles"]
