"""Payload generators for the input fuzz test: valid records, bad fields, raw byte mutations.

`write_raw` encodes a record of an (unparsed) Avro schema with no range checks at all, so a
test can put what no encoder would write into a body: longs beyond 64 bits, enum indexes
out of range, invalid UTF-8 (bytes as a string value), arrays in many blocks.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from functools import cache
from typing import Any

from schemas.catalog import schema
from schemas.limits import MAX_EVENT_TIME, MAX_ORDER_ID_LENGTH
from schemas.registry import LocalRegistry
from schemas.validation import TYPES
from topology.topics import BY_ID, INPUTS, TopicId

REGISTRY = LocalRegistry()
SCHEMA_IDS = {name: REGISTRY.id_for(schema(name), "") for name in
              ("OrderEvent", "PaymentEvent", "InventoryEvent", "ShippingEvent", "Mismatch",
               "Command", "MetricsWindow", "Alert", "DeadLetter", "Tick")}
INPUT_TOPICS = [t for t in INPUTS if t in TYPES]


def schema_name(topic: TopicId) -> str:
    """The value schema of an input topic."""
    return BY_ID[topic].value_schema


@dataclass(frozen=True)
class Raw:
    """Bytes spliced into a body as they are, in place of a value."""

    data: bytes


@dataclass(frozen=True)
class Blocks:
    """An array written in several blocks; `sized` blocks carry a negative count and a size."""

    blocks: tuple[tuple[Any, ...], ...]
    sized: bool = False


def zigzag(n: int) -> bytes:
    """The Avro varint of any integer (no 64-bit bound)."""
    z = 2 * n if n >= 0 else -2 * n - 1
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def header(name: str) -> bytes:
    """The Confluent header of schema `name` (local registry ids)."""
    return b"\x00" + SCHEMA_IDS[name].to_bytes(4, "big")


def write_raw(node: Any, value: Any, out: bytearray) -> None:
    """Append `value` as schema `node` would, unchecked (see the module docstring)."""
    if isinstance(value, Raw):
        out += value.data
        return
    kind = node if isinstance(node, str) else node["type"]
    if isinstance(kind, dict):
        write_raw(kind, value, out)
    elif kind == "string":
        data = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
        out += zigzag(len(data)) + data
    elif kind in ("long", "int"):
        out += zigzag(value)
    elif kind == "enum":
        out += zigzag(node["symbols"].index(value) if isinstance(value, str) else value)
    elif kind == "array":
        blocks = value.blocks if isinstance(value, Blocks) else ((tuple(value),) if value else ())
        for block in blocks:
            if isinstance(value, Blocks) and value.sized:
                body = bytearray()
                for item in block:
                    write_raw(node["items"], item, body)
                out += zigzag(-len(block)) + zigzag(len(body)) + body
            else:
                out += zigzag(len(block))
                for item in block:
                    write_raw(node["items"], item, out)
        out += b"\x00"
    elif kind == "record":
        for f in node["fields"]:
            if f["name"] in value:
                write_raw(f["type"], value[f["name"]], out)
    else:
        raise AssertionError(f"write_raw: no {kind!r} in the input schemas")


def encode_raw(topic: TopicId, record: dict[str, Any]) -> bytes:
    """Header and unchecked body of an input record."""
    name = schema_name(topic)
    out = bytearray(header(name))
    write_raw(schema(name).raw, record, out)
    return bytes(out)


# --- valid records --------------------------------------------------------------------------

_ALPHABET = string.ascii_letters + string.digits + "-_./:#@ " + "ÄöüßéñçøåЖж中文订单ü€🙂"


def text(rng: random.Random, low: int = 1, high: int = 16) -> str:
    """Printable text (no control character, no surrogate, not blank)."""
    while True:
        value = "".join(rng.choices(_ALPHABET, k=rng.randint(low, high)))
        if not value.isspace():
            return value


_POOL = tuple(text(random.Random(i), 1, 16) for i in range(4000))


def short_text(rng: random.Random) -> str:
    """One of 4000 texts made by `text` (faster than making one)."""
    return _POOL[rng.randrange(len(_POOL))]


def _currency(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(3))


def _amount(rng: random.Random) -> int:
    return rng.choice((0, 1, rng.randint(0, 10**6), rng.randint(0, 2**63 - 1), 2**63 - 1))


def _quantity(rng: random.Random) -> int:
    return rng.choice((1, rng.randint(1, 100), rng.randint(1, 2**31 - 1), 2**31 - 1))


def _event_time(rng: random.Random) -> int:
    return rng.choice((0, MAX_EVENT_TIME, rng.randint(0, MAX_EVENT_TIME),
                       rng.randint(1_700_000_000_000, 1_900_000_000_000)))


def valid_record(rng: random.Random, topic: TopicId) -> dict[str, Any]:
    """A record of the topic that passes validation, every field present (canonical form)."""
    kind = rng.choice(sorted(TYPES[topic]))
    # mostly distinct orders: the engine's work per event grows with the order's history
    order_id = f"{short_text(rng)}-{rng.getrandbits(40):x}" if rng.random() < 0.9 else \
        text(rng, 1, MAX_ORDER_ID_LENGTH)
    base = {"event_id": short_text(rng), "order_id": order_id, "type": kind,
            "event_time": _event_time(rng)}
    if topic is TopicId.PAYMENTS:
        return {**base, "payment_id": short_text(rng), "amount": _amount(rng),
                "currency": _currency(rng), "channel": rng.choice(("", short_text(rng)))}
    if topic is TopicId.INVENTORY:
        return {**base, "reservation_id": short_text(rng), "sku": short_text(rng),
                "quantity": _quantity(rng)}
    if topic is TopicId.SHIPPING:
        count = rng.randint(1, 4) if kind == "CREATED" else rng.randint(0, 2)
        return {**base, "shipment_id": short_text(rng),
                "items": [{"sku": short_text(rng), "quantity": _quantity(rng)}
                          for _ in range(count)]}
    placed = kind == "PLACED"
    count = rng.randint(1, 4) if placed else rng.randint(0, 2)
    user_id = short_text(rng) if placed else rng.choice(("", short_text(rng)))
    return {**base, "user_id": user_id,
            "items": [{"sku": short_text(rng), "quantity": _quantity(rng),
                       "unit_price": _amount(rng)} for _ in range(count)],
            "total_amount": _amount(rng),
            "currency": _currency(rng) if placed else rng.choice(("", _currency(rng))),
            "payment_id": rng.choice(("", short_text(rng))) if kind == "PAID" else ""}


# --- bad values, by Avro type and by field ----------------------------------------------------

BAD_STRINGS: tuple[Any, ...] = (
    "", " ", "\t\n", "a\x00b", "\x7f", "\x85", "o\u2028", "\U0001f600" * 3,
    b"\xff\xfe", b"\xed\xa0\x80", b"\xc0\x80", b"abc\x80", b"\xf4\x90\x80\x80",  # invalid UTF-8
    "x" * (MAX_ORDER_ID_LENGTH + 1), "\u202eevil", "usd", "US", "USDT", "U$D", "ÜSD",
)
BAD_LONGS = (-1, -(2**63), 2**63 - 1, 2**63, 2**64 + 5, -(2**63) - 1, 2**70, 0,
             MAX_EVENT_TIME + 1)
BAD_INTS = (0, -1, -(2**31), 2**31 - 1, 2**31, 2**32 + 1, -(2**31) - 1, 2**40)
BAD_ENUMS = (-1, -2, 3, 4, 2**31 - 1, 2**31, 2**40, -(2**63))


def huge_string(rng: random.Random) -> str | bytes:
    """A long string (10k to 50k characters, one in 50 a million), sometimes ending in
    invalid UTF-8."""
    size = 1_000_000 if rng.random() < 0.02 else rng.randint(10_000, 50_000)
    value = rng.choice(("A", "中", "\U0001f600", "x\n")) * size
    return value.encode() + b"\xff" if rng.random() < 0.2 else value


def leaf_fields(node: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, type) of the top-level fields of a record schema."""
    return [(f["name"], f["type"]) for f in node["fields"]]


