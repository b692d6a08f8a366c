"""What `crosscheck ingest` counts per input: read, mapped, skipped (by reason), dead-lettered,
moved; as a summary line and as Prometheus counters on ``/metrics``."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass
class IngestStats:
    """Counters of one ingest process since it started (keys: the input, e.g. "payments")."""

    read: Counter[str] = field(default_factory=Counter)
    mapped: Counter[str] = field(default_factory=Counter)
    #: (input, reason) -> records that map to no event: "tombstone", "delete", "status
    #: unchanged", "status pending is skipped", ...
    skipped: Counter[tuple[str, str]] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    #: records whose order id is on another partition than the one they came from
    moved: Counter[str] = field(default_factory=Counter)
    transactions: int = 0
    aborted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def snapshot(self) -> tuple[Counter[Any], ...]:
        """Copies of the per-record counters (to take back a batch that is read again)."""
        with self.lock:
            return tuple(Counter(c) for c in (self.read, self.mapped, self.skipped,
                                              self.dead_letters, self.moved))

    def restore(self, saved: tuple[Counter[Any], ...]) -> None:
        """The per-record counters as ``snapshot`` took them."""
        with self.lock:
            self.read, self.mapped, self.skipped, self.dead_letters, self.moved = saved

    def skipped_by_input(self) -> Counter[str]:
        """Skipped records per input, every reason together."""
        total: Counter[str] = Counter()
        for (name, _reason), count in self.skipped.items():
            total[name] += count
        return total

    def summary(self) -> str:
        """One line: the totals, and the skip reasons."""
        with self.lock:
            reasons: Counter[str] = Counter()
            for (_name, reason), count in self.skipped.items():
                reasons[reason] += count
            parts = [f"read {sum(self.read.values())}", f"mapped {sum(self.mapped.values())}",
                     f"skipped {sum(reasons.values())}"
                     + (f" ({', '.join(f'{r} {n}' for r, n in sorted(reasons.items()))})"
                        if reasons else ""),
                     f"dead-lettered {sum(self.dead_letters.values())}"]
            if self.moved:
                parts.append(f"moved to their order's partition {sum(self.moved.values())}")
            parts.append(f"transactions {self.transactions}")
            if self.aborted:
                parts.append(f"aborted {self.aborted}")
        return ", ".join(parts)


class StatsCollector(Collector):
    """Reads the counters at scrape time."""

    def __init__(self, stats: IngestStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        with s.lock:
            for name, counter, doc in (
                    ("read", s.read, "source records read"),
                    ("mapped", s.mapped, "source records mapped onto an event and written"),
                    ("dead_letters", s.dead_letters, "source records that did not map"),
                    ("moved", s.moved, "records written to another partition number than "
                                       "their source partition (the source is not keyed "
                                       "by order id with murmur2)")):
                family = CounterMetricFamily(f"crosscheck_ingest_{name}", doc, labels=["input"])
                for label, value in sorted(counter.items()):
                    family.add_metric([label], value)
                yield family
            skipped = CounterMetricFamily("crosscheck_ingest_skipped",
                                          "source records that map to no event",
                                          labels=["input", "reason"])
            for (label, reason), value in sorted(s.skipped.items()):
                skipped.add_metric([label, reason], value)
            yield skipped
            yield CounterMetricFamily("crosscheck_ingest_transactions",
                                      "transactions committed", value=s.transactions)
            yield CounterMetricFamily("crosscheck_ingest_aborted",
                                      "transactions aborted (their records are read again)",
                                      value=s.aborted)


def serve_metrics(stats: IngestStats, port: int, bind: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` (Prometheus text) from a daemon thread."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(StatsCollector(stats))
    start_http_server(port, addr=bind, registry=registry)
