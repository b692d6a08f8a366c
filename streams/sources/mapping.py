"""Mapping one record of a shop's topic onto the contract's event: pure functions of the record.

``map_record`` gives a Mapped (the validated Avro record of the input's schema), a Skip (a
change that is no event: a tombstone, a delete, a status left unchanged, a status mapped to
"skip"; counted) or a MapError (dead-lettered with the input, the mapping rule and the
reason). ``map_event`` gives the engine's Event instead of the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from schemas.errors import ValidationError
from schemas.limits import show
from schemas.validation import validate_event
from streams.model import Event, Source
from streams.records import event_from_record
from streams.sources import values
from streams.sources.spec import (
    EVENT_TYPES,
    SKIP,
    EventIdRule,
    FieldRef,
    Format,
    InputSpec,
    Meta,
)
from streams.sources.values import MISSING, BadValue, lookup
from topology.topics import TopicId


@dataclass(frozen=True)
class RawRecord:
    """A record as read from the shop's topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None = None  #: the Kafka timestamp, ms
    headers: tuple[tuple[str, bytes | None], ...] = ()


@dataclass(frozen=True)
class Mapped:
    """A record that maps: the input and its validated Avro record."""

    input: TopicId
    record: dict[str, Any]

    @property
    def order_id(self) -> str:
        return str(self.record["order_id"])

    def event(self) -> Event:
        """The engine's Event of the record."""
        return event_from_record(Source(self.input.value), self.record)


@dataclass(frozen=True)
class Skip:
    """A change that maps to no event; ``reason`` is what is counted."""

    input: TopicId
    reason: str


@dataclass(frozen=True)
class MapError:
    """A record that does not map: the input, the mapping rule and what is wrong."""

    input: TopicId
    rule: str
    reason: str
    source: str = ""  #: "json shop.payments"

    def message(self) -> str:
        """The dead letter's reason."""
        where = f" ({self.source})" if self.source else ""
        return f"{self.input.value}{where}: {self.rule}: {self.reason}"


Result = Mapped | Skip | MapError


@dataclass
class _Change:
    """The row of a record and what the format says about it."""

    row: dict[str, Any]
    before: dict[str, Any] | None = None
    lsn: Any = None
    commit: Any = None
    table: str | None = None
    updated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class _Fail(Exception):
    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.rule, self.reason = rule, reason


class _Skipped(Exception):
    pass


def map_event(spec: InputSpec, raw: RawRecord) -> Event | Skip | MapError:
    """The Event a record maps to, or why it does not."""
    result = map_record(spec, raw)
    return result.event() if isinstance(result, Mapped) else result


def map_record(spec: InputSpec, raw: RawRecord) -> Result:
    """The contract record a record of ``spec``'s topic maps to, or why it does not."""
    try:
        return Mapped(spec.input, _map(spec, raw))
    except _Skipped as exc:
        return Skip(spec.input, str(exc))
    except _Fail as exc:
        return MapError(spec.input, exc.rule, exc.reason, f"{spec.format.value} {spec.topic}")


def _map(spec: InputSpec, raw: RawRecord) -> dict[str, Any]:
    change = _change(spec, raw)
    status, kind = _status(spec, change)
    event: dict[str, Any] = {"type": kind, "event_id": _event_id(spec, change, status, raw)}
    absent: set[str] = set()
    for name, ref in spec.fields.items():
        if name == "event_id":
            continue
        value = _value(ref, change, raw)
        if value is MISSING or value is None:
            if value is MISSING:
                absent.add(name)
            continue
        event[name] = _convert(ref, value)
    if spec.items is not None:
        try:
            lines = values.items(change.row, spec.items)
        except BadValue as exc:
            raise _Fail(spec.items.rule, exc.reason) from None
        if lines is not None:
            event["items"] = lines
    try:
        return validate_event(spec.input, event)
    except ValidationError as exc:
        raise _Fail(*_blame(spec, exc, absent)) from None