def bad_value(rng: random.Random, ftype: Any) -> Any:
    """A value of the wrong size or content for a field of Avro type `ftype`."""
    kind = ftype if isinstance(ftype, str) else ftype["type"]
    if kind == "string":
        return huge_string(rng) if rng.random() < 0.002 else rng.choice(BAD_STRINGS)
    if kind == "long":
        return rng.choice(BAD_LONGS)
    if kind == "int":
        return rng.choice(BAD_INTS)
    if kind == "enum":
        return rng.choice(BAD_ENUMS)
    if kind == "array":
        return bad_items(rng, ftype)
    raise AssertionError(kind)


def bad_items(rng: random.Random, ftype: dict[str, Any]) -> Any:
    """Empty, huge, many-block, or item-level broken arrays (and valid odd encodings)."""
    item_fields = leaf_fields(ftype["items"])

    def item(good: bool = True) -> dict[str, Any]:
        one = {"sku": short_text(rng), "quantity": 1, "unit_price": 5}
        out = {name: one[name] for name, _ in item_fields}
        if not good:
            name, itype = rng.choice(item_fields)
            out[name] = bad_value(rng, itype)
        return out

    choice = rng.randrange(6)
    if choice == 0:
        return []
    if choice == 1 and rng.random() < 0.05:  # deep in the only way the format nests: long
        return _long_list(ftype["items"]["name"], 10_000 if rng.random() < 0.1 else 1000)
    if choice == 1:
        return [item() for _ in range(rng.randint(5, 20))]
    if choice == 2:
        return Blocks(tuple((item(),) for _ in range(rng.randint(2, 300))))
    if choice == 3:
        return Blocks(((item(), item()), (item(),)), sized=True)
    if choice == 4:
        return [item(), item(good=False)]
    count = rng.choice((2**31, 2**62, -(2**62), 10**6))
    return Raw(zigzag(count) + (zigzag(5) if count < 0 else b"") + b"\x02A\x02\x0a")


@cache
def _long_list(item_name: str, count: int) -> Raw:
    """An array of `count` valid items of record `item_name`, written once."""
    item = {"sku": "SKU-1", "quantity": 3}
    node: dict[str, Any] = {"type": "record", "name": item_name, "fields": [
        {"name": "sku", "type": "string"}, {"name": "quantity", "type": "int"}]}
    if item_name == "OrderItem":
        item["unit_price"] = 250
        node["fields"].append({"name": "unit_price", "type": "long"})
    out = bytearray()
    write_raw({"type": "array", "items": node}, [item] * count, out)
    return Raw(bytes(out))
