"""The bundled .avsc files, loaded once and parsed for fastavro (with and without logical types)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema

from schemas.errors import SchemaError

SCHEMA_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class SchemaInfo:
    """One record schema: its names, the published text, and fastavro's parsed forms."""

    name: str  #: short name, e.g. "PaymentEvent"
    full_name: str  #: namespaced, e.g. "io.crosscheck.events.PaymentEvent"
    text: str  #: canonical JSON as registered (with logical types)
    raw: dict[str, Any]
    #: parsed with timestamp-millis stripped: the same bytes, but times stay epoch-ms ints
    fast: Any
    timestamp_fields: frozenset[str]


def _strip_logical(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("logicalType") == "timestamp-millis":
            return {k: v for k, v in node.items() if k != "logicalType"}
        return {k: _strip_logical(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_strip_logical(v) for v in node]
    return node


def _timestamp_fields(raw: dict[str, Any]) -> frozenset[str]:
    def is_ts(t: Any) -> bool:
        if isinstance(t, list):
            return any(is_ts(x) for x in t)
        return isinstance(t, dict) and t.get("logicalType") == "timestamp-millis"

    return frozenset(f["name"] for f in raw["fields"] if is_ts(f["type"]))


@cache
def schemas() -> dict[str, SchemaInfo]:
    """Short name -> SchemaInfo for every bundled schema."""
    result: dict[str, SchemaInfo] = {}
    for path in sorted(SCHEMA_DIR.glob("*.avsc")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise SchemaError(f"{path.name}: not valid JSON: {exc}") from exc
        name = raw["name"]
        result[name] = SchemaInfo(
            name=name,
            full_name=f"{raw['namespace']}.{name}",
            text=json.dumps(raw, separators=(",", ":")),
            raw=raw,
            fast=parse_schema(_strip_logical(copy.deepcopy(raw))),
            timestamp_fields=_timestamp_fields(raw),
        )
    return result


def schema(name: str) -> SchemaInfo:
    """The schema of a record by short name; SchemaError if unknown."""
    try:
        return schemas()[name]
    except KeyError:
        raise SchemaError(f"no schema named {name!r}") from None
