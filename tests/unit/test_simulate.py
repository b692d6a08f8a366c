"""The traffic generator: determinism, healthy traffic, faults, validity, lateness, ids."""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from functools import cache

import pytest

from schemas.validation import validate_event
from streams.config import RuleConfig
from streams.errors import ConfigError
from streams.model import Mismatch, Status
from streams.rules.catalog import RULE_OF
from streams.simulate import FAULTS, SimConfig, Traffic, expected_outputs, generate, simulate
from streams.simulate.faults import parse_faults, pick_fault
from streams.simulate.generator import Output, fault_orders
from topology.partitioner import partition_for
from topology.topics import TopicId

DEFAULT = RuleConfig()
#: Much tighter thresholds than the defaults: healthy traffic must still trip nothing.
TIGHT = RuleConfig(allowed_lateness=10_000, payment_timeout=300_000, reservation_timeout=60_000,
                   shipment_timeout=2 * 3_600_000, payment_grace=30_000,
                   release_timeout=120_000, tcc_grace=10_000)
ALL_FAULTS = dict.fromkeys(FAULTS, 0.06)
#: the mismatch types the rule catalog judges (a fault's own type is looked for only then)
JUDGED = {t.value for t in RULE_OF}
#: what an order of a fault may open besides its fault's type: the situations overlap
ALSO: dict[str, set[str]] = {
    "hanging_try": {"TCC_EMPTY_ROLLBACK"},  # a hanging Try always follows an empty rollback
    "never_paid": {"CANCELLED_BUT_RESERVED"},  # auto-cancelled, the stock kept
    "refund_no_release": {"CANCELLED_BUT_RESERVED"},  # cancelled, released only by a sweep
    "paid_after_cancel": {"PAYMENT_WITHOUT_RESERVATION"},  # the stock went with the cancel
}


@cache
def _run(orders: int, seed: int, faults: tuple[tuple[str, float], ...] = (),
         rules: RuleConfig = DEFAULT) -> tuple[Traffic, list[Output]]:
    traffic = simulate(SimConfig(orders=orders, seed=seed, faults=dict(faults), rules=rules))
    return traffic, expected_outputs(traffic.events, rules, 4)


def _opened_types(outputs: list[Output]) -> dict[str, set[str]]:
    types: dict[str, set[str]] = defaultdict(set)
    for o in outputs:
        if isinstance(o, Mismatch) and o.status is Status.OPEN:
            types[o.order_id].add(o.type.value)
    return types


# -- determinism ---------------------------------------------------------------------------


def test_same_seed_same_events() -> None:
    config = SimConfig(orders=300, seed=11, faults=ALL_FAULTS)
    assert generate(config) == generate(config)


def test_different_seeds_differ() -> None:
    a = generate(SimConfig(orders=100, seed=1))
    b = generate(SimConfig(orders=100, seed=2))
    assert a != b
    assert {r["order_id"] for _, r in a}.isdisjoint({r["order_id"] for _, r in b})


def test_faults_do_not_change_the_healthy_orders() -> None:
    clean = generate(SimConfig(orders=200, seed=5))
    faulty = simulate(SimConfig(orders=200, seed=5, faults={"never_paid": 0.2}))
    healthy_ids = {r["order_id"] for _, r in clean} - set(faulty.faults)
    assert faulty.faults and healthy_ids
    pick = [r["event_id"] for _, r in clean if r["order_id"] in healthy_ids]
    assert pick == [r["event_id"] for _, r in faulty.events if r["order_id"] in healthy_ids]


