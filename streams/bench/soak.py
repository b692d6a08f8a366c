"""`crosscheck soak`: a long live run that samples the worker's RocksDB size as event time passes.

The bounded-state claim (an order's state goes once no rule can fire for it, so the state
follows the orders that are open, not the history) shown on a real worker: simulated traffic
whose event time runs many times faster than the wall clock (by default 30 days of orders in
10 minutes, so the 7-day ``state_retention`` passes several times over) is published at a
steady rate to topics of the run's own while one exactly-once worker consumes it. Every
``sample_every`` seconds the run notes the worker's RocksDB directory size, its RSS,
the records it has committed, its lowest partition watermark (read from its ``/metrics``),
and how many orders of the traffic are *live* at that watermark (first event seen, last
event less than ``state_retention`` ago): the population the state must follow.

The verdict compares the largest size in the last third of the run with the largest size in
the middle third, both after one retention period of event time: flat state keeps the ratio
near 1, state that grows with history makes it follow the event time (about 1.5 here).
It is a figure to read, not an assertion: these machines are shared and noisy.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from schemas.validation import format_time
from streams.bench.data import Pacer, Record, drop_topics, generate
from streams.bench.heap import load, summary
from streams.bench.heap import text as heap_text
from streams.bench.latency import wait_for_assignment
from streams.bench.procs import Child, current_rss, dir_size
from streams.bench.worker import GroupOffsets, free_port
from streams.clients import admin
from streams.clock import wall_ms
from streams.config import Settings
from streams.errors import CrosscheckError
from streams.simulate.scenario import DAY
from streams.worker.heapprofile import DIR_ENV, EVERY_ENV, FRAMES_ENV
from streams.worker.lifecycle import data_dir_for
from topology.admin import create_topics
from topology.topics import Topology


@dataclass(frozen=True)
class SoakConfig:
    """What `crosscheck soak` was asked to do."""

    #: wall-clock seconds of publishing
    seconds: float = 600.0
    #: events published per second
    rate: float = 1_000.0
    #: event time the orders arrive over (ms)
    span: int = 30 * DAY
    #: seconds between samples
    sample_every: float = 10.0
    seed: int = 1
    keep: bool = False
    workdir: Path | None = None
    #: seconds between the worker's heap snapshots (None: no heap profile)
    heap_every: float | None = None
    #: tracemalloc frame depth of the heap profile
    heap_frames: int = 2


@dataclass
class Sample:
    """One observation of the running worker."""

    elapsed_s: float
    published: int
    committed: int
    #: lowest partition watermark of the worker (epoch ms), None before the first
    watermark: int | None
    #: orders of the traffic whose state must be held at that watermark
    live_orders: int
    rocksdb_bytes: int
    #: of which in write-ahead logs (writes not yet flushed to table files)
    wal_bytes: int
    #: resident set size of the worker at that moment
    rss_bytes: int | None


class LiveOrders:
    """How many orders are live (first event seen, last one within the retention) at a time."""

    def __init__(self, records: list[Record], retention: int) -> None:
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for _, r in records:
            oid, t = r["order_id"], r["event_time"]
            first[oid] = min(first.get(oid, t), t)
            last[oid] = max(last.get(oid, t), t)
        self.spans = [(first[o], last[o] + retention) for o in first]

    def at(self, time_ms: int | None) -> int:
        """Live orders at ``time_ms`` (0 for None)."""
        if time_ms is None:
            return 0
        return sum(1 for begin, end in self.spans if begin <= time_ms < end)


def wal_size(path: Path) -> int:
    """Bytes of RocksDB write-ahead logs (``NNNNNN.log``) under a directory."""
    total = 0
    for f in path.rglob("*.log"):
        with contextlib.suppress(OSError):
            if f.name[:-4].isdigit():
                total += f.stat().st_size
    return total


def lowest_watermark(port: int) -> int | None:
    """The worker's lowest partition watermark from its /metrics, or None."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    values = [s.value for family in text_string_to_metric_families(text)
              if family.name == "crosscheck_watermark_timestamp_seconds"
              for s in family.samples]
    return int(min(values) * 1000) if values else None


