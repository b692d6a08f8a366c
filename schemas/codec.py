"""Confluent wire format: byte 0 = 0, bytes 1-4 = big-endian schema id, then Avro binary.

Records are written with the current version of their schema. A record read is checked
against the version its id names (the writer's schema), and a record of an older version is
then resolved into the current schema (Avro schema resolution: fields the current version
added take their defaults), so a reader always sees current records.
"""

from __future__ import annotations

import copy
import io
import struct
from collections.abc import Callable
from functools import partial
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from schemas.catalog import SchemaInfo, schema
from schemas.errors import DecodeError
from schemas.registry import LocalRegistry, SchemaIds
from schemas.strict import read_strict

_HEADER = struct.Struct(">bI")

Encoder = Callable[[dict[str, Any]], bytes]


class Codec:
    """Encodes records of the bundled schemas and decodes any of them, times as epoch ms."""

    def __init__(self, registry: SchemaIds | None = None) -> None:
        self.registry = registry or LocalRegistry()
        self._encoders: dict[tuple[str, str], Encoder] = {}
        #: schema id -> record name, of the ids ``decode`` has looked up that name the
        #: current version of their schema
        self._names: dict[int, str] = {}

    def known_name(self, data: bytes) -> str | None:
        """The record name of framed bytes' schema id, if ``decode`` has seen that id before
        as an id of the current version of the schema (None: not framed, an id not looked up
        yet, or one of an older version; no registry request is made). The fast readers of
        input records (``streams.fastdecode``, the native core) read the current layout only:
        they are given the ids this names."""
        if len(data) < 5 or data[0] != 0:
            return None
        return self._names.get(int.from_bytes(data[1:5], "big"))

    def encoder(self, name: str, topic: str = "") -> Encoder:
        """A function that frames and encodes records of schema `name` for `topic`.

        Records are dicts as fastavro takes them (times as epoch-ms ints); a record that does
        not fit raises ValueError or TypeError. The bytes are exactly fastavro's.
        """
        encode = self._encoders.get((name, topic))
        if encode is None:
            info = schema(name)
            header = _HEADER.pack(0, self.registry.id_for(info, topic))
            try:
                encode = compile_encoder(info.raw, header)
            except _Unsupported:
                encode = partial(_fastavro_encode, header, info.fast)
            self._encoders[(name, topic)] = encode
        return encode

    def encode(self, name: str, record: dict[str, Any], topic: str = "") -> bytes:
        """Frame and encode a record of schema `name` (ValueError/TypeError if it does not fit)."""
        encode = self._encoders.get((name, topic)) or self.encoder(name, topic)
        return encode(record)

    def decode(self, data: bytes | None) -> tuple[SchemaInfo, dict[str, Any]]:
        """Decode framed bytes into (schema, record); DecodeError says what is wrong."""
        if data is None:
            raise DecodeError("empty value (tombstone)")
        if len(data) < 5:
            raise DecodeError(f"{len(data)} bytes is too short for the 5-byte wire-format header")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != 0:
            raise DecodeError(f"magic byte is {magic}, not 0: not Confluent wire format")
        writer = self.registry.info_for(schema_id)
        info = schema(writer.name)
        if writer is info:
            self._names[schema_id] = info.name
        stream = io.BytesIO(data)
        stream.seek(5)
        try:
            fast = schemaless_reader(stream, writer.fast, None)
        except Exception as exc:  # fastavro raises EOFError, UnicodeDecodeError, IndexError...
            record, end = _strict(writer, data, exc)
        else:
            end = stream.tell()
            if not isinstance(fast, dict):
                raise DecodeError(f"body is not a {info.name} record")
            record = fast
            if end == len(data) and not _canonical(writer, record, data):
                # fastavro is lenient (enum index -1, numbers over 64 bits): read it strictly
                record, end = _strict(writer, data, None)
        if end != len(data):
            raise DecodeError(f"{len(data) - end} trailing bytes after a {info.name} record")
        if writer is not info:
            record = _resolve(writer, info, record)
        return info, record

    def decode_as(self, expected: str, data: bytes | None) -> dict[str, Any]:
        """Decode and check that the record is of schema `expected`."""
        info, record = self.decode(data)
        if info.name != expected:
            raise DecodeError(f"expected a {expected} record, got {info.name}")
        return record


def _strict(info: SchemaInfo, data: bytes,
            failure: Exception | None) -> tuple[dict[str, Any], int]:
    """The body read by the strict reader; DecodeError naming the field if it is not valid.

    `failure` is fastavro's exception when fastavro could not read the body; should the
    strict reader read it anyway, fastavro's message is the reason.
    """
    try:
        record, end = read_strict(info.raw, data, 5)
    except DecodeError as exc:
        raise DecodeError(f"body is not a valid {info.name}: {exc}") from failure
    if failure is not None:
        raise DecodeError(f"body is not a valid {info.name}: "
                          f"{type(failure).__name__}: {failure}") from failure
    return record, end


