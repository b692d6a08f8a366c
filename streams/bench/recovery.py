"""Recovery phase of the benchmark: seconds from a SIGKILL to a worker deciding again.

It runs over the open-orders phase's topics and state (``LoadedWorker``: one exactly-once
worker holding N undecided orders, stopped at zero lag with its RocksDB kept), once per group
session timeout in ``session_timeouts``: the broker hands a SIGKILLed dynamic member's
partitions on only when its session expires.

1. *state kept, static member*: the worker, a static member of the group
   (``--group-instance-id``, as a supervisor restarting it in place would run it), is
   started again to ready and zero lag, SIGKILLed, and started at once with the same id on
   the same web port (the same state directory); a few new orders are published after the
   kill. Measured: seconds from the SIGKILL to its ``/health`` ready, and to the new
   orders' offsets committed; what it said about rolling back and restoring.
2. *state deleted, static member* (a full restore): the same with the state directory
   deleted before the restart; also the changelog records its bulk restore read and their
   rate, from its ``bulk restore:`` lines and from the changelogs' offsets.
3. *state kept, dynamic member*: the same as 1. with the worker restarted without a static
   id (the worker's default): it joins once the dead member's session has expired.
4. *standby takeover*: a second worker (its own port and fresh state, the same group) joins
   and both reach ready and zero lag; the first, which held every partition until then, is
   SIGKILLed and new orders are published to the partitions it owned. Measured: seconds
   until the group's committed offsets pass them, and until the survivor's ``/health`` is
   ready holding them; which standbys the survivor held, and what it restored.

The new orders' event times are those of the last loaded orders, so no watermark moves and
none of the N orders is decided during the phase.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from streams.bench.changelogs import TABLES
from streams.bench.data import preload
from streams.bench.openorders import OPEN_SPAN, LoadedWorker, open_orders
from streams.bench.procs import Child
from streams.bench.recovery_watch import Watch, health_doc, holding
from streams.bench.worker import free_port
from streams.bench.worker_log import bulk_restores, milestones, said, timeline
from streams.clients import confluent_config
from streams.errors import CrosscheckError
from streams.names import ORDERS_TABLE, changelog_topic
from streams.worker.lifecycle import data_dir_for
from topology.partitioner import partition_for

#: the targets on this machine, printed next to the figures
TARGET_READY_S = 10.0
TARGET_RESTORE_RATE = 100_000.0
TARGET_TAKEOVER_S = 10.0
#: the group session timeouts the scenarios run with: the worker's default, and a longer one
SESSION_TIMEOUTS = (6.0, 15.0)
#: new orders published after each SIGKILL
NEW_ORDERS = 40
#: seconds a measurement waits for ready and the new orders committed before it gives up
RECOVERY_TIMEOUT = 900.0

@dataclass
class Restart:
    """One SIGKILL of the loaded worker and its restart on the same port."""

    #: "kept" or "deleted" (the state directory, before the restart)
    state: str
    #: whether the worker was a static member of the group (the same id before and after)
    static: bool
    #: seconds from the SIGKILL to /health ready (None: not within the timeout)
    ready_s: float | None
    #: seconds from the SIGKILL to the new orders published after it committed
    committed_s: float | None
    new_orders: int
    #: what its ``bulk restore:`` lines add up to
    restored_records: int = 0
    restore_seconds: float = 0.0
    restore_rate: float | None = None
    #: the changelogs' offsets (end - start, every partition) at the kill: what a restore
    #: from nothing reads, compacted records and transaction markers included
    changelog_offsets: int = 0
    #: those over the time to ready
    offsets_rate: float | None = None
    #: those over the restore window, from the assignment to Faust's recovery starting, or
    #: to the worker ready when that recovery had nothing to read (the bulk restore runs in
    #: between, on the assignment)
    window_rate: float | None = None
    #: what it said about its local state
    said: list[str] = field(default_factory=list)
    #: seconds from the SIGKILL to each of Faust's milestones (``worker_log.MILESTONES``)
    timeline: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = self.timeline
        end = t.get("recovery_reads", t.get("faust_ready"))
        if self.window_rate is None and "assigned" in t and end is not None \
                and end > t["assigned"]:
            self.window_rate = self.changelog_offsets / (end - t["assigned"])


@dataclass
class Takeover:
    """One SIGKILL of a worker with another of the group left to take its partitions."""

    #: the input partitions the killed worker owned
    partitions: list[int]
    #: seconds from the SIGKILL to the new orders on those partitions committed
    committed_s: float | None
    #: seconds from the SIGKILL to the survivor's /health ready with those partitions
    holds_s: float | None
    new_orders: int
    #: the orders table's partitions the survivor kept as standbys before the kill
    survivor_standbys: list[int] = field(default_factory=list)
    restored_records: int = 0
    restore_seconds: float = 0.0
    said: list[str] = field(default_factory=list)
    #: seconds from the SIGKILL to each of the survivor's Faust milestones after it
    timeline: dict[str, float] = field(default_factory=dict)


@dataclass
class Round:
    """The three scenarios under one session timeout."""

    session_timeout_s: float
    #: seconds from a start after a clean stop to /health ready and zero lag
    clean_start_s: float
    kept: Restart
    deleted: Restart
    dynamic: Restart
    takeover: Takeover


def measure_recovery(loaded: LoadedWorker, orders: int, workdir: Path, batch_size: int,
                     session_timeouts: tuple[float, ...] = SESSION_TIMEOUTS,
                     log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run the four scenarios under each session timeout; the results as a dict."""
    rounds = []
    for number, timeout in enumerate(session_timeouts):
        phase = _Phase(loaded, workdir, batch_size, timeout, log, number)
        rounds.append(phase.run())
    return {
        "orders": orders, "new_orders": NEW_ORDERS,
        "standby_replicas": os.environ.get("CROSSCHECK_STANDBY_REPLICAS"),
        "targets": {"ready_s": TARGET_READY_S, "restore_records_per_s": TARGET_RESTORE_RATE,
                    "takeover_s": TARGET_TAKEOVER_S},
        "rounds": [_rounded(asdict(r)) for r in rounds],
    }


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


