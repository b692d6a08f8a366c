"""Schema ids: a local, deterministic registry by default, or a Confluent Schema Registry.

Both write the current version of a schema (``schemas/<Name>.avsc``) and read any id they
know: ``info_for`` answers with the schema the record was written with (the writer's
version), and the codec resolves a record of an older version into the current schema.

The local registry's ids are fixed in ``schemas/registry.json``: each schema's full name maps
to a list of ids, one per version, oldest first; the last is the current ``.avsc`` and the
k-th (1-based) of the others is ``schemas/versions/<Name>.v<k>.avsc`` (``schemas.catalog``).
Ids are never renumbered or reused: a new version appends a new id.
"""

from __future__ import annotations

import json
import threading
from typing import Protocol

from fastavro.schema import to_parsing_canonical_form

from schemas.catalog import SCHEMA_DIR, SchemaInfo, load, schemas, versions
from schemas.errors import DecodeError, SchemaError


class SchemaIds(Protocol):
    """Maps record schemas to wire-format ids and back."""

    def id_for(self, info: SchemaInfo, topic: str) -> int:
        """The id to write in front of a record of this schema on this topic."""

    def info_for(self, schema_id: int) -> SchemaInfo:
        """The schema an id read from the wire was written with (a version of a bundled
        schema); DecodeError if unknown."""


def local_ids() -> dict[str, list[int]]:
    """schemas/registry.json: full name -> its ids, one per version, oldest first."""
    data = json.loads((SCHEMA_DIR / "registry.json").read_text(encoding="utf-8"))
    ids = data["ids"]
    if not isinstance(ids, dict) or not all(
            isinstance(v, list) and v and all(type(i) is int and i > 0 for i in v)
            for v in ids.values()):
        raise SchemaError("schemas/registry.json: ids must map each name to a list of "
                          "positive ints")
    return {name: list(v) for name, v in ids.items()}


class LocalRegistry:
    """Fixed ids from schemas/registry.json, so no registry server is needed."""

    def __init__(self) -> None:
        ids = local_ids()
        by_full = {info.full_name: info for info in schemas().values()}
        missing = sorted(set(by_full) - set(ids))
        if missing:
            raise SchemaError(f"schemas/registry.json has no id for {', '.join(missing)}")
        #: full name -> the id of its current version
        self._ids: dict[str, int] = {}
        self._by_id: dict[int, SchemaInfo] = {}
        for full_name, current in by_full.items():
            kept = versions(current.name)
            if len(ids[full_name]) != len(kept):
                raise SchemaError(
                    f"schemas/registry.json has {len(ids[full_name])} id(s) for {full_name}, "
                    f"which has {len(kept)} version(s) (its .avsc and versions/)")
            for schema_id, info in zip(ids[full_name], kept, strict=True):
                if schema_id in self._by_id:
                    raise SchemaError(f"schemas/registry.json: id {schema_id} is used twice")
                self._by_id[schema_id] = info
            self._ids[full_name] = ids[full_name][-1]

    def id_for(self, info: SchemaInfo, topic: str) -> int:
        return self._ids[info.full_name]

    def info_for(self, schema_id: int) -> SchemaInfo:
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise DecodeError(f"unknown schema id {schema_id}") from None


class ConfluentRegistry:
    """Registers schemas under the subject '<topic>-value' of a Confluent Schema Registry."""

    def __init__(self, url: str, basic_auth: str | None = None) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        conf = {"url": url}
        if basic_auth:
            conf["basic.auth.user.info"] = basic_auth
        self._client = SchemaRegistryClient(conf)
        self._ids: dict[tuple[str, str], int] = {}
        self._by_id: dict[int, SchemaInfo] = {}
        self._lock = threading.Lock()

    def id_for(self, info: SchemaInfo, topic: str) -> int:
        key = (info.full_name, topic)
        if key not in self._ids:
            from confluent_kafka.schema_registry import Schema

            with self._lock:
                subject = f"{topic}-value"
                schema_id = self._client.register_schema(subject, Schema(info.text, "AVRO"))
                self._ids[key] = schema_id
                self._by_id[schema_id] = info
        return self._ids[key]

    def info_for(self, schema_id: int) -> SchemaInfo:
        if schema_id not in self._by_id:
            try:
                text = self._client.get_schema(schema_id).schema_str
            except Exception as exc:  # the client raises several kinds
                raise DecodeError(
                    f"schema id {schema_id} not found in the registry: {exc}"
                ) from exc
            if text is None:
                raise DecodeError(f"schema id {schema_id} has no schema text in the registry")
            self._by_id[schema_id] = _writer_schema(schema_id, text)
        return self._by_id[schema_id]


def _writer_schema(schema_id: int, text: str) -> SchemaInfo:
    """The bundled version a registry's schema text is (the same parsing canonical form: the
    same bytes on the wire, whatever docs and defaults say), or (a version this code does not
    bundle) that schema itself; DecodeError if it is not a version of a bundled schema."""
    try:
        raw = json.loads(text)
        name = str(raw["name"]).rsplit(".", 1)[-1]
    except (ValueError, TypeError, KeyError) as exc:
        raise DecodeError(f"schema id {schema_id}: not an Avro record schema") from exc
    try:
        kept = versions(name)
    except SchemaError:
        raise DecodeError(f"schema id {schema_id} is a {name!r}, not a crosscheck schema") from None
    try:
        info = load(raw, 0)
        form = to_parsing_canonical_form(raw)
    except Exception as exc:  # SchemaError, or fastavro's for a schema it cannot read
        raise DecodeError(f"schema id {schema_id}: {exc}") from exc
    for bundled in reversed(kept):
        if bundled.raw == raw or to_parsing_canonical_form(bundled.raw) == form:
            return bundled
    if info.full_name != kept[-1].full_name:
        raise DecodeError(f"schema id {schema_id} is a {info.full_name}, "
                          f"not {kept[-1].full_name}")
    return info


def registry_from(url: str | None, basic_auth: str | None = None) -> SchemaIds:
    """The registry to use: Confluent's when a URL is configured, else the local one."""
    return ConfluentRegistry(url, basic_auth) if url else LocalRegistry()
