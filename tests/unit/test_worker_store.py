"""The worker's TableStore due index: the same entries as an in-memory heap, across flushes."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rocksdict import Options, Rdict

from streams.engine import core
from streams.engine.overlay import HeapIndex
from streams.engine.state import OrderState, PartitionMeta, encode_meta, encode_order
from streams.names import META_KEY
from streams.worker import local_state
from streams.worker.store import TableStore


class _Data:
    """What TableStore uses of a Faust table's RocksDB store."""

    def __init__(self, root: Path, name: str) -> None:
        self.root, self.name = root, name
        self.dbs: dict[int, Rdict] = {}

    def _db_for_partition(self, partition: int) -> Rdict:
        if partition not in self.dbs:
            path = str(self.root / f"{self.name}-{partition}")
            self.dbs[partition] = Rdict(path, options=Options(raw_mode=True))
        return self.dbs[partition]


class _Changelog:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_topic_name(self) -> str:
        return self.name


class _Table:
    def __init__(self, root: Path, name: str) -> None:
        self.data = _Data(root, name)
        self.changelog_topic = _Changelog(f"{name}-changelog")


def _store(root: Path) -> TableStore:
    return TableStore(_Table(root, "orders"), _Table(root, "meta"), 0)


#: one operation: ("add", due, order), ("pop", up_to), ("flush",) or ("reopen",)
_op = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 60), st.sampled_from("abc")),
    st.tuples(st.just("pop"), st.integers(0, 70)),
    st.tuples(st.just("flush")),
    st.tuples(st.just("reopen")),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_op, max_size=60))
def test_due_index_pops_what_a_heap_pops(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store, model = _store(root), HeapIndex()
        dues: dict[str, set[int]] = {}
        for op in ops:
            if op[0] == "add":
                store.add_due(op[1], op[2])
                model.add(op[1], op[2])
                dues.setdefault(op[2], set()).add(op[1])
            elif op[0] == "pop":
                popped = store.pop_due(op[1])
                assert popped == model.pop(op[1])
                for due, order in popped:
                    dues[order].discard(due)
            elif op[0] == "flush":
                for order, times in dues.items():  # the orders list their entries
                    store.put_order(order, OrderState(order, dues=sorted(times)))
                store.flush()
            else:  # a new store over the flushed tables: the index is stored with them
                for order, times in dues.items():
                    store.put_order(order, OrderState(order, dues=sorted(times)))
                store.flush()
                tables = (store._orders_table, store._meta_table)
                store.close()
                store = TableStore(tables[0], tables[1], 0)
                store.prepare()
        assert store.pop_due(10**6) == model.pop(10**6)


def test_scan_blobs_merges_unflushed_writes_and_deletes() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        orders, meta = _Table(root, "orders"), _Table(root, "meta")
        store = TableStore(orders, meta, 0)
        for start in (120, -1, 60):
            store.put_blob(b"window/%d" % start, b"v%d" % start)
        store.put_blob(b"windows.closed_until", b"c")
        assert [k for k, _ in store.scan_blobs(b"window/")] == \
            [b"window/-1", b"window/120", b"window/60"]
        writes = store.flush().writes
        assert {w.key for w in writes} >= {b"window/-1", b"window/60", b"window/120"}
        store.put_blob(b"window/60", None)  # closed: deleted at the next flush
        store.put_blob(b"window/180", b"v180")
        assert store.scan_blobs(b"window/") == [
            (b"window/-1", b"v-1"), (b"window/120", b"v120"), (b"window/180", b"v180")]
        deleted = [w for w in store.flush().writes if w.value is None]
        assert [w.key for w in deleted] == [b"window/60"]
        store.close()
        again = TableStore(orders, meta, 0)
        assert [k for k, _ in again.scan_blobs(b"window/")] == \
            [b"window/-1", b"window/120", b"window/180"]
        assert again.get_blob(b"windows.closed_until") == b"c"


def test_only_orders_put_or_deleted_are_written_back() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = _store(root)
        for order in ("a", "b", "c"):
            store.put_order(order, OrderState(order, dues=[5]))
        assert {w.key for w in store.flush().writes} == {b"a", b"b", b"c"}
        read = store.get_order("a")  # read, not changed: held until the flush, not written
        assert read is not None and core.as_state(read).dues == [5] and store.get_order("a") is read
        assert store.get_order("nope") is None
        assert not store.dirty and store.flush().writes == []
        store.get_order("b")
        store.delete_order("b")
        store.put_order("c", OrderState("c", dues=[7]))
        writes = {w.key: w.value for w in store.flush().writes}
        assert set(writes) == {b"b", b"c"} and writes[b"b"] is None
        assert store.get_order("b") is None and store.get_order("a") is not None


def test_a_replayed_index_drops_entries_at_or_below_the_watermark() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        orders, meta = _Table(root, "orders"), _Table(root, "meta")
        # a changelog replay writes the orders with the index entries they list
        local_state.apply_changelog(orders.data._db_for_partition(0), [
            (b"a", encode_order(OrderState("a", dues=[10, 20, 30]))),
            (b"b", encode_order(OrderState("b", dues=[20])))], 7, indexed=True)
        local_state.apply_changelog(meta.data._db_for_partition(0), [
            (META_KEY, encode_meta(PartitionMeta(watermark=20)))], 3, indexed=False)
        store = TableStore(orders, meta, 0)
        store.prepare()  # the dues up to 20 were handled
        assert store.pop_due(10**6) == [(30, "a")]
