"""simulate --to-db: events as rows of the example shop's tables, in the order a database sees."""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from streams.simulate import SimConfig, simulate
from streams.simulate.shopdb import (
    STATUS,
    TABLES,
    Record,
    db_order,
    row_values,
    timestamp,
    upsert,
)
from topology.cdc import SHOP_TABLES
from topology.topics import TopicId

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_sources_file_maps_every_status_back_to_its_event_type() -> None:
    doc = tomllib.loads((ROOT / "examples" / "sources-shop.toml").read_text(encoding="utf-8"))
    for topic, statuses in STATUS.items():
        assert doc["inputs"][topic.value]["types"] == {v: k for k, v in statuses.items()}
        assert doc["inputs"][topic.value]["topic"].endswith("." + SHOP_TABLES[topic])


def test_the_schema_has_every_column_the_writer_sets() -> None:
    schema = (ROOT / "examples" / "shop-schema.sql").read_text(encoding="utf-8")
    for table in TABLES.values():
        block = schema.split(f"CREATE TABLE IF NOT EXISTS {table.name} (", 1)[1].split(");")[0]
        names = {line.split()[0] for line in block.strip().splitlines() if line.strip()}
        assert {table.key, *table.columns, "status", "created_at", "updated_at"} <= names
        assert f"ALTER TABLE {table.name} REPLICA IDENTITY FULL;" in schema


def test_a_payment_row_keeps_its_charge_and_records_the_refund() -> None:
    paid = {"event_id": "e1", "order_id": "o1", "type": "SUCCEEDED", "event_time": 1_500,
            "payment_id": "p1", "amount": 3000, "currency": "CNY", "channel": "alipay"}
    refund = {**paid, "event_id": "e2", "type": "REFUNDED", "amount": 1000, "event_time": 9_000}
    assert row_values(TopicId.PAYMENTS, paid) == {
        "payment_id": "p1", "order_id": "o1", "amount": 3000, "refunded": None,
        "currency": "CNY", "channel": "alipay", "status": "paid",
        "created_at": timestamp(1_500), "updated_at": timestamp(1_500)}
    row = row_values(TopicId.PAYMENTS, refund)
    assert (row["status"], row["refunded"], row["updated_at"]) == \
        ("refunded", 1000, timestamp(9_000))
    text = upsert(TopicId.PAYMENTS).as_string(None)
    assert 'ON CONFLICT ("payment_id") DO UPDATE SET "status" = EXCLUDED."status", ' \
           '"updated_at" = EXCLUDED."updated_at", "refunded" = COALESCE(EXCLUDED."refunded", ' \
           '"payments"."refunded")' in text  # the charged amount is never overwritten


def test_order_and_shipment_rows() -> None:
    placed = {"event_id": "e1", "order_id": "o1", "type": "PLACED", "event_time": 0,
              "user_id": "u1", "items": [{"sku": "s", "quantity": 2, "unit_price": 5}],
              "total_amount": 10, "currency": "EUR"}
    row = row_values(TopicId.ORDERS, placed)
    assert row["status"] == "placed" and row["payment_id"] is None
    assert isinstance(row["items"], Jsonb) and row["items"].obj == placed["items"]
    paid = {"event_id": "e2", "order_id": "o1", "type": "PAID", "event_time": 5,
            "payment_id": "p1"}
    row = row_values(TopicId.ORDERS, paid)
    assert (row["status"], row["payment_id"], row["items"]) == ("paid", "p1", None)
    dispatched = {"event_id": "e3", "order_id": "o1", "type": "DISPATCHED", "event_time": 7,
                  "shipment_id": "s1", "items": []}
    assert row_values(TopicId.SHIPPING, dispatched)["items"] is None  # the row keeps its items
    assert "COALESCE" not in upsert(TopicId.SHIPPING).as_string(None)


def test_timestamps_are_exact_to_the_millisecond() -> None:
    assert timestamp(1795244870223).isoformat() == "2026-11-21T07:07:50.223000+00:00"


def test_a_database_sees_each_event_once_in_event_time_order() -> None:
    traffic = simulate(SimConfig(orders=40, seed=3, redelivery_rate=0.2,
                                 faults={"double_charge": 0.2, "hanging_try": 0.2}))
    rows = db_order(traffic.events)
    ids = [r["event_id"] for _, r in rows]
    assert len(ids) == len(set(ids)) == len({r["event_id"] for _, r in traffic.events})
    assert len(rows) == len(traffic.events) - traffic.redeliveries
    times = [r["event_time"] for _, r in rows]
    assert times == sorted(times)
    assert all(r["type"] in STATUS[t] for t, r in rows)


def _final_rows(rows: list[Record]) -> dict[tuple[str, str], dict[str, Any]]:
    """(table, key) -> the row's columns after every statement (what the database holds)."""
    final: dict[tuple[str, str], dict[str, Any]] = {}
    for topic, record in rows:
        table = TABLES[topic]
        values = row_values(topic, record)
        row = final.setdefault((table.name, values[table.key]), dict(values))
        row.update(status=values["status"], updated_at=values["updated_at"])
    return final


def test_a_lost_callback_leaves_the_payment_paid_and_the_order_row_never_updated() -> None:
    lost = simulate(SimConfig(orders=20, seed=4, faults={"lost_callback": 1.0}))
    rows = db_order(lost.events)
    final = _final_rows(rows)
    orders = {key: row for (table, key), row in final.items() if table == "orders"}
    assert len(orders) == 20
    paid_orders = {row["order_id"] for (table, _), row in final.items()
                   if table == "payments" and row["status"] == "paid"}
    assert paid_orders == set(orders)
    assert not [r for t, r in rows if t is TopicId.ORDERS and r["type"] == "PAID"]
    assert {row["status"] for row in orders.values()} == {"placed"}
    healthy = _final_rows(db_order(simulate(SimConfig(orders=20, seed=4)).events))
    statuses = Counter(row["status"] for (table, _), row in healthy.items() if table == "orders")
    assert statuses["paid"] > 10  # where the callback arrives, the order row is paid
