"""The replay's RocksDB store: atomic commits, reopening, and an engine resumed from it."""

from __future__ import annotations

import random
from pathlib import Path

from builders import RULES, canonical, inv, pay, placed, ship

from streams.engine import MemoryStore, PartitionEngine, core
from streams.engine.state import OrderState, PartitionMeta
from streams.model import Command, Event, Mismatch
from streams.replay import checkpoint as ckpt
from streams.replay.checkpoint import Checkpoint, Counts, Position
from streams.replay.store import ReplayStore

Output = Mismatch | Command


def test_commit_is_what_a_reopened_store_sees(tmp_path: Path) -> None:
    store = ReplayStore(tmp_path / "db")
    p0, p1 = store.partition(0), store.partition(1)
    p0.put_order("a", OrderState("a", dues=[50, 70]))
    p0.put_order("b", OrderState("b", dues=[60]))
    p1.put_order("a", OrderState("a", dues=[10]))  # same order id, other partition
    p0.put_meta(PartitionMeta(max_time={"payments": 5}, watermark=3))
    for due, order in ((50, "a"), (70, "a"), (60, "b")):
        p0.add_due(due, order)
    assert store.held_orders == 3
    store.commit(b"ck-1")
    assert store.held_orders == 0
    p0.delete_order("b")
    p0.put_order("c", OrderState("c"))  # not committed: lost
    store.close()

    again = ReplayStore(tmp_path / "db")
    assert again.checkpoint() == b"ck-1"
    q0 = again.partition(0)
    assert q0.get_order("b") is not None and q0.get_order("c") is None
    assert q0.get_meta() == PartitionMeta(max_time={"payments": 5}, watermark=3)
    assert q0.pop_due(65) == [(50, "a"), (60, "b")]  # the index is rebuilt from the orders
    assert q0.pop_due(100) == [(70, "a")]
    assert core.as_state(again.partition(1).get_order("a")) == OrderState("a", dues=[10])
    assert again.partition(1).pop_due(100) == [(10, "a")]
    q0.delete_order("a")
    again.commit(b"ck-2")
    again.close()
    third = ReplayStore(tmp_path / "db")
    assert third.partition(0).get_order("a") is None
    assert third.checkpoint() == b"ck-2"
    third.close()


def test_a_commit_without_state_writes_the_checkpoint_record_alone(tmp_path: Path) -> None:
    """The last checkpoint of a finished replay: the record is committed, the orders held
    since the checkpoint before are not."""
    store = ReplayStore(tmp_path / "db")
    store.partition(0).put_order("a", OrderState("a", dues=[50]))
    store.commit(b"ck-1")
    store.partition(0).put_order("b", OrderState("b"))
    store.partition(0).delete_order("a")
    store.commit(b"ck-done", state=False)
    store.close()
    again = ReplayStore(tmp_path / "db")
    assert again.checkpoint() == b"ck-done"
    assert again.partition(0).get_order("a") is not None
    assert again.partition(0).get_order("b") is None
    again.close()


def _events(rng: random.Random, orders: int) -> list[Event]:
    events: list[Event] = []
    for i in range(orders):
        o, t = f"o{i}", 1_000_000 + 3_000 * i
        events.append(placed(t, order=o))
        events.append(inv("RESERVED", t + rng.randrange(1, 50), f"r{i}", order=o))
        if rng.random() < 0.6:
            events.append(pay("SUCCEEDED", t + rng.randrange(50, 20_000), f"p{i}", order=o))
        if rng.random() < 0.3:
            events.append(ship("CREATED", t + rng.randrange(100, 9_000), f"s{i}", order=o))
        if rng.random() < 0.2:
            events.append(pay("SUCCEEDED", t + rng.randrange(0, 900), f"q{i}", order=o))
    return sorted(events, key=lambda e: e.event_time)


def test_an_engine_resumed_from_the_store_decides_as_an_uninterrupted_one(
        tmp_path: Path) -> None:
    events = _events(random.Random(5), 80)
    reference = PartitionEngine(RULES, MemoryStore(), lambda: 0)
    expected = [o for e in events for o in reference.on_event(e)]
    expected += reference.advance_to(events[-1].event_time + 100_000)

    got: list[Output] = []
    cut = sorted(random.Random(9).sample(range(len(events)), 4))
    at = 0
    for n, stop in enumerate([*cut, len(events)]):
        store = ReplayStore(tmp_path / "db")
        engine = PartitionEngine(RULES, store.partition(0), lambda: 0)
        for e in events[at:stop]:
            got.extend(engine.on_event(e))
        if stop == len(events):
            got.extend(engine.advance_to(events[-1].event_time + 100_000))
        store.commit(f"ck-{n}".encode())
        store.close()
        at = stop
    assert got
    assert canonical(got) == canonical(expected)


def test_checkpoint_records_round_trip() -> None:
    m = Mismatch("m", "RESERVATION_WITHOUT_PAYMENT", "OPEN", "o", "r", "HIGH",  # type: ignore[arg-type]
                 5, 6, ("e",), "c", {"k": "v"})
    c = Command("c", "RELEASE_STOCK", "o", "r", "m", 6, sku="A", quantity=2)  # type: ignore[arg-type]
    ck = Checkpoint({"from": "1"}, run_id="x", seq=3,
                    positions=[Position("payments", 0, 12)], pending=ckpt.pack_outputs([m, c]),
                    file_sizes={"mismatches.jsonl": 10}, counts=Counts(records=5), done=True)
    back = ckpt.decode(ckpt.encode(ck))
    assert back == ck
    assert ckpt.unpack_outputs(back.pending) == [m, c]
    assert back.tag == "crosscheck-replay:x:3"


def test_run_parameters_that_matter() -> None:
    from dataclasses import replace

    from streams.replay import ReplayWindow

    window = ReplayWindow(10, 20, 5, 1)
    base = ckpt.run_params(window, RULES, ["payments"], 4, "dir:/x", False)
    assert ckpt.differences(base, base) == []
    assert ckpt.run_params(window, replace(RULES, idle_timeout=1), ["payments"], 4, "dir:/x",
                           False) == base
    changed = ckpt.run_params(replace(window, end=30), replace(RULES, payment_timeout=1),
                              ["payments"], 4, "dir:/x", True)
    assert {d.split(":")[0] for d in ckpt.differences(base, changed)} == \
        {"emit_commands", "rules.payment_timeout", "to"}
