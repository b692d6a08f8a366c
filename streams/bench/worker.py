"""Worker phase of the benchmark: `crosscheck worker` over the pre-loaded inputs to zero lag."""

from __future__ import annotations

import shutil
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from streams.bench.changelogs import changelog_bytes
from streams.bench.procs import Child, dir_size, peak_rss
from streams.bench.stages import scrape_stages
from streams.clients import confluent_config
from streams.config import Settings
from streams.errors import CrosscheckError
from streams.replay.offsets import committed_offsets
from streams.worker.lifecycle import data_dir_for
from topology.topics import INPUTS, Topology


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for a worker's web server)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class GroupOffsets:
    """Committed offsets of a consumer group and end offsets of the input topics."""

    def __init__(self, settings: Settings, topology: Topology, group: str) -> None:
        self.consumer = Consumer(confluent_config(settings, **{
            "group.id": group, "enable.auto.commit": False}))
        self.tps = [TopicPartition(topology.name(t), p)
                    for t in INPUTS for p in range(topology.partitions)]

    def committed(self) -> int:
        """Sum of the committed offsets (0 where none)."""
        return sum(max(offset, 0) for offset in committed_offsets(self.consumer, self.tps))

    def ends(self) -> int:
        """Sum of the end offsets."""
        return sum(self.consumer.get_watermark_offsets(tp, timeout=15, cached=False)[1]
                   for tp in self.tps)

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()


@dataclass
class WorkerFigures:
    """What one worker run measured."""

    guarantee: str
    records: int
    #: from starting the process to every input record committed
    seconds_to_zero_lag: float
    #: from starting the process to the first committed offset
    startup_seconds: float
    #: records per second between the first committed offset and zero lag
    throughput: float
    #: records / seconds_to_zero_lag (start-up included)
    overall_throughput: float
    peak_rss_bytes: int | None
    rocksdb_bytes: int
    #: wall seconds per stage of batch processing, from the worker's /metrics at zero lag
    stage_seconds: dict[str, float] = field(default_factory=dict)
    #: bytes of its tables' changelogs on the broker's disk at zero lag (None: the broker
    #: is not the local one)
    changelog_bytes: int | None = None


def worker_settings(settings: Settings, guarantee: str) -> Settings:
    """The settings of the benchmark's worker with this guarantee (its own app id, so group,
    changelogs and state directory are its own)."""
    return replace(settings, app_id=f"{settings.app_id}-{_tag(guarantee)}",
                   processing_guarantee=guarantee)


def _tag(guarantee: str) -> str:
    return "eos" if guarantee == "exactly_once" else "alos"


def run_worker(settings: Settings, topology: Topology, guarantee: str, workdir: Path,
               timeout: float = 1800.0, batch_size: int = 2000,
               keep_state: bool = False, port: int | None = None) -> WorkerFigures:
    """Run a worker with a fresh group over the inputs until zero lag, stop it, measure.

    It listens on ``port`` (default: a free one); its local state, in
    ``data_dir_for(worker_settings(settings, guarantee), port)``, is deleted afterwards
    unless ``keep_state``.
    """
    ws = worker_settings(settings, guarantee)
    tag = _tag(guarantee)
    port = port or free_port()
    offsets = GroupOffsets(ws, topology, ws.app_id)
    try:
        total = offsets.ends()
        child = Child(["worker", "--web-port", str(port), "--batch-size", str(batch_size)], ws,
                      workdir / f"worker-{tag}.log")
        began = time.monotonic()
        first: tuple[float, int] | None = None
        rss: int | None = None
        with child:
            while True:
                if not child.alive():
                    raise CrosscheckError(f"the {guarantee} worker exited:\n{child.log_tail()}")
                now = time.monotonic()
                done = offsets.committed()
                rss = peak_rss(child.pid) or rss
                if done and first is None:
                    first = (now, done)
                if done >= total:
                    break
                if now - began > timeout:
                    raise CrosscheckError(f"the {guarantee} worker did not reach zero lag "
                                          f"within {timeout:.0f}s ({done}/{total})")
                time.sleep(0.2)
            finished = time.monotonic()
            rss = peak_rss(child.pid) or rss
            stages = scrape_stages(port)
            state = dir_size(data_dir_for(ws, port))
            changelogs = changelog_bytes(ws)
        if not keep_state:
            shutil.rmtree(data_dir_for(ws, port), ignore_errors=True)
    finally:
        offsets.close()
    assert first is not None
    overall = total / max(finished - began, 1e-3)
    steady = (total - first[1]) / max(finished - first[0], 1e-3) if first[1] < total else overall
    return WorkerFigures(guarantee, total, finished - began, first[0] - began, steady, overall,
                         rss, state, stages, changelogs)