def _blame(spec: InputSpec, exc: ValidationError, absent: set[str]) -> tuple[str, str]:
    """The rule and reason of a contract validation failure of the mapped event."""
    top = exc.field.split(".")[0].split("[")[0]
    if top == "items" and spec.items is not None:
        where = exc.field[len("items"):]
        return spec.items.rule, f"{where.lstrip('.')}: {exc.reason}" if where else exc.reason
    ref = spec.fields.get(top)
    if ref is None:
        return f"format = \"{spec.format.value}\"", str(exc)
    if top in absent and exc.reason == "is missing":
        what = ".".join(ref.path) or (ref.meta.value if ref.meta else top)
        return ref.rule, f"not in the record (no {what})"
    return ref.rule, exc.reason


# -- the row of a record, by format --------------------------------------------------------


def _change(spec: InputSpec, raw: RawRecord) -> _Change:
    if raw.value is None:
        raise _Skipped("tombstone")
    rule = f"format = \"{spec.format.value}\""
    try:
        body = msgspec.json.decode(raw.value)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _Fail(rule, f"not JSON: {exc}") from None
    if isinstance(body, dict) and set(body) == {"schema", "payload"}:
        body = body["payload"]  # Kafka Connect's JsonConverter with schemas.enable=true
        if body is None:
            raise _Skipped("tombstone")
    if not isinstance(body, dict):
        raise _Fail(rule, f"expected a JSON object, got {show(body)}")
    if spec.format is Format.JSON:
        return _Change(body)
    if spec.unwrap:
        return _unwrapped(spec, body)
    return _envelope(spec, body)


_OPS = {"c": "insert", "r": "read", "u": "update", "d": "delete", "t": "truncate",
        "m": "message"}


def _envelope(spec: InputSpec, body: dict[str, Any]) -> _Change:
    op = body.get("op")
    if op not in _OPS:
        hint = " (is the connector's ExtractNewRecordState on? then unwrap = true)" \
            if "op" not in body else ""
        raise _Fail("format = \"debezium\"", f"not a Debezium change event: op is "
                                             f"{show(op) if 'op' in body else 'missing'}{hint}")
    if op in ("d", "t", "m"):
        raise _Skipped(_OPS[op])
    after, before = body.get("after"), body.get("before")
    if not isinstance(after, dict):
        raise _Fail("format = \"debezium\"", f"a change with op {op!r} and no row after it")
    found = body.get("source")
    source: dict[str, Any] = found if isinstance(found, dict) else {}
    table = _source_table(source)
    _check_table(spec, table)
    return _Change(after, before if isinstance(before, dict) else None, source.get("lsn"),
                   source.get("ts_ms"), table, op == "u")


def _unwrapped(spec: InputSpec, row: dict[str, Any]) -> _Change:
    if str(row.get("__deleted", "")).lower() == "true":
        raise _Skipped("delete")
    op = row.get("__op")
    if op in ("d", "t", "m"):
        raise _Skipped(_OPS[op])
    table = row.get("__table")
    if isinstance(table, str):
        schema = row.get("__schema")
        table = f"{schema}.{table}" if isinstance(schema, str) else table
        _check_table(spec, table)
    return _Change(row, None, row.get("__lsn"), row.get("__source_ts_ms"),
                   table if isinstance(table, str) else None, op == "u")


def _source_table(source: dict[str, Any]) -> str | None:
    table = source.get("table")
    if not isinstance(table, str):
        return None
    schema = source.get("schema")
    return f"{schema}.{table}" if isinstance(schema, str) else table


def _check_table(spec: InputSpec, table: str | None) -> None:
    """A change of another table than the input's (a connector routing several tables to
    one topic, or the wrong topic) is refused: its columns mean something else."""
    if table is None or not spec.table:
        return
    want, got = spec.table.split("."), table.split(".")
    if want[-1] != got[-1] or (len(want) > 1 and len(got) > 1 and want[-2] != got[-2]):
        raise _Fail(f"table = \"{spec.table}\"", f"the change is of table {table}")


# -- status, type and event id ----------------------------------------------------------------


