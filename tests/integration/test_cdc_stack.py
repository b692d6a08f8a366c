"""Real PostgreSQL, Connect and Debezium: simulated rows reach Kafka as change events by order."""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import pairwise

import pytest

from schemas.validation import parse_event_time
from streams.cdc.stack import CdcStack
from streams.clients import admin
from streams.simulate import SimConfig, parse_faults, simulate
from streams.simulate.shopdb import STATUS, TABLES, Record, db_order, write_events
from tests.integration.cdc_support import Change, read_changes
from topology.partitioner import partition_for

pytestmark = pytest.mark.integration


def _traffic(seed: int, orders: int) -> list[Record]:
    """Simulated flows with every fault, as a database sees them."""
    config = SimConfig(orders=orders, seed=seed, faults=parse_faults("all=0.06"))
    return db_order(simulate(config).events)


def _of(changes: list[Change], rows: list[Record]) -> list[Change]:
    orders = {r["order_id"] for _, r in rows}
    return [c for c in changes if c.key in orders]


def test_rows_reach_their_order_partition_as_change_events(cdc_stack: CdcStack) -> None:
    rows = _traffic(seed=21, orders=40)
    written = write_events(cdc_stack.database, rows)
    assert written.total == len(rows)
    changes = read_changes(cdc_stack, lambda got: len(_of(got, rows)) >= len(rows))
    mine = _of(changes, rows)
    assert len(mine) == len(rows)  # one change event per statement, none twice

    meta = admin(cdc_stack.settings).list_topics(timeout=10)
    for topic in cdc_stack.plan.topics.values():  # created by the connector with the inputs' count
        assert len(meta.topics[topic].partitions) == cdc_stack.settings.partitions
    for change in mine:  # keyed by order_id as plain text, on murmur2(order_id)'s partition
        assert change.key == change.row["order_id"]
        assert change.partition == partition_for(change.key, cdc_stack.settings.partitions)
        assert change.value["op"] in ("c", "u")
    # each entity's changes in the order written: insert, then its statuses, at event times
    by_entity: dict[tuple[str, str], list[Change]] = defaultdict(list)
    for change in mine:
        table, pk, _ = change.ident
        by_entity[(table, pk)].append(change)
    expected: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for topic, record in rows:
        table = TABLES[topic]
        expected[(table.name, record[table.key])].append(
            (STATUS[topic][record["type"]], record["event_time"]))
    assert by_entity.keys() == expected.keys()
    for entity, seen in by_entity.items():
        assert [c.value["op"] for c in seen] == ["c"] + ["u"] * (len(seen) - 1)
        assert [(c.row["status"], parse_event_time(c.row["updated_at"])) for c in seen] == \
            expected[entity]
        for before, after in pairwise(seen):  # REPLICA IDENTITY FULL
            assert after.value["before"] == before.row
    lsns: dict[tuple[str, int], list[int]] = defaultdict(list)
    for change in mine:
        lsns[(change.topic, change.partition)].append(change.ident[2])
    assert all(seq == sorted(seq) and len(set(seq)) == len(seq) for seq in lsns.values())
    assert Counter(c.value["source"]["table"] for c in mine) == written.statements


def test_a_connect_crash_redelivers_changes_with_the_same_lsn(cdc_stack: CdcStack) -> None:
    first, during, after = _traffic(31, 4), _traffic(32, 8), _traffic(33, 4)
    write_events(cdc_stack.database, first)
    read_changes(cdc_stack, lambda got: len(_of(got, first)) >= len(first))
    cdc_stack.connect.stop()  # a clean stop commits Connect's offsets
    cdc_stack.start()
    write_events(cdc_stack.database, during)
    read_changes(cdc_stack, lambda got: len(_of(got, during)) >= len(during))
    assert cdc_stack.connect.stop(kill=True)  # a crash: nothing committed since the start
    cdc_stack.start()
    write_events(cdc_stack.database, after)
    changes = read_changes(cdc_stack, lambda got: len(_of(got, after)) >= len(after))

    redelivered = _of(changes, during)
    counts = Counter(c.ident for c in redelivered)
    assert len(counts) == len(during)  # every change of the crashed run ...
    assert set(counts.values()) == {2}  # ... came again, with its table, key and LSN
    copies: dict[tuple[str, str, int], list[Change]] = defaultdict(list)
    for change in redelivered:
        copies[change.ident].append(change)
    for one, two in copies.values():  # the same change: row, old row, commit time
        assert (one.key, one.partition, one.value["before"], one.row, one.value["op"]) == \
            (two.key, two.partition, two.value["before"], two.row, two.value["op"])
        assert one.value["source"]["ts_ms"] == two.value["source"]["ts_ms"]
    assert Counter(Counter(c.ident for c in _of(changes, after)).values()) == {1: len(after)}
    assert all(n == 1 for n in Counter(c.ident for c in _of(changes, first)).values())


def test_status_reports_the_running_stack(cdc_stack: CdcStack) -> None:
    st = cdc_stack.status()
    assert st.postgres is not None and st.postgres.running and st.postgres.answering
    assert st.connect.running and st.connect.connector is not None
    assert st.connect.connector.running
    assert st.slot is not None and st.slot.exists and st.slot.active

