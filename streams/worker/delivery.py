"""Delivery checks of the worker's sends: no offsets are committed past a record the broker refused.

aiokafka's transactional producer (0.14) commits a transaction even when records sent in
it failed: a batch that fails (a non-retriable error such as MESSAGE_TOO_LARGE, or a batch
expired while its partition had no leader, e.g. around a broker restart) only fails its
own futures; the transaction manager never enters the abortable-error state the Java
producer enters (KAFKA-5385 fixed the same hole there), so ``commit_transaction`` goes
through with the consumed offsets and without the records. For the worker that loses
outputs, or changelog records: after the next restart the state is rebuilt without the
events of that batch while their input offsets are committed (found by the chaos test: an
order "without" its reservation after a broker restart and a SIGKILL).

So every record the worker sends in a transaction is tracked per transactional id, and
before Faust commits a transaction (offsets + commit, see ``faust_patch``) every tracked
send of it must have been acknowledged. If one failed, nothing of that transaction may
commit: the worker aborts it (best effort) and exits at once with DELIVERY_EXIT_CODE, so the
supervisor restarts it from the last committed offsets and rebuilds its state from the
changelog (a crash through Faust's stop path could commit on the way out). Under
at-least-once the batch's sends are awaited before its offsets are acknowledged, with the
same exit on a failure.

The same holds for a batch whose processing raises (a bug, or a send that raises instead of
failing its future): Faust has acknowledged its records by then, and a stop through Faust
(``app.crash``) ends with a final commit of every acknowledged offset, with the batch's
outputs partly sent or not at all. ``whole_or_exit`` runs each batch and, if it raises,
ends the process at once with FAILED_BATCH_EXIT_CODE: the open transactions abort and the
restarted worker redoes the batch (and, for a bug, stops there again: it never skips it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("crosscheck.worker")

#: A worker whose output the broker refused exits with this code (restart it).
DELIVERY_EXIT_CODE = 76

#: A worker whose processing of a batch raised exits with this code (EX_SOFTWARE).
FAILED_BATCH_EXIT_CODE = 70

#: seconds the abort of a transaction with a failed send may take before the exit
ABORT_TIMEOUT = 5.0

#: what happens to a transaction with failed sends: (transactional id or None, the first
#: error, how many sends failed, the transaction's producer or None) -> never returns
OnLost = Callable[[str | None, BaseException, int, Any], Awaitable[None]]


async def exit_for_restart(tid: str | None, error: BaseException, failed: int,
                           transaction: Any) -> None:
    """Abort the transaction (best effort), say why, and end the process."""
    what = f"transaction {tid}" if tid else "this batch"
    print(f"crosscheck: worker stops: {failed} record(s) of {what} were refused by the "
          f"broker ({type(error).__name__}: {error}); nothing of it is committed; exiting "
          f"with code {DELIVERY_EXIT_CODE} for a restart from the last committed offsets",
          file=sys.stderr, flush=True)
    if transaction is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(transaction.abort_transaction(), ABORT_TIMEOUT)
    os._exit(DELIVERY_EXIT_CODE)


#: tracked sends of one transaction at which the settled successes are first dropped
PRUNE_AT = 4096


@dataclass
class _Held:
    """The tracked sends of one transaction and the producer they were made with."""

    transaction: Any
    futures: list[asyncio.Future[Any]] = field(default_factory=list)
    prune_at: int = PRUNE_AT


class DeliveryGuard:
    """The unsettled sends of each open transaction, checked before it commits.

    Sends are tracked per transactional id *and* producer: after a rebalance Faust stops a
    revoked transaction's producer without committing (the broker aborts the transaction
    when the id's next producer starts) and a later transaction of the id has a new
    producer, so what was tracked for the old one is dropped, not held against the new.
    """

    def __init__(self, on_lost: OnLost = exit_for_restart) -> None:
        self._pending: dict[str, _Held] = {}
        self._on_lost = on_lost

    def track(self, tid: str, transaction: Any, future: asyncio.Future[Any]) -> None:
        """Remember a send made in transaction `tid` with its producer `transaction`."""
        held = self._pending.get(tid)
        if held is None or held.transaction is not transaction:
            held = self._pending[tid] = _Held(transaction)
        futures = held.futures
        if len(futures) >= held.prune_at:  # drop the settled successes: bounded memory
            futures[:] = [f for f in futures if not f.done() or f.cancelled()
                          or f.exception() is not None]
            # what is left is unsettled (a slow broker): look again only once as many more
            # sends came, so tracking stays O(1) per send on average
            held.prune_at = max(PRUNE_AT, 2 * len(futures))
        futures.append(future)

    def pending(self, tid: str) -> int:
        """How many sends of `tid` are tracked (not yet checked)."""
        held = self._pending.get(tid)
        return 0 if held is None else len(held.futures)

    async def settle(self, tid: str, transaction: Any) -> None:
        """Wait until every tracked send of `tid` made with `transaction` is acknowledged;
        if one failed, hand the transaction to ``on_lost`` (by default: abort and exit)
        instead of returning."""
        held = self._pending.pop(tid, None)
        if held is None or held.transaction is not transaction:
            return
        results = await asyncio.gather(*held.futures, return_exceptions=True)
        await check(results, tid, transaction, self._on_lost)


async def check(results: list[Any], tid: str | None, transaction: Any,
                on_lost: OnLost = exit_for_restart) -> None:
    """Hand the first failure among send results (values or exceptions) to ``on_lost``."""
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        await on_lost(tid, failed[0], len(failed), transaction)
        raise RuntimeError(f"sends of {tid or 'a batch'} failed")  # on_lost must not return


def exit_failed_batch(exc: BaseException) -> None:
    """Say why the batch failed (with the traceback) and end the process at once."""
    log.critical("crosscheck worker stops: %s: %s", type(exc).__name__, exc, exc_info=exc)
    traceback.print_exception(exc, file=sys.stderr)
    print(f"crosscheck: worker failed: {type(exc).__name__}: {exc}; nothing of the batch is "
          f"committed; exiting with code {FAILED_BATCH_EXIT_CODE} for a restart from the last "
          "committed offsets", file=sys.stderr, flush=True)
    os._exit(FAILED_BATCH_EXIT_CODE)


async def whole_or_exit(batch: Awaitable[None],
                        on_error: Callable[[BaseException], None] = exit_failed_batch) -> None:
    """Run one batch's work; if it raises, ``on_error`` ends the process before any commit."""
    try:
        await batch
    except Exception as exc:
        on_error(exc)
        raise