def _status(spec: InputSpec, change: _Change) -> tuple[str, str]:
    """The record's status (as text) and the contract type it maps to."""
    ref = spec.type_field
    assert ref is not None
    found = lookup(change.row, ref.path)
    if found is MISSING or found is None:
        raise _Fail(ref.rule, "not in the record" if found is MISSING else "is null")
    try:
        status = values.text(found)
    except BadValue as exc:
        raise _Fail(ref.rule, exc.reason) from None
    if change.updated:
        _unchanged(spec, change, ref, status)
    if spec.types is None:
        if status not in EVENT_TYPES[spec.input]:
            known = ", ".join(EVENT_TYPES[spec.input])
            raise _Fail(ref.rule, f"{show(status)} is not a {spec.input.value} type ({known}); "
                                  f"map the statuses in [inputs.{spec.input.value}.types]")
        return status, status
    kind = spec.types.get(status)
    if kind is None:
        raise _Fail(ref.rule, f"{show(status)} is not in [inputs.{spec.input.value}.types]")
    if kind == SKIP:
        raise _Skipped(f"status {status} is skipped")
    return status, kind


def _unchanged(spec: InputSpec, change: _Change, ref: FieldRef, status: str) -> None:
    """Skip an update that leaves the status as it was (the envelope's before image); with
    event_id = "lsn" an update without one cannot be told apart and is refused."""
    before = lookup(change.before, ref.path) if change.before is not None else MISSING
    if before is MISSING:
        if spec.event_id_rule is EventIdRule.LSN:
            raise _Fail("event_id = \"lsn\"", f"an update without the row's previous "
                        f"{'.'.join(ref.path)} (no before image): set REPLICA IDENTITY FULL "
                        f"on {spec.table or 'the table'}, or event_id = \"status\"")
        return
    try:
        previous = values.text(before) if before is not None else None
    except BadValue:
        previous = None
    if previous == status:
        raise _Skipped("status unchanged")


def _event_id(spec: InputSpec, change: _Change, status: str, raw: RawRecord) -> str:
    rule = spec.event_id_rule
    if rule is EventIdRule.FIELD:
        ref = spec.fields["event_id"]
        found = _value(ref, change, raw)
        if found is MISSING or found is None:
            raise _Fail(ref.rule, "not in the record" if found is MISSING else "is null")
        try:
            return values.text(found)
        except BadValue as exc:
            raise _Fail(ref.rule, exc.reason) from None
    key_rule = "key = [" + ", ".join(f'"{c}"' for c in spec.key) + "]"
    parts: list[str] = []
    for column in spec.key:
        found = lookup(change.row, tuple(column.split(".")))
        if found is MISSING or found is None:
            raise _Fail(key_rule, f"column {column} is {'null' if found is None else 'missing'}")
        try:
            parts.append(values.text(found))
        except BadValue as exc:
            raise _Fail(key_rule, f"column {column}: {exc.reason}") from None
    row_id = f"{spec.table}:{','.join(parts)}"
    if rule is EventIdRule.STATUS:
        return f"{row_id}:{status}"
    lsn = change.lsn
    if isinstance(lsn, bool) or not isinstance(lsn, int | str) or lsn == "":
        where = "__lsn (add.fields=op,table,lsn,source.ts_ms)" if spec.unwrap else "source.lsn"
        raise _Fail("event_id = \"lsn\"", f"the change has no LSN ({where})")
    return f"{row_id}:{lsn}"


# -- other fields ----------------------------------------------------------------------------


def _value(ref: FieldRef, change: _Change, raw: RawRecord) -> Any:
    if ref.has_constant:
        return ref.constant
    if ref.meta is Meta.KEY:
        if raw.key is None:
            return MISSING
        try:
            return raw.key.decode("utf-8")
        except UnicodeDecodeError:
            raise _Fail(ref.rule, "the record's key is not UTF-8 text") from None
    if ref.meta is Meta.TIMESTAMP:
        return raw.timestamp if raw.timestamp is not None and raw.timestamp >= 0 else MISSING
    if ref.meta is Meta.COMMIT:
        return MISSING if change.commit is None else change.commit
    return lookup(change.row, ref.path)


def _convert(ref: FieldRef, value: Any) -> Any:
    try:
        if ref.name == "event_time":
            return values.event_time(value, ref)
        if ref.name in ("amount", "total_amount", "quantity"):
            return values.integer(value, ref.decimals)
        return values.text(value)
    except BadValue as exc:
        raise _Fail(ref.rule, exc.reason) from None