def test_generation_is_pure(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_clock() -> float:
        raise AssertionError("the generator read the wall clock")

    expected = generate(SimConfig(orders=50, seed=3, faults=ALL_FAULTS))
    monkeypatch.setattr(time, "time", no_clock)
    monkeypatch.setattr(time, "time_ns", no_clock)
    traffic = simulate(SimConfig(orders=50, seed=3, faults=ALL_FAULTS))
    assert traffic.events == expected
    assert expected_outputs(traffic.events, DEFAULT, 4)  # clock 0, never the wall clock


# -- healthy traffic trips nothing ------------------------------------------------------------


@pytest.mark.parametrize(("seed", "rules"), [(1, DEFAULT), (2, DEFAULT), (4, TIGHT)])
def test_healthy_traffic_has_no_mismatches(seed: int, rules: RuleConfig) -> None:
    traffic, outputs = _run(1500, seed, rules=rules)
    assert not traffic.faults
    assert outputs == []


@pytest.mark.parametrize("partitions", [1, 3, 12])
def test_healthy_traffic_is_clean_for_any_partition_count(partitions: int) -> None:
    traffic, _ = _run(800, 9)
    assert expected_outputs(traffic.events, DEFAULT, partitions) == []


def test_healthy_traffic_covers_the_variants() -> None:
    traffic, _ = _run(1500, 1)
    kinds = Counter((t.value, r["type"]) for t, r in traffic.events)
    for kind in [("orders", "CANCELLED"), ("orders", "PAID"), ("payments", "FAILED"),
                 ("payments", "REFUNDED"), ("inventory", "RELEASED"), ("shipping", "CANCELLED"),
                 ("shipping", "DELIVERED")]:
        assert kinds[kind] > 10, kind
    parcels: Counter[str] = Counter(r["order_id"] for t, r in traffic.events
                                    if t is TopicId.SHIPPING and r["type"] == "CREATED")
    assert max(parcels.values()) >= 3
    assert traffic.redeliveries > 0
    currencies = {r["currency"] for t, r in traffic.events if t is TopicId.ORDERS}
    assert currencies == {"CNY", "USD", "EUR"}


def test_traffic_outlasts_the_shipment_timeout() -> None:
    traffic, _ = _run(300, 6)
    times = [r["event_time"] for _, r in traffic.events]
    assert max(times) - min(times) > DEFAULT.shipment_timeout + DEFAULT.allowed_lateness


# -- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize("rules", [DEFAULT, TIGHT], ids=["default", "tight"])
def test_every_fault_yields_its_mismatch_and_healthy_orders_none(rules: RuleConfig) -> None:
    traffic, outputs = _run(1000, 21, tuple(ALL_FAULTS.items()), rules)
    types = _opened_types(outputs)
    assert set(fault_orders(traffic)) == set(FAULTS)
    for order_id in traffic.order_ids:
        name = traffic.faults.get(order_id)
        if name is None:
            assert order_id not in types
            continue
        got = types.get(order_id, set())
        own = FAULTS[name].type.value
        assert own in got or own not in JUDGED, (order_id, name, got)
        assert got - {own} <= ALSO.get(name, set()), (order_id, name, got)


def test_every_fault_alone_yields_exactly_its_type() -> None:
    for name, fault in FAULTS.items():
        traffic, outputs = _run(150, 8, ((name, 0.2),))
        assert traffic.faults
        opened = {o.type.value for o in outputs if isinstance(o, Mismatch)}
        own = fault.type.value
        assert own in opened or own not in JUDGED, name
        assert opened <= {own} | ALSO.get(name, set()), (name, opened)


def _within_binomial(count: int, n: int, p: float) -> bool:
    mean, sigma = n * p, math.sqrt(n * p * (1 - p))
    return abs(count - mean) <= 4 * sigma


@pytest.mark.parametrize("seed", [1, 2])
def test_fault_rates_are_honoured(seed: int) -> None:
    n, rate = 2000, 0.05
    traffic, outputs = _run(n, seed, tuple(dict.fromkeys(FAULTS, rate).items()))
    types = _opened_types(outputs)
    for name, fault in FAULTS.items():
        injected = {o for o, f in traffic.faults.items() if f == name}
        assert _within_binomial(len(injected), n, rate), (name, len(injected))
        want = fault.type.value
        if want in JUDGED:  # and each injected order opens its type
            assert {o for o in injected if want in types.get(o, ())} == injected, name


def test_a_single_fault_rate_is_honoured() -> None:
    n, rate = 2000, 0.05
    _, outputs = _run(n, 4, (("never_paid", rate),))
    orders = {o.order_id for o in outputs if isinstance(o, Mismatch)}
    assert _within_binomial(len(orders), n, rate)
    opened = {o.type.value for o in outputs if isinstance(o, Mismatch)}
    assert "RESERVATION_WITHOUT_PAYMENT" in opened
    assert opened <= {"RESERVATION_WITHOUT_PAYMENT"} | ALSO["never_paid"]


def test_parse_faults() -> None:
    assert parse_faults("never_paid=0.01, double_charge=0.2%") == {
        "never_paid": 0.01, "double_charge": 0.002}
    assert parse_faults("all=0.01,overship=0") == {**dict.fromkeys(FAULTS, 0.01), "overship": 0}
    assert parse_faults("") == {}
    for bad in ("never_paid", "nope=0.1", "overship=2", "overship=x", "all=0.2"):
        with pytest.raises(ConfigError):
            parse_faults(bad)


def test_pick_fault_walks_the_catalog() -> None:
    rates = {"never_paid": 0.1, "overship": 0.2}
    assert pick_fault(0.05, rates) is FAULTS["never_paid"]
    assert pick_fault(0.15, rates) is FAULTS["overship"]
    assert pick_fault(0.31, rates) is None
    with pytest.raises(ConfigError):
        simulate(SimConfig(orders=1, faults={"nope": 0.1}))


# -- the events themselves -------------------------------------------------------------------


def test_events_validate() -> None:
    traffic, _ = _run(1000, 21, tuple(ALL_FAULTS.items()))
    for topic, record in traffic.events:
        assert validate_event(topic, record) == record


@pytest.mark.parametrize("rules", [DEFAULT, TIGHT], ids=["default", "tight"])
@pytest.mark.parametrize("partitions", [1, 4])
def test_nothing_is_late(rules: RuleConfig, partitions: int) -> None:
    traffic, _ = _run(1000, 21, tuple(ALL_FAULTS.items()), rules)
    latest: dict[tuple[TopicId, int], int] = {}
    for topic, record in traffic.events:
        key = (topic, partition_for(record["order_id"], partitions))
        t = record["event_time"]
        if key in latest:
            assert t > latest[key] - rules.allowed_lateness, (topic, record)
        latest[key] = max(latest.get(key, t), t)


def test_topics_keep_event_time_order_per_order_and_interleave() -> None:
    traffic, _ = _run(1000, 21, tuple(ALL_FAULTS.items()))
    seen: set[str] = set()
    last: dict[tuple[TopicId, str], int] = {}
    out_of_order_across_topics = 0
    previous = 0
    for topic, record in traffic.events:
        if record["event_id"] in seen:  # a redelivery
            continue
        seen.add(record["event_id"])
        key = (topic, record["order_id"])
        assert record["event_time"] >= last.get(key, 0), record
        last[key] = record["event_time"]
        out_of_order_across_topics += record["event_time"] < previous
        previous = record["event_time"]
    assert out_of_order_across_topics > 0


def test_ids_are_unique_and_redeliveries_identical() -> None:
    traffic, _ = _run(1000, 21, tuple(ALL_FAULTS.items()))
    by_event: dict[str, dict[str, object]] = {}
    owner: dict[tuple[str, str], str] = {}
    redelivered = 0
    for _, record in traffic.events:
        first = by_event.setdefault(record["event_id"], record)
        if first is not record:
            assert first == record
            redelivered += 1
        for field in ("payment_id", "reservation_id", "shipment_id"):
            if record.get(field):  # an order event's payment_id may be empty
                key = (field, record[field])
                assert owner.setdefault(key, record["order_id"]) == record["order_id"]
    assert redelivered == traffic.redeliveries > 0
    payments = [r for t, r in traffic.events if t is TopicId.PAYMENTS]
    assert len({r["payment_id"] for r in payments if r["type"] == "FAILED"}) == len(
        {r["event_id"] for r in payments if r["type"] == "FAILED"})


def test_start_and_orders_are_respected() -> None:
    config = SimConfig(orders=40, seed=2, start=1_800_000_000_000, span=3_600_000)
    traffic = simulate(config)
    assert len(traffic.order_ids) == 40
    placed = [r["event_time"] for t, r in traffic.events
              if t is TopicId.ORDERS and r["type"] == "PLACED"]
    assert len(placed) == 40
    assert all(config.start - 2_000 <= t < config.start + config.span + 2_000 for t in placed)
