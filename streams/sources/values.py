"""Reading a mapped field's value out of a record and converting it to the contract's form."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Final

import msgspec

from schemas.errors import ValidationError
from schemas.limits import show
from schemas.validation import parse_event_time
from streams.sources.spec import UNITS, FieldRef, ItemsRef


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: what ``lookup`` gives for a path the record does not have
MISSING: Final = _Missing()


class BadValue(Exception):
    """A value the field mapping cannot use; ``reason`` says why (the rule is added later)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def lookup(row: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` in ``row`` (objects by name, arrays by index; a string holding
    JSON, as Debezium sends json/jsonb columns, is read into), or MISSING."""
    value = row
    for name in path:
        if isinstance(value, str) and value[:1] in ("{", "["):
            try:
                value = msgspec.json.decode(value)
            except msgspec.DecodeError:
                return MISSING
        if isinstance(value, dict):
            if name not in value:
                return MISSING
            value = value[name]
        elif isinstance(value, list) and name.isdigit() and int(name) < len(value):
            value = value[int(name)]
        else:
            return MISSING
    return value


def text(value: Any) -> str:
    """Text of an id, code or status: a string, or an integer's digits (a bigint column)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise BadValue(f"expected text or an integer, got {_got(value)}")


def integer(value: Any, decimals: int = 0) -> int:
    """An amount or a count: an integer, or a number in major units times 10**decimals (given
    as a number or as text, e.g. Debezium's decimal.handling.mode=string), exactly."""
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value * 10 ** decimals)
    if isinstance(value, bool) or not isinstance(value, str | float):
        raise BadValue(f"expected a number, got {_got(value)}")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else repr(value))
    except InvalidOperation:
        raise BadValue(f"{show(value)} is not a number") from None
    if not number.is_finite():
        raise BadValue(f"{show(value)} is not a number")
    scaled = number.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        unit = "a whole number" if decimals == 0 else f"a number with at most {decimals} decimals"
        raise BadValue(f"{show(value)} is not {unit}")
    return int(scaled)


def event_time(value: Any, ref: FieldRef) -> int:
    """Epoch ms of a time: ISO-8601 text with a zone, or a number in the mapping's unit."""
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        try:
            return parse_event_time(value.strip())
        except ValidationError as exc:
            raise BadValue(exc.reason) from None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadValue(f"expected an ISO-8601 time or a number of {ref.unit}, got "
                       f"{_got(value)}")
    per_ms, divide = UNITS[ref.unit]
    number = Decimal(value.strip() if isinstance(value, str) else repr(value))
    if not number.is_finite():
        raise BadValue(f"{show(value)} is not a time")
    ms = int((number * per_ms / divide).to_integral_value(rounding="ROUND_FLOOR"))
    try:
        return parse_event_time(ms)
    except ValidationError as exc:
        raise BadValue(f"{show(value)} {ref.unit}: {exc.reason}") from None


def items(row: Any, ref: ItemsRef) -> list[dict[str, Any]] | None:
    """The item lines at ``ref`` in the contract's form; None when the record has none."""
    value = lookup(row, ref.path)
    if value is MISSING or value is None:
        return None
    if isinstance(value, str):
        try:
            value = msgspec.json.decode(value)
        except msgspec.DecodeError:
            raise BadValue(f"expected an array of item lines, got text {show(value)}") from None
    if not isinstance(value, list):
        raise BadValue(f"expected an array of item lines, got {_got(value)}")
    lines: list[dict[str, Any]] = []
    for i, element in enumerate(value):
        line: dict[str, Any] = {}
        parts = [("sku", ref.sku), ("quantity", ref.quantity)]
        if ref.unit_price is not None:
            parts.append(("unit_price", ref.unit_price))
        for name, path in parts:
            found = lookup(element, path)
            if found is MISSING or found is None:
                continue
            try:
                if name == "sku":
                    line[name] = text(found)
                else:
                    line[name] = integer(found, ref.decimals if name == "unit_price" else 0)
            except BadValue as exc:
                raise BadValue(f"[{i}].{'.'.join(path)}: {exc.reason}") from None
        lines.append(line)
    return lines


def _got(value: Any) -> str:
    """What a value is, for a reason: its kind, and the value itself if it is a scalar."""
    if value is None or isinstance(value, dict | list):
        return _kind(value)
    return f"{_kind(value)} {show(value)}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "a boolean"), (int, "an integer"), (float, "a number"),
                       (str, "text"), (dict, "an object"), (list, "an array")):
        if isinstance(value, kind):
            return name
    return type(value).__name__
