"""A strict Avro binary reader that names the field where a body breaks the format.

fastavro's C reader is fast but lenient: it takes a negative enum or union index as an index
from the end (``symbols[-1]``), wraps a variable-length number of more than 64 bits, and
reports a truncated body as ``IndexError: string index out of range``. The codec decodes with
fastavro, and only when fastavro fails or its record does not re-encode to the same bytes
(a non-canonical body) reads the body again here, where every value is checked:

- a long has at most 10 bytes and fits 64 bits; an int (enum and union indexes too) at most
  5 bytes and 32 bits;
- enum and union indexes are within the symbols / branches;
- string and bytes lengths are not negative and fit in what is left; strings are UTF-8;
- array and map blocks (negative counts carry a byte size) hold no more items than bytes
  left (every item of the bundled schemas takes at least one byte, so a count of 2**62
  cannot make it loop);
- booleans are the byte 0 or 1.

Errors are DecodeError("<field path>: <problem>"), e.g. ``items[2].sku: string of 4000000
bytes, only 12 left``. Times stay epoch-ms ints (logical types are not applied), like the
codec's fastavro schemas. Each schema is compiled once into nested reader functions; the
field path is only put together when something is wrong.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from schemas.errors import DecodeError

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")
_PRIMITIVE = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes",
                        "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})

Read = Callable[["_Body"], Any]


class _Fail(Exception):
    """A problem at a place; the readers up the stack add their part of the path."""

    def __init__(self, problem: str, where: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.where = where  # e.g. " (block count)": what in the value was being read
        self.steps: list[str | int] = []  # innermost first: field names and item indexes


class _Body:
    """The bytes of one body and the read position."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data)


_COMPILED: dict[int, tuple[dict[str, Any], Read]] = {}


