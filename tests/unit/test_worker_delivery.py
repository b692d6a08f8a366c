"""The delivery guard and the patched commit: no transaction commits over a failed send."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.worker import faust_patch
from streams.worker.delivery import DeliveryGuard, check


class Lost:
    """An on_lost that records the call instead of ending the process."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, str, int, Any]] = []

    async def __call__(self, tid: str | None, error: BaseException, failed: int,
                       transaction: Any) -> None:
        self.calls.append((tid, type(error).__name__, failed, transaction))


def settled(value: Any = None, error: BaseException | None = None) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
    return future


def test_all_sends_acknowledged_lets_the_commit_go_on() -> None:
    async def run() -> tuple[int, list[Any]]:
        lost = Lost()
        guard = DeliveryGuard(lost)
        producer = object()
        for i in range(3):
            guard.track("t-0", producer, settled(i))
        before = guard.pending("t-0")
        await guard.settle("t-0", producer)
        return before, lost.calls
    before, calls = asyncio.run(run())
    assert before == 3 and calls == []


def test_one_failed_send_stops_the_commit_and_names_the_transaction() -> None:
    async def run() -> tuple[Lost, DeliveryGuard]:
        lost = Lost()
        guard = DeliveryGuard(lost)
        producer = object()
        guard.track("t-1", producer, settled(1))
        guard.track("t-1", producer, settled(error=TimeoutError("batch expired")))
        guard.track("t-1", producer, settled(error=ValueError("too large")))
        with pytest.raises(RuntimeError, match="t-1"):
            await guard.settle("t-1", producer)
        return lost, guard
    lost, guard = asyncio.run(run())
    assert [(tid, name, n) for tid, name, n, _ in lost.calls] == [("t-1", "TimeoutError", 2)]
    assert guard.pending("t-1") == 0


def test_settle_waits_for_sends_still_in_flight() -> None:
    async def run() -> list[Any]:
        lost = Lost()
        guard = DeliveryGuard(lost)
        producer = object()
        late: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        guard.track("t-2", producer, late)
        asyncio.get_running_loop().call_later(0.05, late.set_exception, OSError("refused"))
        with pytest.raises(RuntimeError):
            await guard.settle("t-2", producer)
        return lost.calls
    assert [c[1] for c in asyncio.run(run())] == ["OSError"]


def test_sends_of_a_stopped_producer_are_not_held_against_the_next() -> None:
    async def run() -> list[Any]:
        lost = Lost()
        guard = DeliveryGuard(lost)
        old, new = object(), object()
        guard.track("t-3", old, settled(error=ConnectionError("producer stopped")))
        guard.track("t-3", new, settled(1))
        await guard.settle("t-3", new)
        guard.track("t-3", old, settled(error=ConnectionError("late")))
        await guard.settle("t-3", new)  # tracked with another producer: nothing to check
        return lost.calls
    assert asyncio.run(run()) == []


def test_tracking_stays_bounded_by_dropping_settled_successes() -> None:
    async def run() -> tuple[int, list[Any]]:
        lost = Lost()
        guard = DeliveryGuard(lost)
        producer = object()
        guard.track("t-4", producer, settled(error=KeyError("kept")))
        for i in range(10_000):
            guard.track("t-4", producer, settled(i))
        size = guard.pending("t-4")
        with pytest.raises(RuntimeError):
            await guard.settle("t-4", producer)
        return size, lost.calls
    size, calls = asyncio.run(run())
    assert size < 4200 and [c[1] for c in calls] == ["KeyError"]


def test_check_of_plain_results() -> None:
    async def run() -> list[Any]:
        lost = Lost()
        await check([1, 2], None, None, lost)
        with pytest.raises(RuntimeError, match="a batch"):
            await check([1, OSError("x")], None, None, lost)
        return lost.calls
    assert [(c[0], c[1], c[2]) for c in asyncio.run(run())] == [(None, "OSError", 1)]


class FakeTransaction:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def send_offsets_to_transaction(self, offsets: Any, group_id: str) -> None:
        self.log.append(f"offsets {dict(offsets)}")

    async def commit_transaction(self) -> None:
        self.log.append("commit")

    async def begin_transaction(self) -> None:
        self.log.append("begin")


class FakeProducer:
    def __init__(self, guard: DeliveryGuard, log: list[str]) -> None:
        self.app = type("App", (), {faust_patch.GUARD_ATTRIBUTE: guard})()
        self.transaction = FakeTransaction(log)
        self._transaction_producers = {"t-5": self.transaction}
        self._trn_locks = {"t-5": asyncio.Lock()}


