"""`crosscheck bench`: every phase in one run, on one broker, over the same pre-loaded events.

1. generate N events with the simulator and publish them to topics of the run's own
   (prefix ``<prefix>bench-<tag>.``);
2. ceiling: a raw confluent-kafka consumer reads and Avro-decodes them;
3. the worker (``crosscheck worker`` subprocess, fresh group) from start to zero lag, with
   exactly-once and then at-least-once: throughput, peak RSS, RocksDB size;
4. replay (``crosscheck replay`` subprocess over the whole range, into files): throughput;
5. decision latency with a worker on fresh topics and paced traffic (``latency``), from
   traffic of its own with more faults (3 % each) for enough mismatches to measure;
6. open orders: an exactly-once worker loaded with N undecided orders, its peak RSS and
   RocksDB size (``openorders``);
7. recovery: that worker SIGKILLed and restarted with its state kept and deleted as a
   static group member, with its state kept as a dynamic one, and with a second worker
   taking its partitions over, under each of a few group session timeouts (``recovery``).

The run's topics, worker state and replay state are deleted at the end unless kept.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from schemas.validation import format_time
from streams.bench.data import LATENCY_FAULT_RATE, ceiling, drop_topics, generate, preload
from streams.bench.latency import measure_latency
from streams.bench.openorders import measure_open_orders
from streams.bench.procs import Child, dir_size, peak_rss
from streams.bench.recovery import SESSION_TIMEOUTS, measure_recovery
from streams.bench.report import machine
from streams.bench.worker import run_worker
from streams.clients import admin
from streams.clock import wall_ms
from streams.config import Settings
from streams.errors import CrosscheckError
from streams.worker.lifecycle import data_dir_for
from topology.admin import create_topics
from topology.topics import Topology


@dataclass(frozen=True)
class BenchConfig:
    """What `crosscheck bench` was asked to do."""

    events: int = 1_000_000
    seed: int = 1
    #: events published at ``latency_rate`` per second in the latency phase
    latency_events: int = 100_000
    latency_rate: float = 5_000.0
    #: undecided orders the open-orders phase loads one worker with (0: no such phase)
    open_orders: int = 1_000_000
    #: the group session timeouts the recovery phase runs under, after the open-orders
    #: phase (empty: no recovery phase)
    recovery_session_timeouts: tuple[float, ...] = SESSION_TIMEOUTS
    batch_size: int = 2_000
    keep: bool = False
    workdir: Path | None = None


def run_bench(settings: Settings, config: BenchConfig,
              log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run every phase; return the results (see ``report.table`` for their shape)."""
    began = time.monotonic()
    tag = uuid.uuid4().hex[:8]
    bs = replace(settings, topic_prefix=f"{settings.topic_prefix}bench-{tag}.",
                 app_id=f"{settings.app_id}-bench-{tag}")
    topology = Topology(bs.partitions, bs.topic_prefix, bs.topic_overrides)
    workdir = config.workdir or settings.home / "bench" / tag
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "version": 1, "started_at": format_time(wall_ms()), "machine": machine(bs),
        "events": config.events, "partitions": bs.partitions,
        "config": {k: str(v) if isinstance(v, Path) else v
                   for k, v in dataclasses.asdict(config).items()},
    }
    try:
        create_topics(admin(bs), topology)
        log(f"generating {config.events:,} events (seed {config.seed})")
        records = generate(config.events, config.seed, bs)
        log(f"publishing them to {bs.topic_prefix}*")
        loaded = preload(bs, records)
        del records
        results["preload"] = {"events": loaded.events, "seconds": round(loaded.seconds, 3),
                              "events_per_s": round(loaded.rate)}
        log("ceiling: raw consumer + Avro decode")
        count, seconds, with_startup = ceiling(bs, topology, loaded.events)
        results["ceiling"] = {"records": count, "seconds": round(seconds, 3),
                              "seconds_with_startup": round(with_startup, 3),
                              "records_per_s": round(count / max(seconds, 1e-3))}
        results["worker"] = {}
        for guarantee in ("exactly_once", "at_least_once"):
            log(f"worker, {guarantee}: from start to zero lag")
            figures = run_worker(bs, topology, guarantee, workdir, batch_size=config.batch_size,
                                 keep_state=config.keep)
            results["worker"][guarantee] = _rounded(dataclasses.asdict(figures))
        log("replay over the whole range")
        results["replay"] = _replay(bs, loaded.first_time, loaded.last_time + 1, workdir, tag,
                                    config.keep)
        if config.latency_events:
            log(f"decision latency: {config.latency_events:,} events at "
                f"{config.latency_rate:,.0f}/s")
            latency_records = generate(config.latency_events, config.seed + 1, bs,
                                       LATENCY_FAULT_RATE)
            lat = measure_latency(bs, latency_records, config.latency_rate, workdir)
            results["latency"] = _rounded(dataclasses.asdict(lat))
        if config.open_orders:
            log(f"open orders: one worker loaded with {config.open_orders:,} undecided orders")
            recover = bool(config.recovery_session_timeouts)
            results["open_orders"], held = measure_open_orders(
                bs, config.open_orders, config.seed + 2, workdir,
                keep_state=recover or config.keep)
            if recover:
                log("recovery: that worker SIGKILLed and restarted (state kept, state "
                    "deleted, as a dynamic member), then taken over by a second worker")
                try:
                    results["recovery"] = measure_recovery(
                        held, config.open_orders, workdir, config.batch_size,
                        config.recovery_session_timeouts, log)
                finally:
                    if not config.keep:
                        shutil.rmtree(data_dir_for(held.settings, held.port),
                                      ignore_errors=True)
    finally:
        if not config.keep:
            dropped = drop_topics(settings, [bs.topic_prefix, bs.app_id])
            log(f"dropped {len(dropped)} topics of the run")
            shutil.rmtree(workdir / "replay-out", ignore_errors=True)
    results["total_seconds"] = round(time.monotonic() - began, 1)
    return results


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in values.items()}


def _replay(settings: Settings, start: int, end: int, workdir: Path, tag: str,
            keep: bool) -> dict[str, Any]:
    """`crosscheck replay` over [start, end) into files; its throughput and peak RSS."""
    name = f"bench-{tag}"
    out = workdir / "replay-out"
    child = Child(["replay", "--from", str(start), "--to", str(end), "--name", name,
                   "--out", str(out), "--json", "--quiet"], settings, workdir / "replay.log")
    rss: int | None = None
    state = settings.home / "replay" / name
    size = 0
    with child:
        while child.alive():
            rss = peak_rss(child.pid) or rss
            size = max(size, dir_size(state))
            time.sleep(0.2)
    code = child.proc.returncode if child.proc else None
    lines = [ln for ln in child.log_tail(200).splitlines() if ln.startswith("{")]
    if code != 0 or not lines:
        raise CrosscheckError(f"the replay failed ({code}):\n{child.log_tail()}")
    result = json.loads(lines[-1])
    if not keep:
        shutil.rmtree(state, ignore_errors=True)
    return {"records": result["records"], "seconds": result["seconds"],
            "records_per_s": round(result["records"] / max(result["seconds"], 1e-3)),
            "mismatches": result["mismatches"], "commands": result["commands"],
            "peak_rss_bytes": rss, "state_bytes": size}