def read_strict(raw: dict[str, Any], data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    """Read one record of the (unparsed) schema `raw` from data[pos:]; (record, end)."""
    known = _COMPILED.get(id(raw))
    if known is None or known[0] is not raw:
        known = (raw, _Compiler().compile(raw, raw.get("namespace", "")))
        _COMPILED[id(raw)] = known
    body = _Body(data, pos)
    try:
        record = known[1](body)
    except _Fail as exc:
        path = _path(exc.steps) + exc.where
        raise DecodeError(f"{path}: {exc.problem}" if path else exc.problem) from None
    return record, body.pos


def _path(steps: list[str | int]) -> str:
    out = ""
    for step in reversed(steps):
        if isinstance(step, int):
            out += f"[{step}]"
        elif step.startswith("["):
            out += step
        else:
            out = f"{out}.{step}" if out else step
    return out


def _number(body: _Body, bits: int = 64) -> int:
    """A zig-zag varint of at most `bits` bits (64: long, 32: int)."""
    data, pos = body.data, body.pos
    if pos < body.end and data[pos] < 0x80:  # one byte: most numbers of a record
        byte = data[pos]
        body.pos = pos + 1
        return (byte >> 1) ^ -(byte & 1)
    limit = 10 if bits == 64 else 5
    z = shift = 0
    for _ in range(limit):
        if pos >= body.end:
            raise _Fail("truncated: the body ends inside a number")
        byte = data[pos]
        pos += 1
        z |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    else:
        kind = "long" if bits == 64 else "int"
        raise _Fail(f"variable-length {kind} longer than {limit} bytes")
    body.pos = pos
    n = (z >> 1) ^ -(z & 1)
    if bits == 64 and not _LONG_MIN <= n <= _LONG_MAX:
        raise _Fail(f"{n} does not fit a 64-bit long")
    if bits == 32 and not _INT_MIN <= n <= _INT_MAX:
        raise _Fail(f"{n} does not fit a 32-bit int")
    return n


def _int(body: _Body) -> int:
    return _number(body, 32)


def _take(body: _Body, n: int, what: str) -> bytes:
    if n < 0:
        raise _Fail(f"{what} has a negative length ({n})")
    left = body.end - body.pos
    if n > left:
        raise _Fail(f"{what} of {n} bytes, only {left} left (truncated?)")
    start = body.pos
    body.pos = start + n
    return body.data[start:start + n]


def _string(body: _Body) -> str:
    chunk = _take(body, _number(body), "string")
    try:
        return chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Fail(f"string is not valid UTF-8 ({exc.reason} at byte {exc.start} of "
                    f"{len(chunk)})") from None


def _bytes(body: _Body) -> bytes:
    return _take(body, _number(body), "bytes")


def _boolean(body: _Body) -> bool:
    flag = _take(body, 1, "boolean")[0]
    if flag > 1:
        raise _Fail(f"boolean byte is {flag}, not 0 or 1")
    return flag == 1


def _blocks(body: _Body) -> Any:
    """Yield the item count of each block of an array or map, checked."""
    while True:
        try:
            count = _number(body)
        except _Fail as exc:
            exc.where = " (block count)"
            raise
        if count == 0:
            return
        if count < 0:
            count = -count
            try:
                size = _number(body)
            except _Fail as exc:
                exc.where = " (block size)"
                raise
            if size < 0 or size > body.end - body.pos:
                raise _Fail(f"block size {size} does not fit the {body.end - body.pos} "
                            "bytes left")
        if count > body.end - body.pos:
            raise _Fail(f"block of {count} items cannot fit in the {body.end - body.pos} "
                        "bytes left")
        yield count


_PRIMITIVE_READERS: dict[str, Read] = {
    "null": lambda body: None, "boolean": _boolean, "int": _int, "long": _number,
    "float": lambda body: _FLOAT.unpack(_take(body, 4, "float"))[0],
    "double": lambda body: _DOUBLE.unpack(_take(body, 8, "double"))[0],
    "bytes": _bytes, "string": _string,
}


class _Compiler:
    """Turns a schema into reader functions; named types are resolved as they are seen."""

    def __init__(self) -> None:
        self.names: dict[str, Read] = {}

    def compile(self, node: Any, space: str) -> Read:
        if isinstance(node, list):
            return self._union([self.compile(b, space) for b in node])
        if isinstance(node, str):
            if node in _PRIMITIVE:
                return _PRIMITIVE_READERS[node]
            return self._named(node, space)
        kind = node["type"]
        if isinstance(kind, dict | list) or kind not in _PRIMITIVE | _NAMED | {"array", "map"}:
            return self.compile(kind, space)
        if kind in _PRIMITIVE:
            return _PRIMITIVE_READERS[kind]
        if kind in _NAMED:
            space = node.get("namespace", space)
            holder: list[Read] = []
            self.names[node["name"]] = self.names[_full(node["name"], space)] = \
                lambda body: holder[0](body)
            holder.append(self._named_type(node, kind, space))
            return holder[0]
        if kind == "array":
            return self._array(self.compile(node["items"], space))
        return self._map(self.compile(node["values"], space))

    def _named(self, name: str, space: str) -> Read:
        found = self.names.get(_full(name, space)) or self.names.get(name)
        if found is None:
            raise DecodeError(f"the schema refers to an unknown type {name!r}")
        return found

    def _named_type(self, node: dict[str, Any], kind: str, space: str) -> Read:
        if kind == "enum":
            return _enum(tuple(node["symbols"]))
        if kind == "fixed":
            size = int(node["size"])
            return lambda body: _take(body, size, "fixed")
        fields = [(f["name"], self.compile(f["type"], space)) for f in node["fields"]]

        def record(body: _Body) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name, read in fields:
                try:
                    out[name] = read(body)
                except _Fail as exc:
                    exc.steps.append(name)
                    raise
            return out

        return record

    @staticmethod
    def _union(branches: list[Read]) -> Read:
        def union(body: _Body) -> Any:
            try:
                index = _int(body)
            except _Fail as exc:
                exc.where = " (union index)"
                raise
            if not 0 <= index < len(branches):
                raise _Fail(f"union index {index} is not one of the {len(branches)} branches")
            return branches[index](body)

        return union

    @staticmethod
    def _array(item: Read) -> Read:
        def array(body: _Body) -> list[Any]:
            items: list[Any] = []
            for count in _blocks(body):
                for _ in range(count):
                    try:
                        items.append(item(body))
                    except _Fail as exc:
                        exc.steps.append(len(items))
                        raise
            return items

        return array

    @staticmethod
    def _map(value: Read) -> Read:
        def map_(body: _Body) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for count in _blocks(body):
                for _ in range(count):
                    try:
                        key = _string(body)
                    except _Fail as exc:
                        exc.where = " (key)"
                        raise
                    try:
                        out[key] = value(body)
                    except _Fail as exc:
                        exc.steps.append(f"[{key[:40]!r}]")
                        raise
            return out

        return map_


def _enum(symbols: tuple[str, ...]) -> Read:
    def enum(body: _Body) -> str:
        index = _int(body)
        if not 0 <= index < len(symbols):
            raise _Fail(f"enum index {index} is not one of the {len(symbols)} symbols")
        return symbols[index]

    return enum


def _full(name: str, space: str) -> str:
    return name if "." in name or not space else f"{space}.{name}"
