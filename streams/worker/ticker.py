"""The worker's once-a-second timer: quiet and stalled inputs become Ticks; a stuck worker exits."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any, Protocol

import faust

from streams.clock import wall_ms
from streams.config import Settings
from streams.worker.idle import IdleTracker
from streams.worker.offsets import TailProbe
from streams.worker.runtime import Runtime
from topology.topics import INPUTS, TopicId, Topology

#: A worker with input waiting and no record processed for this long exits with this code.
STALL_LIMIT_MS = 60_000
STALL_EXIT_CODE = 75


class Ticking(Protocol):
    """What the timer reads of the worker (``streams.worker.app.Worker``)."""

    @property
    def app(self) -> Any: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def runtime(self) -> Runtime: ...

    @property
    def tracker(self) -> IdleTracker: ...

    @property
    def topology(self) -> Topology: ...

    @property
    def tail_probe(self) -> TailProbe: ...


async def tick(worker: Ticking) -> None:
    """Send a Tick for inputs that are idle and caught up (wall-clock, once a second)."""
    inputs = {worker.topology.name(t) for t in INPUTS}
    assigned = sorted((tp.topic, tp.partition) for tp in worker.app.assignor.assigned_actives()
                      if tp.topic in inputs)
    if not assigned:
        return
    consumer = worker.app.consumer
    ends: dict[tuple[str, int], int] = {}
    for topic, partition in assigned:
        tp = faust.types.TP(topic, partition)
        try:
            end = consumer.highwater(tp)
        except Exception:  # not fetched yet
            end = None
        if end is not None:
            ends[(topic, partition)] = end
    committed = await committed_positions(
        worker.app, [tp for tp in assigned if tp not in worker.tracker.next_offset])
    now = wall_ms()
    for (topic, partition), position, end in worker.tracker.quiet_behind(
            assigned, ends, committed, now):
        if not await asyncio.to_thread(worker.tail_probe.visible_between, topic, partition,
                                       position, end):
            worker.tracker.caught_up_at((topic, partition), end)  # only markers were left
    app: Any = worker.app
    if app.rebalancing or not app.tables.recovery.completed.is_set():
        worker.tracker.last_progress = now  # recovering tables is progress, not a stall
    stuck = worker.tracker.stalled(assigned, ends, committed, now, STALL_LIMIT_MS)
    if stuck:
        # records wait and nothing moved for a minute: exit so the supervisor restarts
        # the worker (open transactions abort; committed work is kept)
        print(f"crosscheck: worker stalled: no record processed for "
              f"{STALL_LIMIT_MS // 1000}s while {len(stuck)} input partitions have records "
              f"waiting (e.g. {stuck[0][0]}[{stuck[0][1]}]); exiting with code "
              f"{STALL_EXIT_CODE} for a restart", file=sys.stderr, flush=True)
        os._exit(STALL_EXIT_CODE)
    tracker = worker.tracker
    idle = tracker.candidates(assigned, ends, committed, now)
    if idle:
        # caught up means lag *known* to be zero: ask the broker for the end offsets now
        # (the fetch highwaters may be older than the last read)
        fresh = await end_offsets(worker.app, [quiet for quiet, _ in idle])
        confirmed: list[tuple[tuple[str, int], int]] = []
        for quiet, position in idle:
            end = fresh.get(quiet)
            if end is None or end > position:
                tracker.unreport(quiet)  # records are waiting (or the lag is unknown)
            else:
                confirmed.append((quiet, position))
        idle = confirmed
    released = tracker.releases(now, worker.settings.rules.source_hold)
    by_partition: dict[int, tuple[list[tuple[str, int]], list[tuple[str, int]]]] = {}
    names = worker.topology.by_name()
    for (topic, partition), offset in idle:
        by_partition.setdefault(partition, ([], []))[0].append((names[topic].value, offset))
    for (topic, partition), offset in released:
        by_partition.setdefault(partition, ([], []))[1].append((names[topic].value, offset))
    ticks = worker.topology.name(TopicId.TICKS)
    for partition, (quiets, stalls) in sorted(by_partition.items()):
        value = worker.runtime.codec.encode(
            "Tick", {"partition": partition, "idle_topics": [t for t, _ in quiets],
                     "offsets": [o for _, o in quiets],
                     "released_topics": [t for t, _ in stalls],
                     "released_offsets": [o for _, o in stalls], "sent_at": wall_ms()},
            ticks)
        key = f"{worker.runtime.worker_id}/{partition}".encode()
        await worker.app.producer.send(ticks, key, value, partition, None, None)


async def end_offsets(app: Any, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """The end offsets the broker reports now (ListOffsets; read_committed: the last stable
    offset); {} if the broker does not answer (then nothing counts as caught up)."""
    consumer: Any = app.consumer
    thread = consumer._thread  # aiokafka lives on Faust's consumer thread
    aio = thread._ensure_consumer()
    request = [faust.types.TP(topic, partition) for topic, partition in tps]
    try:
        ends = await thread.call_thread(aio.end_offsets, request)
    except Exception:  # a broker restart, a rebalance: try again at the next tick
        return {}
    return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}


async def committed_positions(app: Any, tps: list[tuple[str, int]]
                              ) -> dict[tuple[str, int], int]:
    """Where the group resumes each topic-partition it has not processed a record of:
    the committed offset, or (no commit yet: auto.offset.reset=earliest) the log start."""
    if not tps:
        return {}
    consumer: Any = app.consumer
    thread = consumer._thread  # aiokafka lives on Faust's consumer thread
    aio = thread._ensure_consumer()
    result: dict[tuple[str, int], int] = {}
    fresh: list[Any] = []
    for topic, partition in tps:
        tp = faust.types.TP(topic, partition)
        offset = await thread.call_thread(aio.committed, tp)
        if offset is not None:
            result[(topic, partition)] = offset
        else:
            fresh.append(tp)
    if fresh:
        starts = await thread.call_thread(aio.beginning_offsets, fresh)
        for tp, offset in starts.items():
            result[(tp.topic, tp.partition)] = offset
    return result
