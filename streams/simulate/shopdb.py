"""The simulator's traffic as rows of the example shop's tables: inserts and status updates.

Each input event becomes one statement on its service's table (streams/cdc/shop_schema.sql):
the first event of an order, payment, reservation or shipment inserts its row, each later
one sets the row's status and updated_at (its event time), as the services' own databases
would. Debezium then turns every statement into one change event. The rows are written in
event-time order; a redelivered event (an event_id seen before) is a broker's doing, not a
database's, and is not written. So an order's status column follows exactly the order
events it is given: a flow whose payment callback is lost has its payment row paid and its
order row never updated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from streams.cdc.config import Database
from streams.errors import CdcError
from topology.cdc import SHOP_TABLES
from topology.topics import TopicId

Record = tuple[TopicId, dict[str, Any]]

#: event type -> the status the service's table stores for it
STATUS: dict[TopicId, dict[str, str]] = {
    TopicId.ORDERS: {"PLACED": "placed", "PAID": "paid", "CANCELLED": "cancelled"},
    TopicId.PAYMENTS: {"SUCCEEDED": "paid", "FAILED": "failed", "REFUNDED": "refunded"},
    TopicId.INVENTORY: {"RESERVED": "reserved", "CONFIRMED": "confirmed",
                        "RELEASED": "released"},
    TopicId.SHIPPING: {"CREATED": "created", "DISPATCHED": "dispatched",
                       "DELIVERED": "delivered", "CANCELLED": "cancelled"},
}


@dataclass(frozen=True)
class Table:
    """How one input's events are written: its table, primary key, the columns an insert
    sets from the event, and those a later event may set (besides status and updated_at)."""

    name: str
    key: str
    columns: tuple[str, ...]
    updates: tuple[str, ...] = ()


TABLES: dict[TopicId, Table] = {
    TopicId.ORDERS: Table(SHOP_TABLES[TopicId.ORDERS], "order_id",
                          ("user_id", "items", "total_amount", "currency", "payment_id"),
                          ("payment_id",)),
    TopicId.PAYMENTS: Table(SHOP_TABLES[TopicId.PAYMENTS], "payment_id",
                            ("order_id", "amount", "refunded", "currency", "channel"),
                            ("refunded",)),
    TopicId.INVENTORY: Table(SHOP_TABLES[TopicId.INVENTORY], "reservation_id",
                             ("order_id", "sku", "quantity")),
    TopicId.SHIPPING: Table(SHOP_TABLES[TopicId.SHIPPING], "shipment_id",
                            ("order_id", "items")),
}


def timestamp(ms: int) -> datetime:
    """An epoch-millisecond event time as an aware UTC datetime (exact to the millisecond)."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def row_values(topic: TopicId, record: Mapping[str, Any]) -> dict[str, Any]:
    """The columns one event writes: key, the table's columns it carries, status, times."""
    table = TABLES[topic]
    values: dict[str, Any] = {table.key: record[table.key]}
    for column in table.columns:
        value = record.get(column)
        if column == "refunded":
            value = record["amount"] if record["type"] == "REFUNDED" else None
        elif column == "items":
            value = Jsonb(list(value)) if value else None
        elif column == "payment_id" and not value:
            value = None
        values[column] = value
    try:
        values["status"] = STATUS[topic][record["type"]]
    except KeyError:
        raise ValueError(f"{topic.value}: no status for event type {record['type']!r}") from None
    at = timestamp(record["event_time"])
    values["created_at"] = at
    values["updated_at"] = at
    return values


def upsert(topic: TopicId) -> sql.Composed:
    """INSERT ... ON CONFLICT (key) DO UPDATE of one event: a new row, or the row's new
    status and updated_at (and the columns a later event may fill)."""
    table = TABLES[topic]
    columns = [table.key, *table.columns, "status", "created_at", "updated_at"]
    name = sql.Identifier(table.name)
    sets = [sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c))
            for c in ("status", "updated_at")]
    sets += [sql.SQL("{c} = COALESCE(EXCLUDED.{c}, {t}.{c})").format(
        c=sql.Identifier(c), t=name) for c in table.updates]
    return sql.SQL("INSERT INTO {t} ({cols}) VALUES ({vals}) ON CONFLICT ({key}) "
                   "DO UPDATE SET {sets}").format(
        t=name, cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        vals=sql.SQL(", ").join(sql.Placeholder(c) for c in columns),
        key=sql.Identifier(table.key), sets=sql.SQL(", ").join(sets))


def db_order(events: Iterable[Record]) -> list[Record]:
    """The events a database sees, in the order it sees them: redeliveries (an event_id
    again) dropped, the rest sorted by event time (ties in publish order)."""
    seen: set[str] = set()
    kept: list[Record] = []
    for topic, record in events:
        if record["event_id"] not in seen:
            seen.add(record["event_id"])
            kept.append((topic, record))
    kept.sort(key=lambda e: e[1]["event_time"])
    return kept


@dataclass
class WriteSummary:
    """Statements written per table (each one change event), and the rows they wrote."""

    statements: Counter[str] = field(default_factory=Counter)
    inserts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.statements.values())

    def text(self) -> str:
        return ", ".join(f"{t}={n} ({self.inserts[t]} rows)"
                         for t, n in sorted(self.statements.items()))


def write_events(database: Database, events: Iterable[Record]) -> WriteSummary:
    """Write ``events`` (in the order given: see db_order) as statements on the example
    shop's tables of ``database``, each its own transaction (pipelined)."""
    summary = WriteSummary()
    rows: dict[str, set[str]] = {t.name: set() for t in TABLES.values()}
    statements = {topic: upsert(topic) for topic in TABLES}
    try:
        with psycopg.connect(database.url, autocommit=True, connect_timeout=10) as conn, \
                conn.pipeline():
            for topic, record in events:
                table = TABLES[topic]
                conn.execute(statements[topic], row_values(topic, record))
                summary.statements[table.name] += 1
                key = str(record[table.key])
                if key not in rows[table.name]:
                    rows[table.name].add(key)
                    summary.inserts[table.name] += 1
    except psycopg.errors.UndefinedTable as exc:
        raise CdcError(f"{database.shown} lacks the example shop's tables ({exc}): create "
                       "them with examples/shop-schema.sql (`crosscheck cdc start` does in "
                       "its local database)") from None
    except psycopg.OperationalError as exc:
        raise CdcError(f"cannot write to {database.shown}: {str(exc).strip()} (start the "
                       "local database with `crosscheck cdc start`, or set "
                       "CROSSCHECK_CDC_DATABASE)") from None
    return summary
