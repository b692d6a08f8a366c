"""The simulated order service: PAID after each applied payment, and the faults of its status."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest

from schemas.validation import validate_event
from streams.config import RuleConfig
from streams.simulate import SimConfig, Traffic, simulate
from streams.simulate.faults import FAULTS, parse_faults
from streams.simulate.scenario import OrderBuilder

DEFAULT = RuleConfig()
CALLBACK_TIMEOUT = DEFAULT.callback_timeout
NEW_FAULTS = ("lost_callback", "paid_after_cancel", "cancel_kept_stock", "cancel_shipped",
              "phantom_paid")


@dataclass
class History:
    """One order's events (redeliveries dropped): per topic, as (event_time, type, record)."""

    orders: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    payments: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    inventory: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    shipping: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)

    def of(self, topic: str, kind: str) -> list[tuple[int, str, dict[str, Any]]]:
        return [e for e in getattr(self, topic) if e[1] == kind]

    def first(self, topic: str, kind: str) -> int:
        return min(t for t, _, _ in self.of(topic, kind))

    def state(self, topic: str, id_field: str, at: int) -> dict[str, str]:
        """Entity id -> the type of its latest event with event_time <= at."""
        latest: dict[str, tuple[int, str]] = {}
        for t, kind, record in getattr(self, topic):
            if t <= at and (record[id_field] not in latest or latest[record[id_field]][0] <= t):
                latest[record[id_field]] = (t, kind)
        return {entity: kind for entity, (_, kind) in latest.items()}


def histories(traffic: Traffic) -> dict[str, History]:
    found: dict[str, History] = defaultdict(History)
    seen: set[str] = set()
    for topic, record in traffic.events:
        if record["event_id"] not in seen:
            seen.add(record["event_id"])
            getattr(found[record["order_id"]], topic.value).append(
                (record["event_time"], record["type"], record))
    return found


@cache
def _traffic(faults: tuple[tuple[str, float], ...], orders: int = 400, seed: int = 12,
             rules: RuleConfig = DEFAULT) -> Traffic:
    return simulate(SimConfig(orders=orders, seed=seed, faults=dict(faults), rules=rules))


def _orders_of(name: str, rate: float = 0.25) -> list[History]:
    traffic = _traffic(((name, rate),))
    found = histories(traffic)
    picked = [found[o] for o, f in traffic.faults.items() if f == name]
    assert len(picked) >= 40, name
    return picked


def test_the_new_faults_are_known_individually_and_in_all() -> None:
    assert set(NEW_FAULTS) <= set(FAULTS)
    for name in NEW_FAULTS:
        assert parse_faults(f"{name}=0.05") == {name: 0.05}
    assert parse_faults("all=0.05") == dict.fromkeys(FAULTS, 0.05)
    traffic = _traffic(tuple(dict.fromkeys(FAULTS, 0.06).items()), orders=600)
    assert set(traffic.faults.values()) == set(FAULTS)
    for topic, record in traffic.events:
        assert validate_event(topic, record) == record


def test_healthy_orders_are_marked_paid_seconds_after_their_payment() -> None:
    traffic = _traffic(())
    applied = 0
    for history in histories(traffic).values():
        succeeded = sorted(history.of("payments", "SUCCEEDED"))
        paid = history.of("orders", "PAID")
        if not succeeded:
            assert not paid
            continue
        applied += 1
        assert len(paid) == 1
        t, _, record = paid[0]
        first = succeeded[0]
        assert record["payment_id"] == first[2]["payment_id"]
        assert first[0] - 3_000 <= t <= first[0] + 6_000  # clock skews of the two services
        assert t < min([c for c, _, _ in history.of("orders", "CANCELLED")], default=2**62)
    assert applied > 300


