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
codec's fastavro schemas.
"""

from __future__ import annotations

import struct
from typing import Any

from schemas.errors import DecodeError

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")
_NAMED = frozenset({"record", "enum", "fixed", "error"})


def read_strict(raw: dict[str, Any], data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    """Read one record of the (unparsed) schema `raw` from data[pos:]; (record, end)."""
    reader = _Reader(data, pos)
    record = reader.value(raw, "", raw.get("namespace", ""))
    return record, reader.pos


class _Reader:
    """The position in one body and the named types seen so far."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos
        self.names: dict[str, Any] = {}

    def left(self) -> int:
        return len(self.data) - self.pos

    def number(self, path: str, bits: int) -> int:
        """A zig-zag varint of at most `bits` bits (64: long, 32: int)."""
        data, pos, end = self.data, self.pos, len(self.data)
        limit = 10 if bits == 64 else 5
        z = shift = 0
        for _ in range(limit):
            if pos >= end:
                raise DecodeError(f"{_at(path)}truncated: the body ends inside a number")
            byte = data[pos]
            pos += 1
            z |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
        else:
            kind = "long" if bits == 64 else "int"
            raise DecodeError(f"{_at(path)}variable-length {kind} longer than {limit} bytes")
        self.pos = pos
        n = (z >> 1) ^ -(z & 1)
        low, high = (_LONG_MIN, _LONG_MAX) if bits == 64 else (_INT_MIN, _INT_MAX)
        if not low <= n <= high:
            raise DecodeError(f"{_at(path)}{n} does not fit a {bits}-bit "
                              f"{'long' if bits == 64 else 'int'}")
        return n

    def take(self, n: int, path: str, what: str) -> bytes:
        if n < 0:
            raise DecodeError(f"{_at(path)}{what} has a negative length ({n})")
        if n > self.left():
            raise DecodeError(f"{_at(path)}{what} of {n} bytes, only {self.left()} left "
                              "(truncated?)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def string(self, path: str) -> str:
        chunk = self.take(self.number(path, 64), path, "string")
        try:
            return chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"{_at(path)}string is not valid UTF-8 ({exc.reason} at byte "
                              f"{exc.start} of {len(chunk)})") from None

    def blocks(self, path: str) -> Any:
        """Yield the item count of each block of an array or map, checked."""
        while True:
            count = self.number(f"{path} (block count)", 64)
            if count == 0:
                return
            if count < 0:
                count = -count
                size = self.number(f"{path} (block size)", 64)
                if size < 0 or size > self.left():
                    raise DecodeError(f"{_at(path)}block size {size} does not fit the "
                                      f"{self.left()} bytes left")
            if count > self.left():
                raise DecodeError(f"{_at(path)}block of {count} items cannot fit in the "
                                  f"{self.left()} bytes left")
            yield count

    def value(self, node: Any, path: str, space: str) -> Any:
        if isinstance(node, list):
            index = self.number(f"{path} (union index)", 32)
            if not 0 <= index < len(node):
                raise DecodeError(f"{_at(path)}union index {index} is not one of the "
                                  f"{len(node)} branches")
            return self.value(node[index], path, space)
        if isinstance(node, str):
            kind: Any = node
            if kind not in _PRIMITIVE:
                return self.value(self._named(kind, space), path, space)
        else:
            kind = node["type"]
            if isinstance(kind, dict | list) or kind not in _PRIMITIVE | _COMPLEX:
                return self.value(kind, path, space)
            if kind in _NAMED:
                space = node.get("namespace", space)
                self.names[node["name"]] = node
                self.names[_full(node["name"], space)] = node
        if kind == "string":
            return self.string(path)
        if kind in ("long", "int"):
            return self.number(path, 64 if kind == "long" else 32)
        if kind == "null":
            return None
        if kind == "boolean":
            flag = self.take(1, path, "boolean")[0]
            if flag > 1:
                raise DecodeError(f"{_at(path)}boolean byte is {flag}, not 0 or 1")
            return flag == 1
        if kind == "bytes":
            return self.take(self.number(path, 64), path, "bytes")
        if kind == "double":
            return _DOUBLE.unpack(self.take(8, path, "double"))[0]
        if kind == "float":
            return _FLOAT.unpack(self.take(4, path, "float"))[0]
        if kind == "enum":
            symbols = node["symbols"]
            index = self.number(path, 32)
            if not 0 <= index < len(symbols):
                raise DecodeError(f"{_at(path)}enum index {index} is not one of the "
                                  f"{len(symbols)} symbols")
            return symbols[index]
        if kind == "fixed":
            return self.take(int(node["size"]), path, "fixed")
        if kind == "array":
            items: list[Any] = []
            for count in self.blocks(path):
                for _ in range(count):
                    items.append(self.value(node["items"], f"{path}[{len(items)}]", space))
            return items
        if kind == "map":
            out: dict[str, Any] = {}
            for count in self.blocks(path):
                for _ in range(count):
                    key = self.string(f"{path} (key)")
                    out[key] = self.value(node["values"], f"{path}[{key[:40]!r}]", space)
            return out
        return {f["name"]: self.value(f["type"], _join(path, f["name"]), space)
                for f in node["fields"]}

    def _named(self, name: str, space: str) -> Any:
        found = self.names.get(_full(name, space)) or self.names.get(name)
        if found is None:
            raise DecodeError(f"the schema refers to an unknown type {name!r}")
        return found


_PRIMITIVE = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes",
                        "string"})
_COMPLEX = frozenset({"record", "error", "enum", "array", "map", "fixed"})


def _full(name: str, space: str) -> str:
    return name if "." in name or not space else f"{space}.{name}"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _at(path: str) -> str:
    return f"{path}: " if path else ""
