"""``shian contract export``: the wire contract as JSON Schema and AsyncAPI, generated from the models (the
committed copies under docs/contract/ are checked against them in ``./dev test``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shian.commands.common import Commands

if TYPE_CHECKING:
    from pydantic import BaseModel


#: Where the repository keeps the published contract.
PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "contract"


def add(commands: Commands) -> None:
    contract = commands.add_parser(
        "contract",
        help="the wire contract as JSON Schema and AsyncAPI 3.0",
        description="Write a JSON Schema (draft 2020-12) for every message of contract version 1, generated "
        "from the models the gateway validates with, and an AsyncAPI 3.0 document of the MQTT topics, who sends "
        "and receives what, and how clients authenticate. docs/contract.md explains them; docs/contract/ holds "
        "the published copies.",
    )
    actions = contract.add_subparsers(dest="contract_command", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="write asyncapi.json and schemas/*.schema.json into DIR")
    export.add_argument("dir", type=Path, metavar="DIR", nargs="?", default=PUBLISHED, help="default: docs/contract")
    export.add_argument("--check", action="store_true", help="write nothing; exit 1 if the files in DIR are stale")
    export.set_defaults(handler=_export)


def platform_documents() -> dict[str, type[BaseModel]]:
    """The platform's own documents that supervisors read and write, besides the devices'."""
    from console.digest.compose import DailyDigest
    from rules.alerts import Alert, AlertAck

    return {"alert": Alert, "alert_ack": AlertAck, "daily_digest": DailyDigest}


def documents() -> dict[str, str]:
    """Relative path -> text of every generated file."""
    from devices.asyncapi import asyncapi
    from devices.items import catalogue_document
    from devices.schemas import DOCUMENTS, SCHEMA_DIR, json_schemas, schema_file, standalone

    schemas, platform = json_schemas(), platform_documents()
    for name, model in platform.items():
        schemas[schema_file(name)] = standalone(name, model.model_json_schema())
    files = {f"{SCHEMA_DIR}/{file}": _text(schema) for file, schema in schemas.items()}
    files["asyncapi.json"] = _text(asyncapi({**DOCUMENTS, **platform}))
    files["items.json"] = json.dumps(catalogue_document(), ensure_ascii=False, indent=2) + "\n"
    return files


def _text(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


BEGIN, END = "<!-- fields:begin -->", "<!-- fields:end -->"
ITEMS_BEGIN, ITEMS_END = "<!-- items:begin -->", "<!-- items:end -->"


def with_field_tables(contract: str) -> str:
    """docs/contract.md with its generated "Fields" and "The item catalogue" sections brought up to date."""
    from devices.items import catalogue_table
    from devices.schemas import field_tables

    for begin, end, table in ((BEGIN, END, field_tables()), (ITEMS_BEGIN, ITEMS_END, catalogue_table())):
        start, stop = contract.index(begin) + len(begin), contract.index(end)
        contract = f"{contract[:start]}\n{table}{contract[stop:]}"
    return contract


def _export(args: argparse.Namespace) -> int:
    files = documents()
    markdown = args.dir.resolve().parent / "contract.md"
    if args.dir.resolve() == PUBLISHED and markdown.exists():  # the repository's own copy: its tables too
        files["../contract.md"] = with_field_tables(markdown.read_text(encoding="utf-8"))
    if args.check:
        stale = [path for path, text in files.items() if _read((args.dir / path).resolve()) != text]
        for path in stale:
            print(f"stale: {(args.dir / path).resolve()} (run 'shian contract export')")
        return 1 if stale else 0
    for path, text in files.items():
        target = (args.dir / path).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target}")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None
