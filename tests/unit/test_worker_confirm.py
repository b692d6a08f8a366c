"""Confirming staged batches: undo records dropped, the applied offset set (past the marker)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from rocksdict import Options, Rdict

from streams.worker import local_state
from streams.worker.confirm import Confirmations, Staged, confirm_now


def _sent(offset: int) -> asyncio.Future[object]:
    future: asyncio.Future[object] = asyncio.new_event_loop().create_future()
    future.set_result(SimpleNamespace(offset=offset))
    return future


def _undo_count(db: Rdict) -> int:
    it = db.iter()
    it.seek(local_state.UNDO_PREFIX)
    count = 0
    while it.valid() and bytes(it.key()).startswith(local_state.UNDO_PREFIX):
        count += 1
        it.next()
    return count


def test_a_committed_transaction_sets_the_offset_of_its_commit_marker(tmp_path: Path) -> None:
    db = Rdict(str(tmp_path / "db"), options=Options(raw_mode=True))
    local_state.stage(db, 1, [(b"a", b"1"), (b"b", b"1")])
    local_state.stage(db, 2, [(b"a", b"2")])
    first = Staged(1, 0, [(db, "orders-changelog")], [("orders-changelog", 0, _sent(10), 2)])
    second = Staged(2, 0, [(db, "orders-changelog")], [("orders-changelog", 0, _sent(12), 1)])
    assert _undo_count(db) == 2  # one undo record per batch
    confirm_now([first, second], committed=True)
    # records 10, 11 and 12; the marker is 13, the last offset no consumer receives
    assert db.get(local_state.OFFSET_KEY) == b"13" and _undo_count(db) == 0
    local_state.stage(db, 3, [(b"c", b"3")])
    confirm_now([Staged(3, 0, [(db, "orders-changelog")],
                        [("orders-changelog", 0, _sent(20), 4)])])  # at least once: acked
    assert db.get(local_state.OFFSET_KEY) == b"23"
    local_state.stage(db, 4, [(b"d", b"4")])  # an index-only batch: no changelog record
    confirm_now([Staged(4, 0, [(db, "orders-changelog")])], committed=True)
    assert db.get(local_state.OFFSET_KEY) == b"23" and _undo_count(db) == 0
    db.close()


def test_a_revoked_transaction_is_never_confirmed() -> None:
    confirmations = Confirmations()
    old, new = object(), object()
    batch = Staged(1, 3, [])
    confirmations.sent("app-0-3", old, [batch])
    assert confirmations.take("app-0-3", new) == []  # the id's next producer: not its batches
    confirmations.sent("app-0-3", old, [batch])
    confirmations.forget({3})
    assert confirmations.take("app-0-3", old) == []
    confirmations.sent("app-0-3", new, [batch])
    assert confirmations.take("app-0-3", new) == [batch]


def test_a_database_closed_since_keeps_its_undo_record_and_the_others_are_confirmed(
        tmp_path: Path) -> None:
    closed = Rdict(str(tmp_path / "closed"), options=Options(raw_mode=True))
    kept = Rdict(str(tmp_path / "kept"), options=Options(raw_mode=True))
    local_state.stage(closed, 1, [(b"a", b"1")])
    local_state.stage(kept, 1, [(b"m", b"1")])
    closed.close()  # its partition was given away
    confirm_now([Staged(1, 0, [(closed, "orders-changelog"), (kept, "meta-changelog")],
                        [("meta-changelog", 0, _sent(4), 1)])], committed=True)
    assert kept.get(local_state.OFFSET_KEY) == b"5" and _undo_count(kept) == 0
    kept.close()
    reopened = Rdict(str(tmp_path / "closed"), options=Options(raw_mode=True))
    assert local_state.roll_back(reopened) == 1 and reopened.get(b"a") is None
    reopened.close()
