"""Conversions between Avro records of the topics and the engine's plain data (streams.model)."""

from __future__ import annotations

from typing import Any

from streams.model import Command, DeadLetter, Event, Item, Mismatch, Source
from topology.topics import TopicId

_ENTITY_FIELD = {
    Source.ORDERS: "order_id",
    Source.PAYMENTS: "payment_id",
    Source.INVENTORY: "reservation_id",
    Source.SHIPPING: "shipment_id",
}


def source_of(topic: TopicId) -> Source:
    """The engine source of an input topic id."""
    return Source(topic.value)


def event_from_record(source: Source, record: dict[str, Any]) -> Event:
    """A validated input record -> Event."""
    items = tuple(
        Item(i["sku"], i["quantity"], i.get("unit_price")) for i in record.get("items") or ()
    )
    return Event(
        source=source,
        event_id=record["event_id"],
        order_id=record["order_id"],
        type=record["type"],
        event_time=record["event_time"],
        entity_id=record[_ENTITY_FIELD[source]],
        amount=record.get("amount"),
        currency=record.get("currency") or None,
        channel=record.get("channel") if source is Source.PAYMENTS else None,
        sku=record.get("sku"),
        quantity=record.get("quantity"),
        items=items,
        user_id=record.get("user_id"),
        total_amount=record.get("total_amount"),
        payment_id=(record.get("payment_id") or None) if source is Source.ORDERS else None,
    )


def mismatch_record(m: Mismatch) -> dict[str, Any]:
    """Mismatch -> Avro record dict."""
    return {
        "mismatch_id": m.mismatch_id,
        "type": m.type.value,
        "status": m.status.value,
        "order_id": m.order_id,
        "subject_id": m.subject_id,
        "severity": m.severity.value,
        "decided_at": m.decided_at,
        "detected_at": m.detected_at,
        "evidence": list(m.evidence),
        "command_id": m.command_id,
        "details": dict(m.details),
        "resolved_at": m.resolved_at,
        "resolved_by": m.resolved_by,
    }


def command_record(c: Command) -> dict[str, Any]:
    """Command -> Avro record dict."""
    return {
        "command_id": c.command_id,
        "type": c.type.value,
        "order_id": c.order_id,
        "target_id": c.target_id,
        "amount": c.amount,
        "currency": c.currency,
        "sku": c.sku,
        "quantity": c.quantity,
        "payment_id": c.payment_id,
        "mismatch_id": c.mismatch_id,
        "issued_at": c.issued_at,
    }


def dead_letter_record(d: DeadLetter) -> dict[str, Any]:
    """DeadLetter -> Avro record dict."""
    return {
        "source_topic": d.source_topic,
        "partition": d.partition,
        "offset": d.offset,
        "key": d.key,
        "value": d.value,
        "reason": d.reason,
        "failed_at": d.failed_at,
    }
