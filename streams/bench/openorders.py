"""Open-orders phase of the benchmark: one worker holding N orders that are all still undecided.

Each order is one PLACED event (one line of 1-3 items). The orders arrive over
OPEN_SPAN of event time, less than every rule's timeout (the payment timeout, 15 minutes by
default, comes first), so when the worker reaches zero lag none of them has been decided:
each is held with its history, its pending payment-timeout decision and its due-index
entries, which is the state a busy shop's worker carries between an order and its payment.
The phase reports the worker's peak RSS and RocksDB size with that population (the
target: 1,000,000 open orders within 400 MB RSS).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from streams.bench.data import Record, preload
from streams.bench.worker import free_port, run_worker, worker_settings
from streams.clients import admin
from streams.clock import wall_ms
from streams.config import Settings
from topology.admin import create_topics
from topology.topics import TopicId, Topology

#: event time over which the open orders arrive: below every rule's timeout
OPEN_SPAN = 10 * 60_000
#: the memory target for 1,000,000 open orders
RSS_TARGET_BYTES = 400 * 1000 * 1000
_SKUS = [f"SKU-{i:04d}" for i in range(200)]


def open_orders(count: int, start: int, seed: int, span: int = OPEN_SPAN) -> Iterator[Record]:
    """``count`` PLACED events of distinct orders, in event-time order over ``span``."""
    rng = random.Random(seed)
    tag = uuid.UUID(int=rng.getrandbits(128)).hex[:4].upper()
    for i in range(count):
        lines = [(rng.choice(_SKUS), rng.randint(1, 3), rng.randint(100, 50_000))
                 for _ in range(rng.randint(1, 3))]
        items = [{"sku": sku, "quantity": q, "unit_price": price} for sku, q, price in lines]
        yield TopicId.ORDERS, {
            "event_id": f"EV-{tag}-{i:07d}-01",
            "order_id": f"ORD-{tag}-{i:07d}",
            "type": "PLACED",
            "event_time": start + i * span // max(count, 1),
            "user_id": f"U-{rng.randint(1, 10**6):07d}",
            "items": items,
            "total_amount": sum(q * price for _sku, q, price in lines),
            "currency": "CNY",
        }


@dataclass
class OpenOrdersFigures:
    """What the open-orders phase measured."""

    orders: int
    publish_seconds: float
    seconds_to_zero_lag: float
    throughput: float
    peak_rss_bytes: int | None
    rocksdb_bytes: int
    #: records in the phase's mismatches topic at the end: 0 (else the orders were not open)
    mismatch_offsets: int
    rss_target_bytes: int = RSS_TARGET_BYTES
    #: bytes of its changelogs on the broker's disk at zero lag (None: not the local broker)
    changelog_bytes: int | None = None


@dataclass(frozen=True)
class LoadedWorker:
    """The open-orders phase's exactly-once worker, stopped at zero lag with its state kept:
    what the recovery phase starts again."""

    #: the worker's settings (the phase's topics, its app id and group)
    settings: Settings
    topology: Topology
    #: its web port, which names its state directory (``data_dir_for``)
    port: int
    #: the event time of the first open order (the orders arrive over ``OPEN_SPAN``)
    start: int


def measure_open_orders(settings: Settings, count: int, seed: int, workdir: Path,
                        keep_state: bool = False) -> tuple[dict[str, Any], LoadedWorker]:
    """Publish ``count`` open orders to topics of their own, run an exactly-once worker to
    zero lag over them, and return its figures (``OpenOrdersFigures`` as a dict) and the
    worker (its local state deleted unless ``keep_state``)."""
    tag = uuid.uuid4().hex[:6]
    os_ = replace(settings, topic_prefix=f"{settings.topic_prefix}open-{tag}.",
                  app_id=f"{settings.app_id}-open-{tag}")
    topology = Topology(os_.partitions, os_.topic_prefix, os_.topic_overrides)
    create_topics(admin(os_), topology)
    start = wall_ms() - OPEN_SPAN  # recent: the orders would be open now in a real shop
    loaded = preload(os_, open_orders(count, start, seed), flush_timeout=600.0)
    port = free_port()
    figures = run_worker(os_, topology, "exactly_once", workdir, timeout=3600.0,
                         keep_state=keep_state, port=port)
    result = OpenOrdersFigures(count, loaded.seconds, figures.seconds_to_zero_lag,
                               figures.throughput, figures.peak_rss_bytes,
                               figures.rocksdb_bytes, _end_offsets(os_, topology),
                               changelog_bytes=figures.changelog_bytes)
    worker = LoadedWorker(worker_settings(os_, "exactly_once"), topology, port, start)
    return ({k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(result).items()},
            worker)


def _end_offsets(settings: Settings, topology: Topology) -> int:
    """Sum of the end offsets of the mismatches topic (0: never written to)."""
    from confluent_kafka import Consumer, TopicPartition

    from streams.clients import confluent_config

    consumer = Consumer(confluent_config(settings, **{"group.id": f"{settings.app_id}-ends"}))
    try:
        name = topology.name(TopicId.MISMATCHES)
        partitions = consumer.list_topics(name, timeout=15).topics[name].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(name, p), timeout=15,
                                                  cached=False)[1] for p in partitions)
    finally:
        consumer.close()
