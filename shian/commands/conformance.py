"""``shian conformance --device ID``: watch one real device on a live broker and say, line by line, whether it
speaks the contract. What a vendor runs before a city accepts its device."""

from __future__ import annotations

import argparse
import datetime as dt
import re

from shian.commands.common import CommandError, Commands, add_common, settings_from

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h)?$")


def add(commands: Commands) -> None:
    parser = commands.add_parser(
        "conformance",
        help="watch one device on the broker and check it against the wire contract",
        description="Subscribe to one device's topics on the broker mqtt.host names (with the platform's "
        "credentials) for --duration, then judge what it published: topic and ids against the registry, the "
        "schema of every message (the gateway's own intake), msg_id uniqueness, heartbeat regularity against "
        "the registered interval, the device's clock, resends of records left without a receipt, retained "
        "flags and QoS. Run it where no gateway answers the device (a bench broker), so that resends show. "
        "One line per check (PASS, FAIL, or ---- when the watch saw nothing to judge); exit status 0 when "
        "nothing failed, 1 otherwise.",
    )
    add_common(parser)
    parser.add_argument("--device", required=True, metavar="ID", help="the device id, as in the registry")
    parser.add_argument(
        "--duration",
        type=_duration,
        default=dt.timedelta(minutes=10),
        metavar="TIME",
        help="how long to watch: 90s, 10m, 1h (default 10m; at least three heartbeat intervals)",
    )
    parser.add_argument(
        "--resend-within",
        type=_duration,
        default=None,
        metavar="TIME",
        help="the longest a record without a receipt may wait for its resend (default: the contract's, 60s; "
        "shorter for a bench device configured to resend sooner)",
    )
    parser.set_defaults(handler=_conformance)


def _duration(text: str) -> dt.timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 10m or 1h")
    seconds = float(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2] or "s"]
    return dt.timedelta(seconds=seconds)


def _conformance(args: argparse.Namespace) -> int:
    import asyncio
    import dataclasses

    from devices.registry import load_registry
    from gateway.conformance import RESEND_WITHIN, judge, watch
    from mqtt.device_link import MqttLink
    from wiring.broker import BrokerAddress, gateway_link_options

    settings = settings_from(args)
    registry = load_registry(settings.registry)
    if registry.assignment(args.device) is None:
        raise CommandError(f"device {args.device!r} is not in the registry {settings.registry}")
    if settings.mqtt.host is None:
        raise CommandError("conformance watches the device's broker: set mqtt.host (e.g. SHIAN_MQTT__HOST)")
    address = BrokerAddress(settings.mqtt.host, settings.mqtt.port or 1883)
    options = dataclasses.replace(
        gateway_link_options(settings, address), client_id=f"shian-conformance-{args.device}", session_expiry_s=None
    )

    def now() -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    async def main() -> list[str]:
        async with MqttLink(options) as link:
            print(f"watching {args.device} on {address.host}:{address.port} for {args.duration} ...", flush=True)
            seen = await watch(link, args.device, args.duration, now)
        within = args.resend_within or RESEND_WITHIN
        findings = judge(seen, registry, args.device, args.duration, resend_within=within)
        return [f.line() for f in findings]

    lines = asyncio.run(main())
    for line in lines:
        print(line)
    failed = sum(line.startswith("FAIL") for line in lines)
    print(f"{args.device}: " + (f"{failed} checks failed" if failed else "conformant"))
    return 1 if failed else 0
