"""Entity state as of a time: latest event, tie-breaks, quantities; ids; ISO times."""

from __future__ import annotations

import hashlib

from builders import T0, inv, pay, placed, ship

from streams.model import Source
from streams.rules.catalog import iso
from streams.rules.entities import OrderView, dedup
from streams.rules.ids import command_id, mismatch_id


def test_state_is_the_latest_event_up_to_t() -> None:
    view = OrderView("o1", [pay("SUCCEEDED", T0), pay("REFUNDED", T0 + 10)])
    assert view.state(Source.PAYMENTS, "p1", T0 - 1) is None
    assert view.state(Source.PAYMENTS, "p1", T0) == "SUCCEEDED"
    assert view.state(Source.PAYMENTS, "p1", T0 + 9) == "SUCCEEDED"
    assert view.state(Source.PAYMENTS, "p1", T0 + 10) == "REFUNDED"
    assert view.active_payments(T0 + 5) == ["p1"] and view.active_payments(T0 + 10) == []


def test_ties_at_the_same_time_go_to_the_later_lifecycle_step() -> None:
    # listed in the "wrong" order and with event_ids that would say otherwise
    cases = [
        (
            Source.INVENTORY,
            [
                inv("RELEASED", T0, eid="a"),
                inv("CONFIRMED", T0, eid="b"),
                inv("RESERVED", T0, eid="c"),
            ],
            "RELEASED",
        ),
        (
            Source.PAYMENTS,
            [pay("REFUNDED", T0, eid="a"), pay("SUCCEEDED", T0, eid="b")],
            "REFUNDED",
        ),
        (Source.PAYMENTS, [pay("FAILED", T0, eid="a"), pay("SUCCEEDED", T0, eid="b")], "FAILED"),
        (
            Source.SHIPPING,
            [
                ship("CANCELLED", T0, eid="a"),
                ship("DELIVERED", T0, eid="b"),
                ship("CREATED", T0, eid="c"),
            ],
            "CANCELLED",
        ),
        (
            Source.SHIPPING,
            [ship("DELIVERED", T0, eid="a"), ship("DISPATCHED", T0, eid="b")],
            "DELIVERED",
        ),
        (Source.ORDERS, [placed(T0, kind="CANCELLED", eid="a"), placed(T0, eid="b")], "CANCELLED"),
    ]
    for source, events, expected in cases:
        entity = events[0].entity_id
        assert OrderView("o1", events).state(source, entity, T0) == expected
        assert OrderView("o1", events[::-1]).state(source, entity, T0) == expected


def test_same_type_same_time_tie_broken_by_event_id() -> None:
    a = inv("RESERVED", T0, sku="A", eid="e1")
    b = inv("RESERVED", T0, sku="B", eid="e2")
    assert OrderView("o1", [b, a]).reservation_line("r1", T0) == ("B", 1)


def test_reservation_line_is_from_its_latest_event() -> None:
    events = [
        inv("RESERVED", T0, sku="A", quantity=1),
        inv("CONFIRMED", T0 + 1, sku="A", quantity=4),
    ]
    view = OrderView("o1", events)
    assert view.reservation_line("r1", T0) == ("A", 1)
    assert view.reservation_line("r1", T0 + 1) == ("A", 4)
    assert view.reserved_by_sku(T0 + 1) == {"A": 4}


def test_shipment_items_come_from_its_latest_created() -> None:
    events = [
        ship("CREATED", T0, items=[("A", 1)]),
        ship("DISPATCHED", T0 + 1),
        ship("CREATED", T0 + 2, "s2", items=[("A", 2), ("B", 1)]),
    ]
    view = OrderView("o1", events)
    assert view.shipment_items("s1", T0 + 5) == {"A": 1}
    assert view.shipped_by_sku(T0 + 5) == {"A": 3, "B": 1}
    assert view.live_shipments(T0 + 1) == ["s1"] and view.shipped(T0 + 1) == ["s1"]


def test_entity_kinds_are_separate_namespaces() -> None:
    view = OrderView("o1", [pay("SUCCEEDED", T0, "x"), inv("RELEASED", T0, "x")])
    assert view.active_payments(T0) == ["x"] and view.active_reservations(T0) == []


def test_dedup_keeps_the_first_occurrence() -> None:
    a = pay("SUCCEEDED", T0, eid="same")
    b = pay("REFUNDED", T0 + 1, eid="same")
    assert dedup([a, b, a]) == [a]
    assert OrderView("o1", [a, b]).state(Source.PAYMENTS, "p1", T0 + 1) == "SUCCEEDED"


def test_placed_is_the_first_by_time_then_event_id() -> None:
    view = OrderView("o1", [placed(T0 + 5, eid="a"), placed(T0, eid="z"), placed(T0, eid="y")])
    first = view.placed(T0 + 10)
    assert first is not None and first.event_id == "y"
    assert view.placed(T0 - 1) is None


def test_first_event_at_a_time_is_the_smallest_event_id() -> None:
    view = OrderView("o1", [pay("SUCCEEDED", T0, eid="b"), inv("RESERVED", T0, eid="a")])
    first = view.first_event_at(T0)
    assert first is not None and first.event_id == "a"
    assert view.event_times() == [T0]


def test_ids_are_the_documented_hashes() -> None:
    expected = hashlib.sha256(b"DUPLICATE_PAYMENT|o1|p2").hexdigest()[:32]
    assert mismatch_id("DUPLICATE_PAYMENT", "o1", "p2") == expected
    assert (
        command_id("REFUND_PAYMENT", "p2") == hashlib.sha256(b"REFUND_PAYMENT|p2").hexdigest()[:32]
    )
    assert len(expected) == 32
    assert mismatch_id("DUPLICATE_PAYMENT", "o1", "p3") != expected


def test_iso_times() -> None:
    assert iso(0) == "1970-01-01T00:00:00.000Z"
    assert iso(1_795_255_200_123) == "2026-11-21T10:00:00.123Z"
