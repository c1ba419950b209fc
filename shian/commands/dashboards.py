"""``shian dashboards build|push``: the Grafana boards as code."""

from __future__ import annotations

import argparse
import os
import sys

from shian.commands.common import CommandError, Commands


def add(commands: Commands) -> None:
    boards = commands.add_parser(
        "dashboards",
        help="Grafana boards as code: regenerate the JSON, or push it to a running Grafana",
        description="The boards (city overview, canteen detail, device fleet, platform health, kiosk) are built "
        "in dashboards/boards.py; their JSON and provisioning files are committed under dashboards/.",
    )
    actions = boards.add_subparsers(dest="dashboards_command", required=True, metavar="ACTION")
    writing = actions.add_parser("build", help="write dashboards/generated/*.json and the provisioning files")
    writing.add_argument("--check", action="store_true", help="change nothing; exit 1 if the committed files are stale")
    writing.set_defaults(handler=_build)
    push = actions.add_parser(
        "push",
        help="upsert the datasource, a folder and every board into a running Grafana",
        description="Create or update the InfluxDB datasource (uid shian-influxdb), the folder '食安 Shian' and every "
        "board by uid, overwriting older versions. Authenticate with an API token ($SHIAN_GRAFANA_TOKEN) or a user "
        "and password.",
    )
    push.add_argument("--url", required=True, help="Grafana's address, e.g. http://grafana:3000")
    push.add_argument("--token", default=os.environ.get("SHIAN_GRAFANA_TOKEN"), help="service account token")
    push.add_argument("--user", help="instead of a token")
    push.add_argument("--password", help="with --user")
    push.add_argument("--influx-url", required=True, help="InfluxDB as Grafana reaches it")
    push.add_argument("--database", default="shian", help="InfluxDB database (InfluxQL)")
    push.add_argument("--influx-user")
    push.add_argument("--influx-password")
    push.set_defaults(handler=_push)


def _build(args: argparse.Namespace) -> int:
    from dashboards import build

    if args.check:
        stale = build.stale()
        for path in stale:
            print(f"stale: {path} (run 'shian dashboards build')", file=sys.stderr)
        return 1 if stale else 0
    for path in build.write():
        print(f"wrote {path}")
    return 0


def _push(args: argparse.Namespace) -> int:
    from grafana_client.api import GrafanaApi

    from dashboards.push import PushError, push

    credential: str | tuple[str, str] | None = args.token or ((args.user, args.password or "") if args.user else None)
    if credential is None:
        raise CommandError("give --token (or $SHIAN_GRAFANA_TOKEN) or --user and --password")
    try:
        result = push(
            GrafanaApi.from_url(args.url, credential=credential),
            influx_url=args.influx_url,
            database=args.database,
            influx_user=args.influx_user,
            influx_password=args.influx_password,
        )
    except PushError as exc:
        print(f"shian: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # requests' connection errors are OSErrors: Grafana is not there
        raise CommandError(f"cannot reach Grafana at {args.url}: {str(exc)[:300]}") from None
    print(f"datasource {result.datasource}; folder {result.folder}; dashboards: {', '.join(result.dashboards)}")
    return 0
