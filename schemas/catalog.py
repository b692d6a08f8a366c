"""The bundled .avsc files, loaded once and parsed for fastavro (with and without logical types).

``schemas/<Name>.avsc`` is the current version of each record schema: what is written.
Superseded versions are kept as ``schemas/versions/<Name>.v<k>.avsc`` (k = 1, 2, ...; the
current one is version k + 1 of the last of them), so records written with them can still be
read (``schemas.codec`` resolves them into the current schema); ``schemas/registry.json``
gives every version its wire-format id.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema

from schemas.errors import SchemaError

SCHEMA_DIR = Path(__file__).resolve().parent
VERSIONS_DIR = SCHEMA_DIR / "versions"
_VERSION_FILE = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\.v(?P<k>[1-9][0-9]*)\.avsc$")


@dataclass(frozen=True)
class SchemaInfo:
    """One record schema: its names, the published text, and fastavro's parsed forms."""

    name: str  #: short name, e.g. "PaymentEvent"
    full_name: str  #: namespaced, e.g. "io.crosscheck.events.PaymentEvent"
    text: str = field(repr=False)  #: canonical JSON as registered (with logical types)
    raw: dict[str, Any] = field(repr=False)
    #: parsed with timestamp-millis stripped: the same bytes, but times stay epoch-ms ints
    fast: Any = field(repr=False)
    timestamp_fields: frozenset[str]
    #: 1, 2, ...: the current schema is the highest; 0: a schema that is not bundled (a
    #: writer's schema a Confluent registry returned)
    version: int
    #: field holding a record (or null or a record) -> that record's timestamp fields
    nested_timestamps: dict[str, frozenset[str]]


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


def _nested_timestamps(raw: dict[str, Any]) -> dict[str, frozenset[str]]:
    result: dict[str, frozenset[str]] = {}
    for f in raw["fields"]:
        branches = f["type"] if isinstance(f["type"], list) else [f["type"]]
        for branch in branches:
            if isinstance(branch, dict) and branch.get("type") == "record":
                result[f["name"]] = _timestamp_fields(branch)
    return {name: fields for name, fields in result.items() if fields}


def load(raw: dict[str, Any], version: int) -> SchemaInfo:
    """The SchemaInfo of a parsed record schema (SchemaError if it cannot be one)."""
    try:
        name = raw["name"]
        full_name = name if "." in name else f"{raw['namespace']}.{name}"
        return SchemaInfo(
            name=full_name.rsplit(".", 1)[-1],
            full_name=full_name,
            text=json.dumps(raw, separators=(",", ":")),
            raw=raw,
            fast=parse_schema(_strip_logical(copy.deepcopy(raw))),
            timestamp_fields=_timestamp_fields(raw),
            version=version,
            nested_timestamps=_nested_timestamps(raw),
        )
    except SchemaError:
        raise
    except Exception as exc:  # fastavro raises several kinds; a missing key is a KeyError
        raise SchemaError(f"not a usable record schema: {type(exc).__name__}: {exc}") from exc


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SchemaError(f"{path.name}: not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("type") != "record":
        raise SchemaError(f"{path.name}: not a record schema")
    return raw


@cache
def _all_versions() -> dict[str, tuple[SchemaInfo, ...]]:
    return load_versions(SCHEMA_DIR, VERSIONS_DIR)


def load_versions(schema_dir: Path, versions_dir: Path) -> dict[str, tuple[SchemaInfo, ...]]:
    """Short name -> every version of it, oldest first (the last: ``<Name>.avsc`` of
    `schema_dir`, the others ``<Name>.v<k>.avsc`` of `versions_dir`); SchemaError if a
    version is missing, misnamed or of another record."""
    old: dict[str, dict[int, dict[str, Any]]] = {}
    for path in sorted(versions_dir.glob("*.avsc")):
        match = _VERSION_FILE.match(path.name)
        if match is None:
            raise SchemaError(f"versions/{path.name}: not named <Name>.v<k>.avsc")
        raw = _read(path)
        if raw.get("name") != match["name"]:
            raise SchemaError(f"versions/{path.name}: its record is named {raw.get('name')!r}")
        old.setdefault(match["name"], {})[int(match["k"])] = raw
    result: dict[str, tuple[SchemaInfo, ...]] = {}
    for path in sorted(schema_dir.glob("*.avsc")):
        current = _read(path)
        name = current["name"]
        kept = old.pop(name, {})
        if sorted(kept) != list(range(1, len(kept) + 1)):
            raise SchemaError(f"versions/{name}.v*.avsc: versions {sorted(kept)} are not 1..n")
        infos = [load(kept[k], k) for k in sorted(kept)] + [load(current, len(kept) + 1)]
        full_names = {info.full_name for info in infos}
        if len(full_names) != 1:
            raise SchemaError(f"the versions of {name} have several full names: "
                              f"{', '.join(sorted(full_names))}")
        result[name] = tuple(infos)
    if old:
        raise SchemaError(f"versions/ has schemas with no current .avsc: {', '.join(sorted(old))}")
    return result


@cache
def schemas() -> dict[str, SchemaInfo]:
    """Short name -> SchemaInfo of the current version of every bundled schema."""
    return {name: infos[-1] for name, infos in _all_versions().items()}


def versions(name: str) -> tuple[SchemaInfo, ...]:
    """Every version of a schema, oldest first: the last is ``schema(name)``."""
    try:
        return _all_versions()[name]
    except KeyError:
        raise SchemaError(f"no schema named {name!r}") from None


def schema(name: str) -> SchemaInfo:
    """The schema of a record by short name; SchemaError if unknown."""
    try:
        return schemas()[name]
    except KeyError:
        raise SchemaError(f"no schema named {name!r}") from None
