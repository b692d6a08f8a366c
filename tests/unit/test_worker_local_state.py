"""The local state layout: staged batches confirmed or rolled back; a replay with its index."""

from __future__ import annotations

import json
import tarfile
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rocksdict import Options, Rdict

from streams.engine.state import OrderState, encode_order
from streams.worker import local_state
from streams.worker.due_index import due_key
from streams.worker.local_state import INDEX_PREFIX, OFFSET_KEY
from streams.worker.store import TableStore

FIXTURES = Path(__file__).parent / "fixtures"


def _open(path: Path) -> Rdict:
    return Rdict(str(path), options=Options(raw_mode=True))


def _rows(db: Rdict) -> dict[bytes, bytes]:
    """Everything but undo records (rows, index entries, the offset)."""
    out: dict[bytes, bytes] = {}
    it = db.iter()
    it.seek_to_first()
    while it.valid():
        key = bytes(it.key())
        if not key.startswith(local_state.UNDO_PREFIX):
            out[key] = bytes(it.value())
        it.next()
    return out


_keys = st.sampled_from([b"a", b"b", b"c", INDEX_PREFIX + b"x"])
_values = st.one_of(st.none(), st.binary(min_size=1, max_size=3))
#: a batch: its changes, and whether its transaction commits before the crash
_batch = st.tuples(st.dictionaries(_keys, _values, max_size=4), st.booleans())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_batch, max_size=8), st.integers(0, 8))
def test_a_crash_leaves_exactly_the_committed_batches(batches: list[tuple[dict[bytes, Any],
                                                                          bool]],
                                                      crash_after: int) -> None:
    """Batches are staged in order; each commits (and is confirmed) or not; transactions
    commit in order, so once one does not, none after it does. After a crash and roll-back
    the database holds the committed batches' writes, and the last one's offset."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "db"
        db = _open(path)
        expected: dict[bytes, bytes] = {}
        committing = True
        for gen, (changes, commits) in enumerate(batches[:crash_after], start=1):
            local_state.stage(db, gen, list(changes.items()))
            committing = committing and commits
            if committing:
                local_state.confirm(db, [gen], gen * 10)
                for key, value in changes.items():
                    if value is None:
                        expected.pop(key, None)
                    else:
                        expected[key] = value
                expected[OFFSET_KEY] = str(gen * 10).encode()
        db.close()
        db = _open(path)  # the restart
        undone = local_state.roll_back(db)
        assert _rows(db) == expected
        assert local_state.roll_back(db) == 0  # nothing left to undo
        assert undone <= len(batches[:crash_after])
        db.close()


def test_replayed_changelog_moves_each_orders_index_entries_with_it() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = _open(Path(tmp) / "db")
        local_state.apply_changelog(db, [
            (b"o1", encode_order(OrderState("o1", dues=[5, 9]))),
            (b"o2", encode_order(OrderState("o2", dues=[7]))),
        ], 1, indexed=True)
        local_state.apply_changelog(db, [
            (b"o1", encode_order(OrderState("o1", dues=[9, 12]))),  # 5 handled, 12 new
            (b"o2", None),                                          # evicted
            (b"o3", encode_order(OrderState("o3", dues=[1]))),
            (b"o3", encode_order(OrderState("o3", dues=[2]))),      # the later one wins
        ], 5, indexed=True)
        index = sorted(k for k in _rows(db) if k.startswith(INDEX_PREFIX))
        assert index == sorted(INDEX_PREFIX + due_key(d, o)
                               for d, o in ((9, "o1"), (12, "o1"), (2, "o3")))
        assert db.get(OFFSET_KEY) == b"5" and db.get(b"o2") is None


def test_an_earlier_layout_gets_its_index_from_its_orders() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = _open(Path(tmp) / "db")
        db.put(b"o1", encode_order(OrderState("o1", dues=[3, 4])))
        db.put(OFFSET_KEY, b"41")
        assert local_state.index_from_rows(db) == 2
        assert db.get(INDEX_PREFIX + due_key(4, "o1")) == b""
        local_state.drop_handled(db, 3)
        assert db.get(INDEX_PREFIX + due_key(3, "o1")) is None
        assert db.get(INDEX_PREFIX + due_key(4, "o1")) == b""


def test_no_row_key_is_reserved() -> None:
    assert local_state.is_row(b"order-1") and local_state.is_row("é".encode())
    assert not local_state.is_row(OFFSET_KEY) and not local_state.is_row(INDEX_PREFIX + b"1")


def test_a_database_of_the_earlier_layout_is_upgraded_and_pops_the_same_dues(
        tmp_path: Path) -> None:
    """A recorded orders and meta database written by the earlier layout's TableStore (its
    due index a separate RocksDB, rebuilt at each start) and what that store then popped:
    opened in this layout, the index is built from the orders once and the same dues pop."""
    with tarfile.open(FIXTURES / "state_layout_2.tar.xz") as archive:
        archive.extractall(tmp_path, filter="data")
    recorded = json.loads((tmp_path / "expected.json").read_text())
    tables = tmp_path / "tables"
    dbs = {name: _open(tables / f"{name}-0.db") for name in ("orders", "meta")}
    undone, built = local_state.on_open(dbs["orders"], indexed=True)
    assert undone == 0 and built is not None and built >= recorded["index_entries"] > 0
    assert local_state.on_open(dbs["meta"], indexed=False) == (0, 0)
    assert local_state.on_open(dbs["orders"], indexed=True) == (0, None)  # upgraded once

    class _Table:
        def __init__(self, name: str) -> None:
            self.data = SimpleNamespace(_db_for_partition=lambda _p: dbs[name])
            self.changelog_topic = SimpleNamespace(get_topic_name=lambda: f"{name}-changelog")

    store = TableStore(_Table("orders"), _Table("meta"), 0)
    store.prepare()
    assert [list(p) for p in store.pop_due(10**9)] == recorded["pops"]
    for db in dbs.values():
        db.close()