class _Phase:
    """The workers of one round, and the measurements."""

    def __init__(self, loaded: LoadedWorker, workdir: Path, batch_size: int,
                 session_timeout: float, log: Callable[[str], None], number: int) -> None:
        self.loaded, self.workdir, self.batch_size = loaded, workdir, batch_size
        self.log, self.number = log, number
        self.session_timeout = session_timeout
        self.env = {"BROKER_SESSION_TIMEOUT": f"{session_timeout:g}",
                    "BROKER_HEARTBEAT_INTERVAL": f"{min(3.0, session_timeout / 5):g}"}
        self.bursts = 0
        self.children: list[Child] = []

    def run(self) -> Round:
        """Start the loaded worker, kill and restart it three times, then the takeover."""
        port = self.loaded.port
        watch = Watch(self.loaded.settings, self.loaded.topology)
        try:
            began = time.monotonic()
            child = self._start(port, "a", static=True)
            watch.settle([(child, port)], RECOVERY_TIMEOUT)
            clean = time.monotonic() - began
            self.log(f"recovery, session timeout {self.session_timeout:g} s: ready and at "
                     f"zero lag {clean:.1f} s after a start from a clean stop")
            child, kept = self._restart(child, port, watch, delete=False, static=True)
            child, deleted = self._restart(child, port, watch, delete=True, static=True)
            child, dynamic = self._restart(child, port, watch, delete=False, static=False)
            takeover = self._takeover(child, port, watch)
            return Round(self.session_timeout, clean, kept, deleted, dynamic, takeover)
        finally:
            for c in self.children:
                c.stop()
            watch.close()

    def _start(self, port: int, name: str, static: bool = False) -> Child:
        """Start a worker on this port (a static member of id ``<app id>-<name>`` if asked)."""
        path = self.workdir / f"recovery-{self.number}-{name}-{len(self.children)}.log"
        member = ["--group-instance-id", f"{self.loaded.settings.app_id}-{name}"] if static \
            else []
        child = Child(["worker", "--web-port", str(port), "--batch-size", str(self.batch_size),
                       "--loglevel", "info", *member], self.loaded.settings, path,
                      extra_env=self.env)
        self.children.append(child.start())
        return child

    def _kill(self, child: Child) -> tuple[float, float]:
        """SIGKILL the worker; the moment it was sent (time.monotonic(), time.time())."""
        at, wall = time.monotonic(), time.time()
        os.kill(child.pid, signal.SIGKILL)
        assert child.proc is not None
        child.proc.wait(30)
        return at, wall

    def _publish(self, partitions: set[int] | None = None) -> int:
        """Publish new orders (to these input partitions only, if given); how many."""
        self.bursts += 1
        parts = self.loaded.topology.partitions
        want = NEW_ORDERS if partitions is None else NEW_ORDERS * parts
        last = self.loaded.start + OPEN_SPAN - 1
        seed = 7_000 + 100 * self.number + self.bursts
        records = [r for r in open_orders(want, last, seed, span=1)
                   if partitions is None or partition_for(r[1]["order_id"], parts) in partitions]
        records = records[:NEW_ORDERS]
        preload(self.loaded.settings, records)
        return len(records)

    def _restart(self, child: Child, port: int, watch: Watch, delete: bool, static: bool
                 ) -> tuple[Child, Restart]:
        """Kill the worker, delete its state if asked, start it again (as the static member
        "a" or as a dynamic one), measure."""
        label = "deleted" if delete else "kept"
        offsets = _changelog_offsets(self.loaded)
        killed, wall = self._kill(child)
        if delete:
            shutil.rmtree(data_dir_for(self.loaded.settings, port), ignore_errors=True)
        child = self._start(port, "a" if static else "dynamic", static=static)
        new = self._publish()
        target = watch.ends()
        met = watch.until(killed, RECOVERY_TIMEOUT, child, {
            "ready": lambda: (health_doc(port) or {}).get("ready") is True,
            "committed": lambda: watch.committed() >= target})
        ready, committed = met["ready"], met["committed"]
        text = child.log_path.read_text(errors="replace")
        restores = bulk_restores(text)
        records = sum(r.records for r in restores)
        seconds = sum(r.seconds for r in restores)
        result = Restart(label, static, ready, committed, new, records, seconds,
                         records / seconds if seconds > 0 else None, offsets,
                         offsets / ready if ready else None, said=said(text),
                         timeline=timeline(text, wall))
        member = "static" if static else "dynamic"
        self.log(f"recovery, kill -9 with the local state {label}, {member} member: ready after "
                 f"{_s(ready)}, the new orders committed after {_s(committed)}")
        for line in result.said:
            self.log(f"  worker: {line}")
        self.log(f"  after the SIGKILL: {milestones(result.timeline)}")
        return child, result

    def _takeover(self, first: Child, port: int, watch: Watch) -> Takeover:
        """A second worker joins; the first is killed; the second takes its partitions."""
        second_port = free_port()
        second_dir = data_dir_for(self.loaded.settings, second_port)
        shutil.rmtree(second_dir, ignore_errors=True)
        second = self._start(second_port, "second")
        try:
            watch.settle([(first, port), (second, second_port)], RECOVERY_TIMEOUT)
            doc = health_doc(port) or {}
            owned = set(doc.get("partitions") or [])
            if not owned:
                raise CrosscheckError(f"the first worker owns no partition: {doc}")
            standbys = standby_partitions(health_doc(second_port))
            mark = second.log_path.stat().st_size
            killed, wall = self._kill(first)
            new = self._publish(owned)
            target = watch.ends(owned)
            met = watch.until(killed, RECOVERY_TIMEOUT, second, {
                "committed": lambda: watch.committed(owned) >= target,
                "holds": lambda: holding(health_doc(second_port), owned)})
            committed, holds = met["committed"], met["holds"]
            with second.log_path.open("rb") as f:
                f.seek(mark)
                text = f.read().decode(errors="replace")
        finally:
            second.stop()
            shutil.rmtree(second_dir, ignore_errors=True)
        restores = bulk_restores(text)
        result = Takeover(sorted(owned), committed, holds, new, standbys,
                          sum(r.records for r in restores), sum(r.seconds for r in restores),
                          said(text), timeline(text, wall))
        self.log(f"recovery, standby takeover of partitions {sorted(owned)}: their new orders "
                 f"committed after {_s(committed)}, the survivor ready with them after "
                 f"{_s(holds)} (it kept standbys of orders partitions {standbys})")
        for line in result.said:
            self.log(f"  survivor: {line}")
        self.log(f"  after the SIGKILL: {milestones(result.timeline)}")
        return result


def _s(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.1f} s"


def standby_partitions(doc: dict[str, Any] | None, table: str = ORDERS_TABLE) -> list[int]:
    """The partitions of a table a worker's /health document lists among its standbys."""
    rows = (doc or {}).get("standbys") or []
    return sorted({r["partition"] for r in rows if r.get("table") == table})


def _changelog_offsets(loaded: LoadedWorker) -> int:
    """Offsets (end - start) of every partition of the worker's table changelogs."""
    settings = loaded.settings
    consumer = Consumer(confluent_config(settings, **{"group.id": f"{settings.app_id}-ends"}))
    try:
        total = 0
        for table in TABLES:
            name = changelog_topic(settings.app_id, table)
            topic = consumer.list_topics(name, timeout=15).topics.get(name)
            if topic is None or topic.error is not None:
                continue
            for p in topic.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=15,
                                                           cached=False)
                total += high - low
        return total
    finally:
        consumer.close()
