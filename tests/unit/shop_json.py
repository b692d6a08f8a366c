"""A shop's own JSON events (the shape examples/sources-json.toml maps), made from contract
events: what the sources tests publish and map back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.validation import format_time
from topology.topics import TopicId

SOURCES_JSON = Path(__file__).resolve().parents[2] / "examples" / "sources-json.toml"

#: contract type -> the shop's status, per input (the inverse of the example's [types])
STATUS: dict[TopicId, dict[str, str]] = {
    TopicId.ORDERS: {"PLACED": "created", "PAID": "paid", "CANCELLED": "cancelled"},
    TopicId.PAYMENTS: {"SUCCEEDED": "SUCCESS", "FAILED": "FAIL", "REFUNDED": "REFUND"},
    TopicId.INVENTORY: {"RESERVED": "TRY", "CONFIRMED": "CONFIRM", "RELEASED": "CANCEL"},
    TopicId.SHIPPING: {"CREATED": "CREATED", "DISPATCHED": "PICKED_UP", "DELIVERED": "SIGNED",
                       "CANCELLED": "CANCELLED"},
}
#: the example's topic of each input
TOPIC: dict[TopicId, str] = {TopicId.ORDERS: "shop.orders", TopicId.PAYMENTS: "shop.payments",
                             TopicId.INVENTORY: "shop.stock", TopicId.SHIPPING: "shop.logistics"}


def major(minor: int) -> str:
    """Minor units as the shop writes prices: "13.47"."""
    return f"{minor // 100}.{minor % 100:02d}"


def shop_event(topic: TopicId, r: dict[str, Any]) -> dict[str, Any]:
    """The shop's JSON event of a contract record (Avro form, times in epoch ms)."""
    status = STATUS[topic][r["type"]]
    if topic is TopicId.ORDERS:
        event: dict[str, Any] = {"eventId": r["event_id"], "orderNo": r["order_id"],
                                 "status": status, "occurredAt": format_time(r["event_time"])}
        if r.get("user_id"):
            event["buyer"] = {"id": r["user_id"]}
        if r.get("items"):
            event["lines"] = [{"skuCode": i["sku"], "qty": i["quantity"],
                               "price": major(i["unit_price"])} for i in r["items"]]
        if r.get("currency") or r.get("total_amount"):
            event["total"] = {"amount": major(r["total_amount"]), "currency": r["currency"]}
        if r.get("payment_id"):
            event["paymentNo"] = r["payment_id"]
        return event
    if topic is TopicId.PAYMENTS:
        return {"id": r["event_id"], "orderNo": r["order_id"], "state": status,
                "payment": {"no": r["payment_id"], "amount": r["amount"],
                            "currency": r["currency"], "channel": r["channel"]},
                "ts": r["event_time"]}
    if topic is TopicId.INVENTORY:
        return {"messageId": r["event_id"], "bizOrderId": r["order_id"],
                "reservation": r["reservation_id"], "sku": r["sku"], "count": r["quantity"],
                "action": status, "time": format_time(r["event_time"])}
    event = {"id": r["event_id"], "order": {"id": r["order_id"]}, "waybill": r["shipment_id"],
             "node": status, "at": format_time(r["event_time"])}
    if r.get("items"):
        event["parcel"] = [{"sku": i["sku"], "quantity": i["quantity"]} for i in r["items"]]
    return event


def shop_value(topic: TopicId, record: dict[str, Any]) -> bytes:
    """The JSON bytes of ``shop_event``."""
    return json.dumps(shop_event(topic, record), separators=(",", ":")).encode()
