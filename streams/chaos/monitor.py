"""Watching the run's consumer group: committed offsets, end offsets, and stuck partitions.

A partition is *stuck* when records wait on it (committed offset below the end offset) and
its committed offset has not moved for ``stuck_after`` seconds while the broker was up and
every running worker said (``/health``) that it was ready: not starting, rebalancing or
recovering tables, which are slow but not stuck. The first time a stuck episode opens,
every worker is asked for its task dumps (SIGRTMIN+1: every event loop's tasks; SIGUSR1:
Faust's), which go to the worker logs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streams.chaos.recovery import ReadyTimes
from streams.chaos.supervisor import Supervisor
from streams.clients import confluent_config
from streams.config import Settings
from topology.topics import INPUTS, TopicId, Topology

TP = tuple[str, int]


class Offsets:
    """Committed offsets of a group and end offsets of topics (short timeouts: the broker
    may be down)."""

    def __init__(self, settings: Settings, topology: Topology, group: str) -> None:
        self.consumer = Consumer(confluent_config(settings, **{
            "group.id": group, "enable.auto.commit": False}))
        parts = topology.partitions
        self.inputs: list[TP] = [(topology.name(t), p) for t in INPUTS for p in range(parts)]
        self.ticks: list[TP] = [(topology.name(TopicId.TICKS), p) for p in range(parts)]
        self.outputs: list[TP] = []
        for t in (TopicId.MISMATCHES, TopicId.COMMANDS, TopicId.DLQ):
            name = topology.name(t)
            self.outputs += [(name, p) for p in range(topology.partitions_of(t))]

    def committed(self, tps: list[TP], timeout: float = 5.0) -> dict[TP, int]:
        """Committed offset of each (0 where none); KafkaException if the broker is away."""
        found = self.consumer.committed([TopicPartition(t, p) for t, p in tps], timeout=timeout)
        return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in found}

    def ends(self, tps: list[TP], timeout: float = 5.0) -> dict[TP, int]:
        """End offset (high watermark) of each."""
        return {(t, p): self.consumer.get_watermark_offsets(TopicPartition(t, p),
                                                            timeout=timeout, cached=False)[1]
                for t, p in tps}

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()


def health(port: int) -> str:
    """A worker's state from its /health: "ready" when it serves its partitions, else the
    document's word on why not ("starting", "rebalancing", "recovering", "stopping"), or
    "down" when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return health_word(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:  # 503 while not ready: the body says why
        with contextlib.suppress(Exception):
            return health_word(json.loads(exc.read()))
        return "down"
    except Exception:
        return "down"


def health_word(doc: dict[str, Any]) -> str:
    """"ready" for a /health document that says so (its status word is then "ok"), else
    its status word."""
    return "ready" if doc.get("ready") is True else str(doc.get("status", "down"))


@dataclass
class Episode:
    """Partitions that stood still with records waiting while every worker was ready."""

    start_s: float
    seconds: float
    partitions: list[str]
    lag: int
    statuses: dict[str, str]
    dumped: bool = False
    end_s: float | None = None


@dataclass
class Monitor:
    """Samples the group once a second in a thread; see the module docstring."""

    offsets: Offsets
    supervisor: Supervisor
    stuck_after: float
    log: Callable[[str], None] = lambda _: None
    #: every sample (per-partition committed and end offsets, worker statuses) as JSON Lines
    samples_path: Path | None = None
    #: told of every worker seen ready (the time to ready after each SIGKILL)
    ready: ReadyTimes | None = None
    episodes: list[Episode] = field(default_factory=list)
    #: the longest time a partition's committed offset stood still with records waiting,
    #: for whatever reason (restarts and recovery included), and where
    longest_wait_s: float = 0.0
    longest_wait_at_s: float = 0.0
    samples: int = 0
    failed_samples: int = 0
    _excused_until: float = 0.0
    _excused: bool = False
    _since: dict[TP, float] = field(default_factory=dict)
    _raw_since: dict[TP, float] = field(default_factory=dict)
    _last: dict[TP, int] = field(default_factory=dict)
    _open: Episode | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin sampling."""
        self._thread = threading.Thread(target=self._run, name="chaos-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (closes an open episode)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        if self._open is not None:
            self._open.end_s = self.supervisor.elapsed()
            self._open = None
        self.offsets.close()

    def excuse(self, on: bool, grace: float = 0.0) -> None:
        """The broker is being restarted (on), or is back and gets ``grace`` seconds."""
        self._excused = on
        if not on:
            self._excused_until = time.monotonic() + grace

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.sample()
            except KafkaException:
                self.failed_samples += 1
            except Exception as exc:  # never let the watcher die silently
                self.failed_samples += 1
                self.log(f"monitor: {type(exc).__name__}: {exc}")

    def sample(self) -> None:
        """One look at the group (in the monitor's thread)."""
        committed = self.offsets.committed(self.offsets.inputs)
        ends = self.offsets.ends(self.offsets.inputs)
        now = time.monotonic()
        self.samples += 1
        alive = self.supervisor.alive()
        starts = {s.name: s.starts for s in alive}  # before asking: a ready is of this start
        statuses = {s.name: health(s.port) for s in alive}
        if self.ready is not None:
            seen = time.monotonic()
            for name, word in statuses.items():
                if word == "ready":
                    self.ready.seen(name, seen, starts[name])
        excused = (self._excused or now < self._excused_until or not alive
                   or any(v != "ready" for v in statuses.values()))
        stuck: list[TP] = []
        for tp, end in ends.items():
            moved = committed.get(tp) != self._last.get(tp)
            waiting = committed.get(tp, 0) < end
            if moved or not waiting or tp not in self._raw_since:
                self._raw_since[tp] = now
            if moved or not waiting or excused or tp not in self._since:
                self._since[tp] = now
            wait = round(now - self._raw_since[tp], 1)
            if waiting and wait > self.longest_wait_s:
                self.longest_wait_s, self.longest_wait_at_s = wait, self.supervisor.elapsed()
            if waiting and now - self._since[tp] >= self.stuck_after:
                stuck.append(tp)
        self._last = committed
        if self.samples_path is not None:
            with self.samples_path.open("a", encoding="utf-8") as out:
                out.write(json.dumps({
                    "at_s": self.supervisor.elapsed(), "statuses": statuses,
                    "excused": excused, "stuck": [f"{t}[{p}]" for t, p in stuck],
                    "lag": {f"{t}[{p}]": ends[(t, p)] - committed.get((t, p), 0)
                            for t, p in ends if ends[(t, p)] > committed.get((t, p), 0)},
                    "committed": sum(committed.values())}) + "\n")
        self._episode(stuck, now, sum(ends[tp] - committed.get(tp, 0) for tp in stuck), statuses)

    def _episode(self, stuck: list[TP], now: float, lag: int, statuses: dict[str, str]) -> None:
        if not stuck:
            if self._open is not None:
                self._open.end_s = self.supervisor.elapsed()
                self.log(f"stuck episode over after {self._open.seconds:.0f}s")
                self._open = None
            return
        oldest = min(self._since[tp] for tp in stuck)
        if self._open is None:
            names = [f"{t}[{p}]" for t, p in stuck]
            self._open = Episode(round(self.supervisor.elapsed() - (now - oldest), 1),
                                 round(now - oldest, 1), names, lag, statuses)
            self.episodes.append(self._open)
            self.log(f"STUCK: {len(stuck)} partitions have not moved for "
                     f"{now - oldest:.0f}s with {lag} records waiting (e.g. {names[0]}); "
                     f"workers {statuses}; asking for task dumps")
            self._open.dumped = self._dump()
        else:
            self._open.seconds = round(now - oldest, 1)
            self._open.partitions = sorted(set(self._open.partitions)
                                           | {f"{t}[{p}]" for t, p in stuck})
            self._open.lag = max(self._open.lag, lag)

    def _dump(self) -> bool:
        """Ask every running worker for its task dumps (to its log)."""
        done = False
        for slot in self.supervisor.alive():
            if slot.child is None:
                continue
            for sig in (signal.SIGRTMIN + 1, signal.SIGUSR1):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.child.pid, sig)
                    done = True
                time.sleep(0.5)
        return done

    def doc(self) -> dict[str, Any]:
        """What the monitor saw, as JSON."""
        return {"stuck_after_s": self.stuck_after, "episodes": [asdict(e) for e in self.episodes],
                "longest_wait_s": self.longest_wait_s,
                "longest_wait_at_s": self.longest_wait_at_s,
                "samples": self.samples, "failed_samples": self.failed_samples}
