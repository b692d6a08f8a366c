"""Confluent wire format: byte 0 = 0, bytes 1-4 = big-endian schema id, then Avro binary."""

from __future__ import annotations

import io
import struct
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from schemas.catalog import SchemaInfo, schema
from schemas.errors import DecodeError
from schemas.registry import LocalRegistry, SchemaIds

_HEADER = struct.Struct(">bI")


class Codec:
    """Encodes records of the bundled schemas and decodes any of them, times as epoch ms."""

    def __init__(self, registry: SchemaIds | None = None) -> None:
        self.registry = registry or LocalRegistry()
        self._writers: dict[tuple[str, str], tuple[bytes, Any]] = {}

    def encode(self, name: str, record: dict[str, Any], topic: str = "") -> bytes:
        """Frame and encode a record of schema `name` (ValueError/TypeError if it does not fit)."""
        writer = self._writers.get((name, topic))
        if writer is None:
            info = schema(name)
            writer = (_HEADER.pack(0, self.registry.id_for(info, topic)), info.fast)
            self._writers[(name, topic)] = writer
        buf = io.BytesIO(writer[0])
        buf.seek(5)
        schemaless_writer(buf, writer[1], record)
        return buf.getvalue()

    def decode(self, data: bytes | None) -> tuple[SchemaInfo, dict[str, Any]]:
        """Decode framed bytes into (schema, record); DecodeError says what is wrong."""
        if data is None:
            raise DecodeError("empty value (tombstone)")
        if len(data) < 5:
            raise DecodeError(f"{len(data)} bytes is too short for the 5-byte wire-format header")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != 0:
            raise DecodeError(f"magic byte is {magic}, not 0: not Confluent wire format")
        info = self.registry.info_for(schema_id)
        stream = io.BytesIO(data)
        stream.seek(5)
        try:
            record = schemaless_reader(stream, info.fast, None)
        except Exception as exc:  # fastavro raises EOFError, UnicodeDecodeError, IndexError...
            raise DecodeError(f"body is not a valid {info.name}: {type(exc).__name__}: {exc}") from exc
        if stream.tell() != len(data):
            raise DecodeError(
                f"{len(data) - stream.tell()} trailing bytes after a {info.name} record"
            )
        if not isinstance(record, dict):
            raise DecodeError(f"body is not a {info.name} record")
        return info, record

    def decode_as(self, expected: str, data: bytes | None) -> dict[str, Any]:
        """Decode and check that the record is of schema `expected`."""
        info, record = self.decode(data)
        if info.name != expected:
            raise DecodeError(f"expected a {expected} record, got {info.name}")
        return record