def _canonical(info: SchemaInfo, record: dict[str, Any], data: bytes) -> bool:
    """True if `record` encodes to exactly the body of `data` (the usual case: then fastavro
    read it right; anything else is checked by the strict reader)."""
    try:
        return _check_encoder(info)(record) == memoryview(data)[5:]
    except Exception:  # an int out of range, an unknown symbol: not what was written
        return False


def _resolve(writer: SchemaInfo, reader: SchemaInfo, record: dict[str, Any]) -> dict[str, Any]:
    """A valid record of an older version `writer` as a record of the current `reader`
    (read again, from its canonical bytes, with fastavro's schema resolution)."""
    body = io.BytesIO(_check_encoder(writer)(record))
    try:
        resolved = schemaless_reader(body, writer.fast, reader.fast)
    except Exception as exc:  # fastavro's SchemaResolutionError, or what a default breaks
        raise DecodeError(f"a {writer.name} of version {writer.version or 'unbundled'} does "
                          f"not resolve into the current one: {type(exc).__name__}: {exc}"
                          ) from exc
    if not isinstance(resolved, dict):
        raise DecodeError(f"body is not a {reader.name} record")
    return copy.deepcopy(resolved)  # fastavro hands out its one object of a [] or {} default


#: schema text -> a header-less encoder of it, to compare decoded bodies with
_CHECK_ENCODERS: dict[str, Encoder] = {}


def _check_encoder(info: SchemaInfo) -> Encoder:
    """A header-less encoder of the schema (any version), to compare decoded bodies with."""
    encode = _CHECK_ENCODERS.get(info.text)
    if encode is None:
        try:
            encode = compile_encoder(info.raw)
        except _Unsupported:
            encode = partial(_fastavro_encode, b"", info.fast)
        _CHECK_ENCODERS[info.text] = encode
    return encode


