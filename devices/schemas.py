"""The contract as JSON Schema (draft 2020-12): one schema for every payload of version 1, made from the models
themselves, so the published schema and what the gateway accepts cannot drift apart. Pure: returns documents;
``shian contract export`` writes them under docs/contract/.

What a schema cannot say, the model still checks (docs/contract.md, "What the schemas do not say").
"""

from __future__ import annotations

from typing import Any

from devices.field_docs import FIELDS, FieldDoc
from devices.items import BUILTIN, ItemCatalogue
from devices.messages import MODELS_BY_TYPE, DeadLetter, Receipt, WireModel

DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: Where the schemas are published, relative to the AsyncAPI document that references them.
SCHEMA_DIR = "schemas"

#: Name -> model of every document the platform or a device sends: the device payloads by their ``type``, and
#: the platform's answers.
DOCUMENTS: dict[str, type[WireModel]] = {**MODELS_BY_TYPE, "receipt": Receipt, "deadletter": DeadLetter}


def schema_file(name: str) -> str:
    return f"{name}.schema.json"


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of one document, standalone (its definitions inside it)."""
    schema = _describe(DOCUMENTS[name].model_json_schema(mode="validation"))
    if name == "test.result":
        schema = _with_catalogue(schema, BUILTIN)
    return standalone(name, schema)


def _with_catalogue(schema: dict[str, Any], items: ItemCatalogue) -> dict[str, Any]:
    """A test's item is one of the catalogue's, tested by one of its methods in that method's unit."""
    schema["properties"]["item_code"]["enum"] = [item.code for item in items]
    schema.setdefault("allOf", []).extend(
        {
            "if": {"properties": {"item_code": {"const": item.code}}},
            "then": {
                "anyOf": [
                    {"properties": {"method": {"const": method}, "unit": {"const": unit}}}
                    for method, unit in dict.fromkeys((s.method, s.unit) for s in item.standards)
                ]
            },
        }
        for item in items
    )
    return schema


def standalone(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` as the file ``name`` is published in: its dialect and its id."""
    return {"$schema": DIALECT, "$id": schema_file(name), **schema}


def json_schemas() -> dict[str, dict[str, Any]]:
    """Every schema, by the file it is published as."""
    return {schema_file(name): json_schema(name) for name in DOCUMENTS}


def _describe(schema: dict[str, Any]) -> dict[str, Any]:
    """Each property's meaning (devices.field_docs) as its description."""
    for name, prop in schema.get("properties", {}).items():
        doc = FIELDS.get(name)
        if doc is not None:
            unit = f" [{doc.unit}]" if doc.unit else ""
            prop["description"] = f"{doc.en}{unit} / {doc.zh}"
    return schema


def _kind(prop: dict[str, Any]) -> str:
    options = prop.get("anyOf", [prop])
    kinds = []
    for option in options:
        if "enum" in option:
            kinds.append(" \\| ".join(f"`{v}`" for v in option["enum"]))
        elif "const" in option:
            kinds.append(f"`{option['const']}`")
        else:
            kind = option.get("type", "any")
            kinds.append(f"{kind} ({option['format']})" if "format" in option else str(kind))
    return " or ".join(kinds)


def _range(prop: dict[str, Any]) -> str:
    parts = []
    for option in prop.get("anyOf", [prop]):
        for key, text in (("minimum", "≥ {}"), ("exclusiveMinimum", "> {}"), ("maximum", "≤ {}")):
            if key in option:
                parts.append(text.format(option[key]))
        if "maxLength" in option:
            parts.append(f"{option.get('minLength', 0)}–{option['maxLength']} chars")
    return ", ".join(parts)


_HEADER = "| field | type | unit | range | required | 含义 | meaning |\n|---|---|---|---|---|---|---|"


def field_tables() -> str:
    """Markdown: for every device payload and the receipt, each field's type, unit, range, whether it is
    required, and its meaning in Chinese and English (what docs/contract.md's "Fields" section holds)."""
    out = []
    for name in DOCUMENTS:
        schema = json_schema(name)
        required = set(schema.get("required", []))
        out.append(f"\n#### `{name}`\n\n{_HEADER}")
        for field, prop in schema["properties"].items():
            doc = FIELDS.get(field, FieldDoc("", ""))
            needed = "yes" if field in required else "no"
            out.append(f"| `{field}` | {_kind(prop)} | {doc.unit} | {_range(prop)} | {needed} | {doc.zh} | {doc.en} |")
    return "\n".join(out).lstrip("\n") + "\n"