def test_patched_commit_settles_before_offsets_and_commit() -> None:
    async def run(fail: bool) -> tuple[list[str], list[Any]]:
        log: list[str] = []
        lost = Lost()
        guard = DeliveryGuard(lost)
        producer = FakeProducer(guard, log)
        error = OSError("refused") if fail else None
        guard.track("t-5", producer.transaction, settled(1, error))
        try:
            await faust_patch._commit_transactions(producer, {"t-5": {"tp": 7}}, "group")
        except RuntimeError:
            log.append("raised")
        return log, lost.calls

    ok_log, ok_lost = asyncio.run(run(False))
    assert ok_log == ["offsets {'tp': 7}", "commit", "begin"] and ok_lost == []
    bad_log, bad_lost = asyncio.run(run(True))
    assert bad_log == ["raised"] and [c[0] for c in bad_lost] == ["t-5"]


class SlowTransaction(FakeTransaction):
    """Commits only once every transaction of the test has started committing."""

    def __init__(self, log: list[str], name: str, started: dict[str, asyncio.Event],
                 error: Exception | None = None) -> None:
        super().__init__(log)
        self.name, self.started, self.error = name, started, error

    async def commit_transaction(self) -> None:
        self.started[self.name].set()
        for event in self.started.values():
            await asyncio.wait_for(event.wait(), 5.0)  # serial commits time out here
        if self.error is not None:
            raise self.error
        self.log.append(f"commit {self.name}")


def test_patched_commit_commits_all_transactions_at_once() -> None:
    async def run() -> tuple[list[str], str]:
        log: list[str] = []
        guard = DeliveryGuard(Lost())
        producer = FakeProducer(guard, log)
        started = {name: asyncio.Event() for name in ("t-1", "t-2", "t-3")}
        producer._transaction_producers = {
            "t-1": SlowTransaction(log, "t-1", started),
            "t-2": SlowTransaction(log, "t-2", started, OSError("fenced")),
            "t-3": SlowTransaction(log, "t-3", started)}
        producer._trn_locks = {name: asyncio.Lock() for name in started}
        with pytest.raises(OSError) as raised:
            await faust_patch._commit_transactions(
                producer, {"t-1": {"a": 1}, "t-2": {"b": 2}, "t-3": {"c": 3}}, "group")
        return log, str(raised.value)

    log, error = asyncio.run(run())
    assert error == "fenced"  # the failed one is raised, after the others committed
    assert sorted(e for e in log if e.startswith("commit")) == ["commit t-1", "commit t-3"]
    assert log.count("begin") == 2


def test_apply_installs_the_commit_check() -> None:
    from faust.transport.drivers.aiokafka import Producer

    faust_patch.apply()
    assert Producer.commit_transactions is faust_patch._commit_transactions


def test_a_batch_that_raises_ends_the_process_before_any_commit() -> None:
    from streams.worker.delivery import whole_or_exit

    seen: list[str] = []

    async def bad_batch() -> None:
        await asyncio.sleep(0)
        raise KeyError("a bug")

    async def good_batch() -> None:
        seen.append("good")

    async def run() -> None:
        await whole_or_exit(good_batch(), lambda exc: seen.append(f"exit {exc!r}"))
        with pytest.raises(KeyError):
            await whole_or_exit(bad_batch(), lambda exc: seen.append(f"exit {exc!r}"))

    asyncio.run(run())
    assert seen == ["good", "exit KeyError('a bug')"]


def test_unsettled_sends_are_all_kept_and_pruning_backs_off() -> None:
    async def run() -> tuple[int, int, list[Any]]:
        lost = Lost()
        guard = DeliveryGuard(lost)
        producer = object()
        loop = asyncio.get_running_loop()
        waiting = [loop.create_future() for _ in range(10_000)]  # a broker that is slow
        for future in waiting:
            guard.track("t-6", producer, future)
        held = guard._pending["t-6"]
        kept, prune_at = guard.pending("t-6"), held.prune_at
        for future in waiting[:-1]:
            future.set_result(None)
        waiting[-1].set_exception(OSError("refused at last"))
        with pytest.raises(RuntimeError):
            await guard.settle("t-6", producer)
        return kept, prune_at, lost.calls
    kept, prune_at, calls = asyncio.run(run())
    assert kept == 10_000 and prune_at > 10_000  # no re-scan on every further send
    assert [c[1] for c in calls] == ["OSError"]
