"""Schema ids: a local, deterministic registry by default, or a Confluent Schema Registry."""

from __future__ import annotations

import json
import threading
from typing import Protocol

from schemas.catalog import SCHEMA_DIR, SchemaInfo, schema, schemas
from schemas.errors import DecodeError, SchemaError


class SchemaIds(Protocol):
    """Maps record schemas to wire-format ids and back."""

    def id_for(self, info: SchemaInfo, topic: str) -> int:
        """The id to write in front of a record of this schema on this topic."""

    def info_for(self, schema_id: int) -> SchemaInfo:
        """The schema of an id read from the wire; DecodeError if unknown."""


class LocalRegistry:
    """Fixed ids from schemas/registry.json, so no registry server is needed."""

    def __init__(self) -> None:
        data = json.loads((SCHEMA_DIR / "registry.json").read_text(encoding="utf-8"))
        self._ids: dict[str, int] = dict(data["ids"])
        by_full = {info.full_name: info for info in schemas().values()}
        missing = sorted(set(by_full) - set(self._ids))
        if missing:
            raise SchemaError(f"schemas/registry.json has no id for {', '.join(missing)}")
        self._by_id = {self._ids[name]: by_full[name] for name in by_full}

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
            raw = json.loads(text)
            self._by_id[schema_id] = schema(raw["name"])
        return self._by_id[schema_id]


def registry_from(url: str | None, basic_auth: str | None = None) -> SchemaIds:
    """The registry to use: Confluent's when a URL is configured, else the local one."""
    return ConfluentRegistry(url, basic_auth) if url else LocalRegistry()
