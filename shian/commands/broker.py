"""``shian broker config|provision|reload``: the Mosquitto configuration, accounts, ACL and TLS."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

from shian.commands.common import CommandError, Commands


def add(commands: Commands) -> None:
    broker = commands.add_parser("broker", help="Mosquitto configuration")
    actions = broker.add_subparsers(dest="broker_command", required=True, metavar="ACTION")
    config = actions.add_parser(
        "config",
        help="print the Mosquitto configuration the managed broker uses",
        description="Print the generated Mosquitto configuration (development listener on loopback).",
    )
    config.add_argument("--port", type=int, default=1883)
    config.add_argument("--persistence-dir", type=Path, default=Path("/var/lib/mosquitto"))
    config.set_defaults(handler=_config)
    prov = actions.add_parser(
        "provision",
        help="generate the password file, ACL and production configuration from the registry",
        description="From the registry, write passwd (PBKDF2-SHA512 hashes), acl, mosquitto.conf (TLS listener, "
        "no anonymous access, username as client id) and credentials.yaml (clear-text passwords, mode 0600) into "
        "--out, and for every camera with a picture (video: push or pull) a stream key: stream-keys.yaml (their "
        "SHA-256 digests, which [video] stream_keys points at) and stream-key-credentials.yaml (clear, mode 0600, "
        "to configure each camera with its own). Existing passwords and keys are kept; new devices and accounts "
        "get generated ones; retired cameras lose their keys. Apply with a reload (SIGHUP), which keeps connected "
        "clients connected; stream keys apply at the next publish.",
    )
    prov.add_argument("--registry", type=Path, required=True, metavar="FILE")
    prov.add_argument("--out", type=Path, required=True, metavar="DIR")
    prov.add_argument(
        "--rotate",
        nargs="+",
        default=[],
        metavar="USERNAME",
        help="give these accounts new passwords (a camera also a new stream key)",
    )
    prov.add_argument("--port", type=int, default=8883, help="the fleet's listener (default 8883)")
    prov.add_argument("--bind", default="0.0.0.0", help="its address (default 0.0.0.0)")
    prov.add_argument("--loopback-port", type=int, help="also a plain listener on 127.0.0.1, for a local gateway")
    prov.add_argument("--tls-ca", type=Path, metavar="FILE", help="CA certificate (enables TLS with the next two)")
    prov.add_argument("--tls-cert", type=Path, metavar="FILE", help="the broker's certificate")
    prov.add_argument("--tls-key", type=Path, metavar="FILE", help="the broker's private key")
    prov.add_argument("--require-client-cert", action="store_true", help="demand client certificates too")
    prov.add_argument("--persistence-dir", type=Path, default=Path("/var/lib/mosquitto"))
    prov.set_defaults(handler=_provision)
    reload = actions.add_parser(
        "reload", help="make a running Mosquitto read its password and ACL files again (SIGHUP)"
    )
    reload.add_argument("--pid", type=int, required=True, help="the broker's process id")
    reload.set_defaults(handler=_reload)


def _config(args: argparse.Namespace) -> int:
    from broker_config.mosquitto_conf import MosquittoConfig

    print(MosquittoConfig(port=args.port, persistence_dir=args.persistence_dir).render(), end="")
    return 0


def _reload(args: argparse.Namespace) -> int:
    os.kill(args.pid, signal.SIGHUP)
    print(f"sent SIGHUP to {args.pid}: Mosquitto reads its password and ACL files again")
    return 0


def _provision(args: argparse.Namespace) -> int:
    from broker_config.mosquitto_conf import TlsFiles
    from broker_config.provision import provision
    from devices.registry import load_registry
    from video.keys import provision_stream_keys

    tls_parts = (args.tls_ca, args.tls_cert, args.tls_key)
    if any(tls_parts) and not all(tls_parts):
        raise CommandError("TLS needs --tls-ca, --tls-cert and --tls-key together")
    registry = load_registry(args.registry)
    tls = (
        TlsFiles(
            cafile=args.tls_ca,
            certfile=args.tls_cert,
            keyfile=args.tls_key,
            require_certificate=args.require_client_cert,
        )
        if args.tls_ca
        else None
    )
    try:
        result = provision(
            registry,
            args.out,
            rotate=args.rotate,
            port=args.port,
            bind_address=args.bind,
            tls=tls,
            loopback_port=args.loopback_port,
            persistence_dir=args.persistence_dir,
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    keys = provision_stream_keys(registry, args.out, rotate=args.rotate)
    for what, names in (("new", result.created), ("rotated", result.rotated), ("removed", result.removed)):
        if names:
            print(f"{what}: {', '.join(names)}")
    for what, names in (
        ("new stream keys", keys.created),
        ("new stream keys for", keys.rotated),
        ("stream keys removed", keys.removed),
    ):
        if names:
            print(f"{what}: {', '.join(names)}")
    print(f"wrote {result.passwd}, {result.acl}, {result.config}, {result.credentials} (secret)")
    print(f"wrote {keys.digests} ([video] stream_keys) and {keys.clear} (secret)")
    if result.readable_by:
        print(f"passwd and acl: mode 0640, group {result.readable_by} (a Mosquitto started as root reads them)")
    else:
        print("passwd and acl: mode 0640; give them to the broker's user before it starts (docs/deploy.md)")
    if not tls:
        print("warning: no TLS; passwords would cross the network in clear (use --tls-ca/--tls-cert/--tls-key)")
    print("apply: shian broker reload --pid <mosquitto pid>   (or: systemctl reload mosquitto)")
    return 0
