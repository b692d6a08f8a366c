"""Helpers of the worker tests: run `crosscheck worker`, wait until it has judged everything,
stop it, read its outputs back (read_committed) and compare them with the batch reference."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from streams.clients import confluent_config
from streams.config import Settings
from streams.produce import EventPublisher, ParsedLine
from streams.verify import duplicates, inconsistencies, multiset_diff
from tests.integration.conftest import env_of
from tests.integration.scenarios import RULES, Line, Outputs, worker_rule_args
from tests.integration.topic_read import WorkerOutputs, no_open_transactions, read_placed
from tests.integration.topic_read import read_outputs as read_outputs
from tests.integration.topic_read import read_records as read_records
from topology.topics import INPUTS, TopicId, Topology

CROSSCHECK = str(Path(sys.executable).with_name("crosscheck"))

#: Faust reads these from the environment: a worker killed with SIGKILL leaves the group
#: after 6 s (the broker's group.min.session.timeout.ms, the worker's default too), and
#: a rebalance waits at most 20 s for the members to rejoin.
FAST_GROUP_ENV = {"BROKER_SESSION_TIMEOUT": "6", "BROKER_HEARTBEAT_INTERVAL": "1",
                  "BROKER_REBALANCE_TIMEOUT": "20"}


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for the worker's web server)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class WorkerProcess:
    """A `crosscheck worker` subprocess writing its output to a log file."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    restarts: int = 0

    def restart_if_stalled(self) -> bool:
        """Like a supervisor: start the worker again if it exited because it stalled
        (exit code 75, see streams.worker.ticker.STALL_EXIT_CODE). True if restarted."""
        if self.alive() or self.proc.returncode != 75 or self.restarts >= 3:
            return False
        self.restarts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n=== restart after a stall: {' '.join(self.args)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        return True

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def crashes(self) -> list[str]:
        """Log lines of Faust agents that crashed (the agent stops judging)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if "Crashed reason=" in line]

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, wait; SIGKILL if it does not stop in time. Returns the exit code."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.proc.wait(30))

    def kill(self) -> None:
        """SIGKILL (the process gets no chance to clean up) and reap it."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)


def start_worker(settings: Settings, log_path: Path, *, port: int | None = None,
                 extra_args: Sequence[str] = (), extra_env: dict[str, str] | None = None,
                 ) -> WorkerProcess:
    """Start `crosscheck worker` for `settings` with the scenario thresholds (RULES)."""
    port = port or free_port()
    env = env_of(settings)
    env.update(extra_env or {})
    args = [CROSSCHECK, "worker", "--web-port", str(port), *worker_rule_args(RULES),
            *extra_args]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n=== {' '.join(args)}\n".encode())
        log.flush()
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return WorkerProcess(proc, port, log_path, args, env)


@contextlib.contextmanager
def running_worker(settings: Settings, log_path: Path, **kwargs: Any
                   ) -> Iterator[WorkerProcess]:
    """A worker that is stopped (SIGTERM, then SIGKILL after a timeout) on the way out."""
    worker = start_worker(settings, log_path, **kwargs)
    try:
        yield worker
    finally:
        worker.terminate()


# -- producing ------------------------------------------------------------------------------


def produce(settings: Settings, lines: Iterable[Line],
            publisher: EventPublisher | None = None) -> None:
    """Publish input events keyed by order_id (murmur2), in the given order, and flush."""
    pub = publisher or EventPublisher(settings)
    for line in lines:
        pub.publish(ParsedLine(line.topic, line.order_id, line.record))
    pub.flush()
    assert not pub.errors, pub.errors


# -- progress -------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """Committed offsets of the worker group and end offsets of its topics."""

    committed: dict[tuple[str, int], int]
    ends: dict[tuple[str, int], int]
    outputs: dict[tuple[str, int], int] = field(default_factory=dict)

    def same(self, other: Snapshot | None) -> bool:
        return other is not None and (self.committed, self.ends, self.outputs) == \
            (other.committed, other.ends, other.outputs)


class Progress:
    """Reads the worker group's committed offsets and the topics' end offsets."""

    def __init__(self, settings: Settings, topology: Topology) -> None:
        self.settings = settings
        self.topology = topology
        self.consumer = Consumer(confluent_config(settings, **{
            "group.id": settings.app_id, "enable.auto.commit": False,
        }))
        parts = topology.partitions
        self.inputs = [(topology.name(t), p) for t in INPUTS for p in range(parts)]
        self.ticks = [(topology.name(TopicId.TICKS), p) for p in range(parts)]
        self.outputs: list[tuple[str, int]] = []
        for t in (TopicId.MISMATCHES, TopicId.COMMANDS, TopicId.DLQ):
            name = topology.name(t)
            meta = self.consumer.list_topics(name, timeout=15).topics[name]
            self.outputs += [(name, p) for p in sorted(meta.partitions)]

    def close(self) -> None:
        self.consumer.close()

    def committed(self, tps: list[tuple[str, int]] | None = None) -> dict[tuple[str, int], int]:
        """Committed offset of each topic-partition (0 when none)."""
        tps = self.inputs + self.ticks if tps is None else tps
        for attempt in range(20):  # the coordinator may still be loading (NOT_COORDINATOR)
            try:
                found = self.consumer.committed([TopicPartition(t, p) for t, p in tps],
                                                timeout=15)
                break
            except KafkaException:
                if attempt == 19:
                    raise
                time.sleep(0.5)
        return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in found}

    def ends(self, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """End offset (high watermark) of each topic-partition."""
        return {(t, p): self.consumer.get_watermark_offsets(TopicPartition(t, p), timeout=15,
                                                            cached=False)[1]
                for t, p in tps}

    def snapshot(self) -> Snapshot:
        return Snapshot(self.committed(), self.ends(self.inputs + self.ticks),
                        self.ends(self.outputs))

    def input_total(self) -> int:
        return sum(self.ends(self.inputs).values())

    def committed_inputs(self) -> int:
        return sum(self.committed(self.inputs).values())

    def caught_up(self, snap: Snapshot) -> bool:
        """Every input and tick record committed, and every partition with input has had
        ticks (the idle notices that let the final decisions come due)."""
        if not any(snap.ends[tp] for tp in self.inputs):
            return False
        if any(snap.committed[tp] < snap.ends[tp] for tp in self.inputs + self.ticks):
            return False
        busy = {p for (_t, p) in self.inputs if snap.ends[(_t, p)]}
        return all(snap.ends[(t, p)] > 0 for t, p in self.ticks if p in busy)

    def settled(self, snap: Snapshot) -> bool:
        """Caught up, and the last of it is in: every input topic-partition is named idle at
        its end by a committed tick of its partition number (the final watermark, with every
        decision it lets come due committed with the tick), and the group has read the
        metrics partials up to their last record (the windows are out)."""
        ticks = self.topology.name(TopicId.TICKS)
        names = {t.value: self.topology.name(t) for t in INPUTS}
        at_end: set[tuple[str, int]] = set()
        for partition, offset, tick in read_placed(self.settings, ticks, settle=0):
            if offset >= snap.committed[(ticks, partition)]:
                continue
            for topic, position in zip(tick["idle_topics"], tick["offsets"], strict=True):
                tp = (names[topic], partition)
                if position >= snap.ends[tp]:
                    at_end.add(tp)
        if not at_end.issuperset(self.inputs):
            return False
        partials = self.topology.name(TopicId.METRICS_PARTIALS)
        meta = self.consumer.list_topics(partials, timeout=15).topics[partials]
        if not no_open_transactions(self.settings, self.consumer, [
                TopicPartition(partials, p) for p in meta.partitions]):
            return False  # a partial may be committed and not visible yet
        last: dict[tuple[str, int], int] = {}
        for partition, offset, _ in read_placed(self.settings, partials, decode=False,
                                                 settle=0):
            last[(partials, partition)] = max(offset, last.get((partials, partition), -1))
        committed = self.committed(list(last))
        return all(committed[tp] > offset for tp, offset in last.items())


def wait_until_judged(worker: WorkerProcess, progress: Progress, *, quiet: float = 6.0,
                      settled_quiet: float = 2.0, timeout: float = 180.0) -> float:
    """Wait until the worker has committed every input and tick, and nothing (offsets, ticks,
    outputs) has changed for `quiet` seconds: by then the idle inputs have been ticked and
    every decision the final watermark allows is committed. Once the final ticks are seen
    committed (``Progress.settled``), `settled_quiet` seconds unchanged are enough. Returns
    the seconds waited."""
    began = time.monotonic()
    last: Snapshot | None = None
    since = began
    settled = False
    while True:
        if not worker.alive() and worker.restart_if_stalled():
            continue
        if not worker.alive():
            raise AssertionError(f"worker exited with {worker.proc.returncode}:\n"
                                 f"{worker.log_tail()}")
        crashes = worker.crashes()
        assert not crashes, f"worker agent crashed: {crashes[:3]}\n{worker.log_tail(80)}"
        try:
            snap = progress.snapshot()
        except KafkaException:  # e.g. the group coordinator is still loading
            time.sleep(0.5)
            continue
        now = time.monotonic()
        if not (progress.caught_up(snap) and snap.same(last)):
            last, since, settled = snap, now, False
        else:
            settled = settled or progress.settled(snap)
            if now - since >= (settled_quiet if settled else quiet):
                return now - began
        if now - began > timeout:
            lag = {tp: snap.ends[tp] - snap.committed[tp] for tp in snap.committed
                   if snap.ends[tp] != snap.committed[tp]}
            raise AssertionError(f"worker did not finish within {timeout:.0f}s; lag {lag}\n"
                                 f"{worker.log_tail()}")
        time.sleep(0.5)


def wait_until_up(worker: WorkerProcess, timeout: float = 120.0) -> None:
    """Wait until the worker's web server answers (ready or not): its app is up, so a
    SIGTERM from then on is a clean stop."""
    deadline = time.monotonic() + timeout
    while True:
        if not worker.alive():
            raise AssertionError(f"worker exited with {worker.proc.returncode}:\n"
                                 f"{worker.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/health", timeout=5):
                return
        except urllib.error.HTTPError:  # 503: up, not ready yet
            return
        except OSError:  # not listening yet
            pass
        assert time.monotonic() < deadline, f"not up in {timeout:.0f}s\n{worker.log_tail()}"
        time.sleep(0.2)


def wait_for_members(settings: Settings, worker: WorkerProcess, timeout: float = 90.0) -> None:
    """Wait until the worker group is stable with a member that has partitions assigned."""
    client = AdminClient(confluent_config(settings))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not worker.alive():
            raise AssertionError(f"worker exited with {worker.proc.returncode}:\n"
                                 f"{worker.log_tail()}")
        try:
            group = client.describe_consumer_groups([settings.app_id])[settings.app_id]
            desc = group.result(timeout=10)
            assigned = any(m.assignment and m.assignment.topic_partitions for m in desc.members)
            if str(desc.state).endswith("STABLE") and assigned:
                return
        except Exception:  # the group does not exist yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"worker group never became stable\n{worker.log_tail()}")


# -- comparing ------------------------------------------------------------------------------


def assert_same(actual: Outputs, expected: Outputs, context: str = "") -> None:
    """The worker's normalised outputs equal the reference exactly."""
    report = "\n".join(filter(None, [
        multiset_diff(actual.mismatches, expected.mismatches, "mismatches"),
        multiset_diff(actual.commands, expected.commands, "commands")]))
    assert not report, f"{report}\n{context}"
    assert actual.mismatches == expected.mismatches
    assert actual.commands == expected.commands


def assert_no_duplicates(outputs: WorkerOutputs, expected: Outputs | None = None) -> None:
    """Each (mismatch_id, status) and each command_id at most once; RESOLVED after OPEN;
    a command a mismatch names and that was not issued is one the reference holds too."""
    twice, again = duplicates(outputs.mismatches, outputs.commands)
    assert not twice, f"{len(twice)} mismatches emitted more than once: {twice[:5]}"
    assert not again, f"{len(again)} commands issued more than once: {again[:5]}"
    orphans, dangling = inconsistencies(outputs.mismatches, outputs.commands)
    assert not orphans, f"RESOLVED without OPEN: {orphans[:5]}"
    held: list[str] = []
    if expected is not None:
        held = inconsistencies(expected.mismatches, expected.commands)[1]
    assert dangling == held, f"mismatches name commands never issued: {dangling[:5]}"