def test_paid_events_leave_the_rest_of_the_traffic_as_it_was(
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = SimConfig(orders=300, seed=6, faults=dict.fromkeys(
        [name for name in FAULTS if name not in NEW_FAULTS], 0.05))
    with_paid = [(t, r) for t, r in simulate(config).events if r["type"] != "PAID"]
    monkeypatch.setattr(OrderBuilder, "finish", lambda self: None)
    without = simulate(config).events
    assert not any(r["type"] == "PAID" for _, r in without)
    assert with_paid == without


def test_lost_callback_orders_are_paid_but_never_marked_paid() -> None:
    for h in _orders_of("lost_callback"):
        assert h.of("payments", "SUCCEEDED") and h.of("orders", "PLACED")
        assert not h.of("orders", "PAID") and not h.of("orders", "CANCELLED")
        assert not h.of("payments", "REFUNDED")
        # the order goes on (shipped) past the decision plus allowed_lateness
        last = max(t for t, _, _ in h.shipping)
        paid = h.first("payments", "SUCCEEDED")
        assert last > paid + CALLBACK_TIMEOUT + DEFAULT.allowed_lateness


def test_paid_after_cancel_orders_are_charged_after_their_cancellation() -> None:
    for h in _orders_of("paid_after_cancel"):
        cancelled = h.first("orders", "CANCELLED")
        (succeeded, _, record), = h.of("payments", "SUCCEEDED")
        assert succeeded > cancelled and not h.of("orders", "PAID")
        decided = succeeded + DEFAULT.release_timeout
        assert h.state("payments", "payment_id", decided) == {record["payment_id"]: "SUCCEEDED"}
        # released with the cancellation (seconds), not a reservation without payment
        released = h.state("inventory", "reservation_id", cancelled + 15_000)
        assert released and set(released.values()) == {"RELEASED"}
        refunded = h.first("payments", "REFUNDED")
        assert refunded > decided + DEFAULT.allowed_lateness


def test_cancel_kept_stock_orders_keep_their_reservations_past_release_timeout() -> None:
    for h in _orders_of("cancel_kept_stock"):
        cancelled = h.first("orders", "CANCELLED")
        decided = cancelled + DEFAULT.release_timeout
        assert not h.payments or not h.of("payments", "SUCCEEDED")
        reserved = h.state("inventory", "reservation_id", decided)
        assert reserved and set(reserved.values()) == {"RESERVED"}
        released = h.first("inventory", "RELEASED")
        assert decided + DEFAULT.allowed_lateness < released
        # released before payment_timeout of the first Try: not a reservation without payment
        assert released < h.first("inventory", "RESERVED") + DEFAULT.payment_timeout


def test_cancel_shipped_orders_have_a_live_parcel_after_the_cancellation() -> None:
    dispatched = 0
    for h in _orders_of("cancel_shipped"):
        cancelled = h.first("orders", "CANCELLED")
        decided = cancelled + DEFAULT.payment_grace
        parcels = h.state("shipping", "shipment_id", decided)
        assert len(parcels) == 1 and set(parcels.values()) <= {"CREATED", "DISPATCHED"}
        dispatched += "DISPATCHED" in parcels.values()
        refunded = h.first("payments", "REFUNDED")
        assert cancelled < refunded
        assert set(h.state("inventory", "reservation_id", decided).values()) == {"RELEASED"}
        voided = h.first("shipping", "CANCELLED")
        assert voided > decided + DEFAULT.allowed_lateness
    assert dispatched > 5


def test_phantom_paid_orders_are_marked_paid_with_no_money_behind_it() -> None:
    for h in _orders_of("phantom_paid"):
        (marked, _, record), = h.of("orders", "PAID")
        failed = {r["payment_id"] for _, _, r in h.of("payments", "FAILED")}
        assert record["payment_id"] in failed
        decided = marked + DEFAULT.payment_grace
        assert "SUCCEEDED" not in h.state("payments", "payment_id", decided).values()
        later = h.first("payments", "SUCCEEDED")  # the customer pays again
        assert later > decided + DEFAULT.allowed_lateness


@pytest.mark.parametrize("name", NEW_FAULTS)
def test_new_faults_keep_other_orders_as_they_were(name: str) -> None:
    clean = histories(_traffic(()))
    faulty = _traffic(((name, 0.25),))
    healthy = set(clean) - set(faulty.faults)
    assert healthy
    found = histories(faulty)
    for order_id in healthy:
        assert found[order_id] == clean[order_id]


def test_a_short_callback_timeout_shortens_the_callback_delay() -> None:
    rules = RuleConfig(callback_timeout=4_000)
    traffic = _traffic((), orders=150, rules=rules)
    gaps = []
    for h in histories(traffic).values():
        if h.of("orders", "PAID"):
            (paid, _, _), = h.of("orders", "PAID")
            gaps.append(paid - h.first("payments", "SUCCEEDED"))
    # within a quarter of it, give or take the two services' clock skews (a twentieth each)
    assert gaps and all(-400 <= gap <= 1_000 + 400 for gap in gaps)