def run_soak(settings: Settings, config: SoakConfig,
             log: Any = lambda _: None) -> dict[str, Any]:
    """Run the soak; return the samples and the verdict (see ``verdict``)."""
    started = wall_ms()
    tag = uuid.uuid4().hex[:8]
    ss = replace(settings, topic_prefix=f"{settings.topic_prefix}soak-{tag}.",
                 app_id=f"{settings.app_id}-soak-{tag}", processing_guarantee="exactly_once")
    topology = Topology(ss.partitions, ss.topic_prefix, ss.topic_overrides)
    workdir = config.workdir or settings.home / "soak" / tag
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"generating {int(config.seconds * config.rate):,} events over "
        f"{config.span / DAY:g} days of event time (seed {config.seed})")
    records = generate(int(config.seconds * config.rate), config.seed, ss, span=config.span)
    live = LiveOrders(records, ss.rules.state_retention)
    samples: list[Sample] = []
    port = free_port()
    state_dir = data_dir_for(ss, port)
    caught_up = False
    create_topics(admin(ss), topology)
    offsets = GroupOffsets(ss, topology, ss.app_id)
    heap_dir = workdir / "heap"
    extra_env = heap_env(heap_dir, config) if config.heap_every else {}
    try:
        with Child(["worker", "--web-port", str(port)], ss, workdir / "worker.log",
                   extra_env) as child:
            wait_for_assignment(ss, child)
            pacer = Pacer(ss, records, config.rate)
            began = time.monotonic()
            pacer.start()

            def sample() -> Sample:
                wm = lowest_watermark(port)
                s = Sample(round(time.monotonic() - began, 1), pacer.sent, offsets.committed(),
                           wm, live.at(wm), dir_size(state_dir), wal_size(state_dir),
                           current_rss(child.pid))
                samples.append(s)
                log(f"{s.elapsed_s:7.1f}s  published {s.published:>9,}  committed "
                    f"{s.committed:>9,}  watermark {format_time(wm) if wm else '-':24}  "
                    f"live orders {s.live_orders:>7,}  rocksdb {s.rocksdb_bytes / 2**20:7.1f} MiB "
                    f"(WAL {s.wal_bytes / 2**20:.1f})  RSS "
                    f"{'-' if s.rss_bytes is None else f'{s.rss_bytes / 2**20:.0f} MiB'}")
                return s

            while True:
                if not child.alive():
                    raise CrosscheckError(f"the soak worker exited:\n{child.log_tail()}")
                if sample().committed >= len(records) and not pacer.is_alive():
                    caught_up = True
                    break
                if not pacer.is_alive() and time.monotonic() - began > 2 * config.seconds + 300:
                    log("the worker did not catch up in time; stopping it")
                    break
                time.sleep(config.sample_every)
            if pacer.error:
                raise CrosscheckError(pacer.error)
        if not config.keep:
            shutil.rmtree(state_dir, ignore_errors=True)
    finally:
        offsets.close()
        if not config.keep:
            dropped = drop_topics(settings, [ss.topic_prefix, ss.app_id])
            log(f"dropped {len(dropped)} topics of the run")
    heap_summary = summary(load(heap_dir)) if config.heap_every else None
    return {"version": 1, "started_at": format_time(started), "caught_up": caught_up,
            "events": len(records), "partitions": ss.partitions,
            "config": {k: str(v) if isinstance(v, Path) else v
                       for k, v in asdict(config).items()},
            "state_retention_ms": ss.rules.state_retention,
            "samples": [asdict(s) for s in samples],
            "verdict": verdict(samples, ss.rules.state_retention),
            **({"heap": heap_summary} if heap_summary is not None else {})}


def heap_env(directory: Path, config: SoakConfig) -> dict[str, str]:
    """The environment that makes the soak's worker write a heap profile into ``directory``."""
    shutil.rmtree(directory, ignore_errors=True)
    return {DIR_ENV: str(directory), EVERY_ENV: f"{config.heap_every:g}",
            FRAMES_ENV: str(config.heap_frames)}


def verdict(samples: list[Sample], retention: int) -> dict[str, Any]:
    """Largest RocksDB size in the middle and last thirds of the samples past one retention.

    ``ratio`` = last / middle: near 1 when the state is flat; None when too few samples
    lie past one retention period of event time (run longer or over a longer span).
    """
    with_wm = [s for s in samples if s.watermark is not None]
    if not with_wm:
        return {"ratio": None, "reason": "no watermark was ever read"}
    start = with_wm[0].watermark
    assert start is not None
    steady = [s for s in with_wm if s.watermark is not None and s.watermark >= start + retention]
    if len(steady) < 6:
        return {"ratio": None, "reason": f"only {len(steady)} samples past one retention "
                                         "period of event time; run longer or over a longer span"}
    third = len(steady) // 3
    middle, last = steady[third:2 * third], steady[2 * third:]
    mid_max = max(s.rocksdb_bytes for s in middle)
    last_max = max(s.rocksdb_bytes for s in last)
    rss_mid = max((s.rss_bytes or 0 for s in middle), default=0)
    rss_last = max((s.rss_bytes or 0 for s in last), default=0)
    return {"ratio": round(last_max / max(mid_max, 1), 3),
            "middle_max_bytes": mid_max, "last_max_bytes": last_max,
            "rss_ratio": round(rss_last / rss_mid, 3) if rss_mid else None,
            "middle_max_rss_bytes": rss_mid or None, "last_max_rss_bytes": rss_last or None,
            "middle_live_orders": max(s.live_orders for s in middle),
            "last_live_orders": max(s.live_orders for s in last),
            "steady_samples": len(steady)}


def table(results: dict[str, Any]) -> str:
    """The samples and the verdict as text."""
    lines = [f"{'elapsed':>8}  {'committed':>10}  {'watermark':24}  {'live orders':>11}  "
             f"{'RocksDB MiB':>11}  {'of it WAL':>9}  {'RSS MiB':>8}"]
    for s in results["samples"]:
        wm = format_time(s["watermark"]) if s["watermark"] else "-"
        rss = f"{s['rss_bytes'] / 2**20:8.0f}" if s["rss_bytes"] else f"{'-':>8}"
        lines.append(f"{s['elapsed_s']:7.1f}s  {s['committed']:>10,}  {wm:24}  "
                     f"{s['live_orders']:>11,}  {s['rocksdb_bytes'] / 2**20:11.1f}  "
                     f"{s['wal_bytes'] / 2**20:9.1f}  {rss}")
    v = results["verdict"]
    if v.get("ratio") is None:
        lines.append(f"verdict: none ({v['reason']})")
    else:
        lines.append(f"verdict: largest RocksDB size in the last third / the middle third "
                     f"(past one retention period) = {v['ratio']} "
                     f"({v['last_max_bytes'] / 2**20:.1f} / {v['middle_max_bytes'] / 2**20:.1f} "
                     f"MiB; live orders {v['last_live_orders']:,} / "
                     f"{v['middle_live_orders']:,})")
        if v.get("rss_ratio") is not None:
            lines.append(f"         RSS, the same way: {v['rss_ratio']} "
                         f"({v['last_max_rss_bytes'] / 2**20:.0f} / "
                         f"{v['middle_max_rss_bytes'] / 2**20:.0f} MiB)")
    if results.get("heap") is not None:
        lines.append(heap_text(results["heap"]))
    return "\n".join(lines)
