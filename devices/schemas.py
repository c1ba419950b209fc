"""The contract as JSON Schema (draft 2020-12): one schema for every payload of version 1, made from the models
themselves, so the published schema and what the gateway accepts cannot drift apart. Pure: returns documents;
``shian contract export`` writes them under docs/contract/.

What a schema cannot say, the model still checks (docs/contract.md, "What the schemas do not say").
"""

from __future__ import annotations

from typing import Any

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
    model = DOCUMENTS[name]
    schema = model.model_json_schema(mode="validation")
    return {"$schema": DIALECT, "$id": schema_file(name), **schema}


def json_schemas() -> dict[str, dict[str, Any]]:
    """Every schema, by the file it is published as."""
    return {schema_file(name): json_schema(name) for name in DOCUMENTS}