def _fastavro_encode(header: bytes, parsed: Any, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO(header)
    buf.seek(len(header))
    schemaless_writer(buf, parsed, record)
    return buf.getvalue()


# --- compiled encoders: straight-line Python per schema, byte-identical to fastavro ----------


class _Unsupported(Exception):
    """A schema construct the compiler leaves to fastavro."""


_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_LOGICAL_OK = frozenset({"timestamp-millis", "timestamp-micros"})


def _plain_varint(z: int) -> bytes:
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


#: END[z]: the varint of 0 <= z < 2**14 (one or two bytes, the last one final)
_END = tuple(_plain_varint(z) for z in range(1 << 14))
#: MID[z]: 14 bits as two 7-bit groups, both with the continuation bit set
_MID = tuple(bytes(((z & 0x7F) | 0x80, (z >> 7) | 0x80)) for z in range(1 << 14))
#: SMALL[n]: the Avro long 0 <= n < 8192 (zig-zag 2n)
_SMALL = tuple(_END[2 * n] for n in range(1 << 13))


def _varint(n: int) -> bytes:
    """Avro long: zig-zag, then base-128 little-endian (14 bits per table lookup)."""
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise ValueError(f"{n} does not fit an Avro long")
    z = (n << 1) ^ (n >> 63)
    if z < 0x4000:
        return _END[z]
    if z < 0x10000000:
        return _MID[z & 0x3FFF] + _END[z >> 14]
    if z < 0x40000000000:
        return _MID[z & 0x3FFF] + _MID[(z >> 14) & 0x3FFF] + _END[z >> 28]
    head = _MID[z & 0x3FFF] + _MID[(z >> 14) & 0x3FFF] + _MID[(z >> 28) & 0x3FFF]
    if z < 0x100000000000000:
        return head + _END[z >> 42]
    return head + _MID[(z >> 42) & 0x3FFF] + _END[z >> 56]


def _varint32(n: int) -> bytes:
    if not _INT_MIN <= n <= _INT_MAX:
        raise ValueError(f"{n} does not fit an Avro int")
    return _varint(n)


class _Gen:
    """Emits the body of an encoder function for one schema."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}
        self._n = 0

    def var(self, stem: str) -> str:
        self._n += 1
        return f"{stem}{self._n}"

    def const(self, value: Any) -> str:
        name = self.var("K")
        self.consts[name] = value
        return name

    def emit(self, line: str, depth: int) -> None:
        self.lines.append("    " * depth + line)

    def value(self, node: Any, expr: str, depth: int) -> None:
        """Code that appends the encoding of `expr` (a simple name) of schema `node`."""
        if isinstance(node, list):
            self.union(node, expr, depth)
            return
        if isinstance(node, str):
            kind: Any = node
        elif isinstance(node, dict):
            kind = node.get("type")
            logical = node.get("logicalType")
            if logical is not None and logical not in _LOGICAL_OK:
                raise _Unsupported(f"logicalType {logical}")
        else:
            raise _Unsupported(repr(node))
        if isinstance(kind, dict | list):
            self.value(kind, expr, depth)
        elif kind == "string":
            b = self.var("b")
            self.emit(f"{b} = {expr}.encode()", depth)
            self.emit(f"n = len({b}); out += S[n] if n < 8192 else V(n); out += {b}",
                      depth)
        elif kind == "bytes":
            self.emit(f"if not isinstance({expr}, (bytes, bytearray, memoryview)): "
                      f"raise TypeError('expected bytes, got ' + type({expr}).__name__)", depth)
            self.emit(f"n = len({expr}); out += S[n] if n < 8192 else V(n); out += {expr}", depth)
        elif kind == "long":
            self.emit(f"out += S[{expr}] if 0 <= {expr} < 8192 else V({expr})", depth)
        elif kind == "int":
            self.emit(f"out += S[{expr}] if 0 <= {expr} < 8192 else V32({expr})", depth)
        elif kind == "boolean":
            self.emit(f"out += b'\\x01' if {expr} else b'\\x00'", depth)
        elif kind == "double":
            self.emit(f"out += PD({expr})", depth)
        elif kind == "float":
            self.emit(f"out += PF({expr})", depth)
        elif kind == "null":
            pass
        elif kind == "enum":
            table = self.const({s: _varint(i) for i, s in enumerate(node["symbols"])})
            self.emit(f"out += {table}[{expr}]", depth)
        elif kind == "fixed":
            size = int(node["size"])
            self.emit(f"if len({expr}) != {size}: raise ValueError('fixed of size {size}')", depth)
            self.emit(f"out += {expr}", depth)
        elif kind == "array":
            item = self.var("x")
            self.emit(f"if {expr}:", depth)
            self.emit(f"out += V(len({expr}))", depth + 1)
            self.emit(f"for {item} in {expr}:", depth + 1)
            self.value(node["items"], item, depth + 2)
            self.emit("out += b'\\x00'", depth)
        elif kind == "map":
            key, item = self.var("k"), self.var("x")
            self.emit(f"if {expr}:", depth)
            self.emit(f"out += V(len({expr}))", depth + 1)
            self.emit(f"for {key}, {item} in {expr}.items():", depth + 1)
            self.value("string", key, depth + 2)
            self.value(node["values"], item, depth + 2)
            self.emit("out += b'\\x00'", depth)
        elif kind == "record":
            self.record(node, expr, depth)
        else:
            raise _Unsupported(f"type {kind!r}")

    def union(self, branches: list[Any], expr: str, depth: int) -> None:
        names = [b if isinstance(b, str) else b.get("type") if isinstance(b, dict) else None
                 for b in branches]
        if len(branches) != 2 or "null" not in names:
            raise _Unsupported("unions other than [null, T]")
        null_at = names.index("null")
        other = branches[1 - null_at]
        self.emit(f"if {expr} is None:", depth)
        self.emit(f"out += {_varint(null_at)!r}", depth + 1)
        self.emit("else:", depth)
        self.emit(f"out += {_varint(1 - null_at)!r}", depth + 1)
        self.value(other, expr, depth + 1)

    def record(self, node: dict[str, Any], expr: str, depth: int) -> None:
        for f in node["fields"]:
            name, ftype = f["name"], f["type"]
            nullable = "null" in ftype if isinstance(ftype, list) else ftype == "null"
            v = self.var("v")
            if "default" in f:
                default = self.const(f["default"])
                self.emit(f"{v} = {expr}.get({name!r}, {default})", depth)
            elif nullable:
                self.emit(f"{v} = {expr}.get({name!r})", depth)
            else:
                self.emit(f"{v} = {expr}[{name!r}]", depth)
            self.value(ftype, v, depth)


def compile_encoder(raw: dict[str, Any], header: bytes = b"") -> Encoder:
    """An encoder of records of the (unparsed) record schema `raw`, prefixed by `header`.

    Raises _Unsupported for constructs outside what the bundled schemas use (named type
    references, general unions, logical types other than timestamps).
    """
    if raw.get("type") != "record":
        raise _Unsupported("top level is not a record")
    gen = _Gen()
    gen.record(raw, "r", 2)
    name = raw.get("name", "record")
    source = "\n".join([
        "def encode(r):",
        "    out = bytearray(HEADER)",
        "    try:",
        *gen.lines,
        "    except KeyError as exc:",
        f"        raise ValueError(f'{name}: missing field or unknown symbol {{exc}}') from None",
        "    except AttributeError as exc:",
        f"        raise TypeError(f'{name}: {{exc}}') from None",
        "    return bytes(out)",
    ])
    namespace: dict[str, Any] = {
        "HEADER": header, "S": _SMALL, "V": _varint, "V32": _varint32,
        "PD": struct.Struct("<d").pack, "PF": struct.Struct("<f").pack, **gen.consts,
    }
    exec(compile(source, f"<avro encoder {name}>", "exec"), namespace)
    encode: Encoder = namespace["encode"]
    return encode
