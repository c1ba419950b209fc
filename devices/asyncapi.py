"""The contract as an AsyncAPI 3.0 document for MQTT: the broker, the topics (channels) with their parameters,
who sends and receives what (operations for devices, the gateway, supervisors and operators), the messages
referencing the JSON Schemas, and how a client authenticates. Pure: returns the document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from devices.messages import CATALOG, type_name
from devices.schemas import SCHEMA_DIR, schema_file
from devices.topics import ROOT, Channel

#: Each channel parameter's meaning (their rules: docs/contract.md, "Topics").
PARAMETERS: dict[str, str] = {
    "canteen_id": "The canteen, as the registry names it (the id rule).",
    "kind": "The kind of device: detector, cabinet or camera.",
    "device_id": "The device: also its MQTT username and client id (the id rule).",
    "alert_id": "The alert.",
    "reason": "Why the message was refused (docs/contract.md, 'Dead letters').",
}


def _ref(*path: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(path)}


def _message(name: str, summary: str) -> dict[str, Any]:
    return {
        "name": name,
        "summary": summary,
        "contentType": "application/json",
        "payload": {"$ref": f"{SCHEMA_DIR}/{schema_file(name)}"},
    }


def _channel(address: str, params: list[str], messages: list[str], description: str) -> dict[str, Any]:
    return {
        "address": address,
        "description": description,
        "parameters": {p: {"description": PARAMETERS[p]} for p in params},
        "messages": {m.replace(".", "_"): _ref("components", "messages", m.replace(".", "_")) for m in messages},
    }


def _operation(action: str, channel: str, summary: str, qos: int, retain: bool = False) -> dict[str, Any]:
    return {
        "action": action,
        "channel": _ref("channels", channel),
        "summary": summary,
        "bindings": {"mqtt": {"qos": qos, "retain": retain, "bindingVersion": "0.2.0"}},
    }


def asyncapi(documents: Mapping[str, type[BaseModel]]) -> dict[str, Any]:
    """The document; ``documents`` are the payload models by name (those of ``devices.schemas.DOCUMENTS``, and
    the alert and its acknowledgement, which the rules engine defines)."""
    device = "shian/v1/{canteen_id}/{kind}/{device_id}"
    by_channel = {
        channel: sorted({type_name(m) for (_, ch), models in CATALOG.items() if ch is channel for m in models})
        for channel in (Channel.TELEMETRY, Channel.EVENT, Channel.STATUS)
    }
    summaries = {name: (doc.splitlines()[0] if (doc := model.__doc__) else name) for name, model in documents.items()}
    messages = {name.replace(".", "_"): _message(name, summaries[name]) for name in sorted(documents)}
    ids, alert, alerts = ["canteen_id", "kind", "device_id"], ["canteen_id", "alert_id"], f"{ROOT}/alerts"
    channels = {
        "telemetry": _channel(f"{device}/telemetry", ids, by_channel[Channel.TELEMETRY], "Periodic readings."),
        "event": _channel(f"{device}/event", ids, by_channel[Channel.EVENT], "Records: tests, samples, AI events."),
        "status": _channel(f"{device}/status", ids, by_channel[Channel.STATUS], "Online or offline, retained."),
        "receipt": _channel(f"{device}/receipt", ids, ["receipt"], "What became of each record."),
        "alert": _channel(f"{alerts}/{{canteen_id}}/{{alert_id}}", alert, ["alert"], "Alerts, for supervisors."),
        "alertAck": _channel(f"{alerts}/{{canteen_id}}/{{alert_id}}/ack", alert, ["alert_ack"], "Acknowledgements."),
        "deadLetter": _channel(f"{ROOT}/deadletter/{{reason}}", ["reason"], ["deadletter"], "Refused messages."),
    }
    if "daily_digest" in documents:
        daily = f"{ROOT}/public/{{canteen_id}}/daily"
        channels["dailyDigest"] = _channel(daily, ["canteen_id"], ["daily_digest"], "A canteen's day, for parents.")
    operations = {
        "deviceSendsTelemetry": _operation("send", "telemetry", "A device publishes readings.", 1),
        "deviceSendsEvent": _operation("send", "event", "A device publishes a record, kept until its receipt.", 1),
        "deviceSendsStatus": _operation("send", "status", "A device says online; its last will says offline.", 1, True),
        "deviceReceivesReceipt": _operation("receive", "receipt", "A device hears what became of its record.", 1),
        "gatewayReceivesTelemetry": _operation("receive", "telemetry", "The gateway validates and stores.", 1),
        "gatewayReceivesEvent": _operation("receive", "event", "The gateway validates and stores.", 1),
        "gatewayReceivesStatus": _operation("receive", "status", "The gateway stores availability.", 1),
        "gatewaySendsReceipt": _operation("send", "receipt", "After the record is stored durably.", 1),
        "gatewaySendsDeadLetter": _operation("send", "deadLetter", "Every refused message, with its reason.", 1),
        "supervisorReceivesAlert": _operation("receive", "alert", "Retained while open or acknowledged.", 1, True),
        "supervisorSendsAck": _operation("send", "alertAck", 'Acknowledge: {"by": account, "note": text}.', 1),
        "operatorReceivesDeadLetter": _operation("receive", "deadLetter", "What the gateway refused.", 1),
    }
    if "daily_digest" in documents:
        operations["platformSendsDailyDigest"] = _operation(
            "send", "dailyDigest", "Each school day at the configured time, and corrections, retained.", 1, True
        )
        operations["publicReceivesDailyDigest"] = _operation(
            "receive", "dailyDigest", "A parents' bridge reads the latest digest of its canteen.", 1, True
        )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Shian (食安) wire contract",
            "version": "1.0.0",
            "description": "Devices of school canteens and the Shian platform over MQTT 5. The source of truth is "
            "docs/contract.md; this document and the JSON Schemas beside it are generated from the code.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": {
                "host": "broker.example.org:8883",
                "protocol": "mqtt",
                "protocolVersion": "5",
                "description": "TLS; every device logs in with its own account (username = device id).",
                "security": [_ref("components", "securitySchemes", s) for s in ("userPassword", "clientCertificate")],
            },
            "development": {
                "host": "127.0.0.1:1883",
                "protocol": "mqtt",
                "protocolVersion": "5",
                "description": "`shian demo`'s managed broker: loopback, anonymous.",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "securitySchemes": {
                "userPassword": {"type": "userPassword", "description": "MQTT username and password."},
                "clientCertificate": {"type": "X509", "description": "A TLS client certificate, where demanded."},
            },
        },
    }
