"""The local writes of each open transaction, confirmed in RocksDB once it has committed.

A batch's state changes are written to RocksDB at once with their undo records
(``local_state.stage``): a ``Staged`` batch. Its changelog records are produced in the
transaction of its source partition; the send registers the batch with that transaction
(``Confirmations.sent``, under the transaction's lock, so a commit takes exactly the batches
whose records it covers). After the transaction committed, Faust's commit (``faust_patch``)
calls ``confirmed``: each batch's undo records are dropped and the offset of its last
changelog record becomes the database's applied offset (``local_state.confirm``).

Under at-least-once there is no transaction: a batch is confirmed once its sends are
acknowledged (``confirm_now``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field
from typing import Any

from rocksdict import DbClosedError

from streams.worker import local_state

#: the attribute of the Faust app that holds its Confirmations (read by ``faust_patch``)
CONFIRMATIONS_ATTRIBUTE = "crosscheck_confirmations"

#: generations of staged batches, increasing over the process's life (undo records sort by it)
_generations = itertools.count(1)


def next_generation() -> int:
    """A new batch generation."""
    return next(_generations)


@dataclass
class Staged:
    """One batch's writes to the databases of one partition, not yet confirmed."""

    gen: int
    partition: int
    #: each database written, with the changelog topic its rows go to
    dbs: list[tuple[Any, str]]
    #: the batch's changelog sends: (topic, partition, future of a record batch, records)
    sends: list[tuple[str, int, asyncio.Future[Any], int]] = field(default_factory=list)

    def last_offsets(self) -> dict[tuple[str, int], int]:
        """The offset of the last record the batch wrote to each changelog partition (its
        sends must be acknowledged)."""
        last: dict[tuple[str, int], int] = {}
        for topic, partition, future, count in self.sends:
            end = future.result().offset + count - 1
            if end > last.get((topic, partition), -1):
                last[(topic, partition)] = end
        return last


def confirm_now(batches: list[Staged], committed: bool = False) -> None:
    """Confirm batches whose changelog records are acknowledged, all at once: per database
    one WriteBatch drops their undo records and records the offset of the last changelog
    record they wrote, or, if ``committed`` (they are the whole of one transaction that has
    committed), the offset after it: the transaction's commit marker, which no consumer
    receives (Faust's recovery would otherwise wait for a record at that offset)."""
    dbs: dict[int, Any] = {}
    gens: dict[int, list[int]] = {}
    last: dict[int, int] = {}
    for staged in batches:
        offsets = staged.last_offsets()
        for db, topic in staged.dbs:
            dbs[id(db)] = db
            gens.setdefault(id(db), []).append(staged.gen)
            offset = offsets.get((topic, staged.partition))
            if offset is not None:
                last[id(db)] = max(offset, last.get(id(db), offset))
    for key, db in dbs.items():
        offset = last.get(key)
        if offset is not None and committed:
            offset += 1
        # a database closed since (its partition was given away) keeps its undo records: it
        # is rolled back and reads the changelog again when it is next opened
        with contextlib.suppress(DbClosedError):
            local_state.confirm(db, gens[key], offset)


class Confirmations:
    """The staged batches sent in each open transaction, by transactional id and producer
    (a revoked transaction's producer is dropped without a commit: its batches never are
    confirmed, and are rolled back when the database is opened again)."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[Any, list[Staged]]] = {}

    def sent(self, tid: str, transaction: Any, batches: list[Staged]) -> None:
        """Batches whose records were just sent in transaction ``tid`` (under its lock)."""
        held = self._open.get(tid)
        if held is None or held[0] is not transaction:
            held = self._open[tid] = (transaction, [])
        held[1].extend(batches)

    def take(self, tid: str, transaction: Any) -> list[Staged]:
        """The batches of ``tid``'s transaction about to commit (under its lock)."""
        held = self._open.pop(tid, None)
        if held is None or held[0] is not transaction:
            return []
        return held[1]

    def forget(self, partitions: set[int]) -> None:
        """Drop the batches of partitions given away (never confirmed here)."""
        for tid, (transaction, batches) in list(self._open.items()):
            kept = [b for b in batches if b.partition not in partitions]
            if kept:
                self._open[tid] = (transaction, kept)
            else:
                del self._open[tid]
