"""State format 1 is upgraded on read: an engine resumed on format-1 state emits, byte for byte,
what the format-1 engine emitted (each order's outputs in the same order).

``fixtures/state_format_1.msgpack.xz`` was recorded with the format-1 engine (commit c85cd6b,
the last before state format 2): two scenarios of simulator traffic (200 orders each, every
fault at 5 %, short rule timeouts and a one-hour retention, arrival shuffled within blocks of
40 events so that many are late) on two partitions. Each holds the events, the split point,
each partition's MemoryStore after the events before the split (format-1 orders, the index
entries, the meta) and everything the format-1 engine emitted from there on (the events
after the split, then every source idle and the watermark forced to the end), with a fixed
clock of 1 ms. Among the recorded orders: pending decisions, pending rechecks, OPEN
mismatches and ledger-only (evicted) states.
"""

from __future__ import annotations

import lzma
from pathlib import Path
from typing import Any

import msgspec
import pytest

from streams.config import RuleConfig
from streams.engine import MemoryStore, PartitionEngine, decode_order
from streams.engine.partition import Output
from streams.engine.state import ORDER_FORMAT, OrderStateV1
from streams.model import Command, Event, Mismatch, Source
from streams.rulebook import RuleSetting
from topology.partitioner import partition_for

FIXTURE = Path(__file__).parent / "fixtures" / "state_format_1.msgpack.xz"
END = 2**62


class _Partition(msgspec.Struct):
    orders: dict[str, bytes]
    index: list[tuple[int, str]]
    meta: bytes | None


class _Scenario(msgspec.Struct):
    events: list[Event]
    split: int
    partitions: list[_Partition]
    outputs: list[tuple[str, msgspec.Raw]]


class _Fixture(msgspec.Struct):
    format: int
    rules: dict[str, Any]
    scenarios: list[_Scenario]


@pytest.fixture(scope="module")
def recorded() -> _Fixture:
    return msgspec.msgpack.decode(lzma.decompress(FIXTURE.read_bytes()), type=_Fixture)


#: the rules the format-1 engine did not have (they read the order's CANCELLED and PAID)
_NEWER = ("PAYMENT_NOT_APPLIED", "CANCELLED_BUT_CHARGED", "CANCELLED_BUT_RESERVED",
          "CANCELLED_BUT_SHIPPED", "PAID_WITHOUT_PAYMENT")


def _ten_rules(recorded: _Fixture) -> RuleConfig:
    """The recorded settings, with the rules the format-1 engine did not have off."""
    off = tuple(RuleSetting(t, enabled=False) for t in _NEWER)
    return RuleConfig(**recorded.rules, per_rule=off)


def _outputs(scenario: _Scenario) -> list[Output]:
    kinds: dict[str, type[Output]] = {"Mismatch": Mismatch, "Command": Command}
    return [msgspec.msgpack.decode(raw, type=kinds[kind]) for kind, raw in scenario.outputs]


def by_order(outputs: list[Output]) -> dict[str, list[Output]]:
    """Each order's outputs in their order (an engine's outputs for different orders due in
    one drain of its index may come in another interleaving: see streams/engine/partition.py)."""
    found: dict[str, list[Output]] = {}
    for output in outputs:
        found.setdefault(output.order_id, []).append(output)
    return found


def _run(engines: list[PartitionEngine], events: list[Event]) -> list[Output]:
    out: list[Output] = []
    for event in events:
        out += engines[partition_for(event.order_id, len(engines))].on_event(event)
    for engine in engines:
        for source in Source:
            out += engine.set_idle(source, True)
        out += engine.advance_to(END)
    return out


def _engines(rules: RuleConfig, stores: list[MemoryStore]) -> list[PartitionEngine]:
    # (without early decisions: the recorded arrival has events later than the allowed
    # lateness on their own input, which a rule's own watermark may have passed, while the
    # format-1 engine waited for the slowest input)
    return [PartitionEngine(rules, store, lambda: 1, False)  # type: ignore[call-arg]
            for store in stores]


def test_the_fixture_holds_format_1_state_of_every_kind(recorded: _Fixture) -> None:
    assert recorded.format == 1
    v1 = msgspec.msgpack.Decoder(OrderStateV1)
    states = [v1.decode(raw) for s in recorded.scenarios for p in s.partitions
              for raw in p.orders.values()]
    assert all(raw[0] & 0xF0 == 0x80 for s in recorded.scenarios for p in s.partitions
               for raw in p.orders.values())  # msgpack maps: format 1
    assert sum(bool(s.pending) for s in states) > 50
    assert any(p.kind == 1 for s in states for p in s.pending)  # a pending recheck
    assert any(s.expire_at is None and s.ledger for s in states)  # ledger only
    assert any(e.status == "OPEN" for s in states for e in s.ledger.values())
    assert all(s.outputs for s in recorded.scenarios)


def test_an_engine_resumed_on_format_1_state_emits_what_format_1_emitted(
        recorded: _Fixture) -> None:
    rules = _ten_rules(recorded)
    for scenario in recorded.scenarios:
        stores = [MemoryStore.restore(p.orders, p.index, p.meta) for p in scenario.partitions]
        out = _run(_engines(rules, stores), scenario.events[scenario.split:])
        assert by_order(out) == by_order(_outputs(scenario))
        assert len(out) == len(_outputs(scenario))
        # what the resumed engine wrote is format 2, and reads back the same
        written = [(store, oid) for store in stores for oid in store.order_ids()
                   if store.raw_order(oid) is not None
                   and store.raw_order(oid)[0] & 0xF0 == 0x90]  # type: ignore[index]
        assert written
        for store, oid in written:
            raw = store.raw_order(oid)
            assert raw is not None and msgspec.msgpack.decode(raw)[0] == ORDER_FORMAT
            assert decode_order(raw) == store.state(oid)


def test_format_2_from_the_start_emits_the_same(recorded: _Fixture) -> None:
    rules = _ten_rules(recorded)
    for scenario in recorded.scenarios:
        engines = _engines(rules, [MemoryStore() for _ in scenario.partitions])
        for event in scenario.events[:scenario.split]:
            engines[partition_for(event.order_id, len(engines))].on_event(event)
        out = _run(engines, scenario.events[scenario.split:])
        assert by_order(out) == by_order(_outputs(scenario))
        assert len(out) == len(_outputs(scenario))
