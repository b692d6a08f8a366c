"""What the recovery phase polls: workers' /health and the group's committed input offsets."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from streams.bench.procs import Child
from streams.clients import confluent_config
from streams.config import Settings
from streams.errors import CrosscheckError
from streams.replay.offsets import committed_offsets
from topology.topics import INPUTS, Topology

#: seconds between two looks
POLL_S = 0.1


def health_doc(port: int) -> dict[str, Any] | None:
    """A worker's /health document (its body also when it answers 503), None if it does
    not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            doc = json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # 503 while not ready: the body says why
        doc = None
        with contextlib.suppress(Exception):
            doc = json.loads(exc.read())
    except Exception:
        return None
    return doc if isinstance(doc, dict) else None


def holding(doc: dict[str, Any] | None, partitions: Collection[int]) -> bool:
    """Whether a /health document says ready, owning (at least) these input partitions."""
    return (doc is not None and doc.get("ready") is True
            and set(partitions) <= set(doc.get("partitions") or []))


def settled(docs: list[dict[str, Any] | None], partitions: int) -> bool:
    """Whether every worker's /health says ready and together they own each input partition
    exactly once."""
    if any(d is None or d.get("ready") is not True for d in docs):
        return False
    owned = sorted(p for d in docs if d is not None for p in d.get("partitions") or [])
    return owned == list(range(partitions))


class Watch:
    """The group's committed offsets and the end offsets of its input topics, by partition."""

    def __init__(self, settings: Settings, topology: Topology) -> None:
        self.partitions = topology.partitions
        self.consumer = Consumer(confluent_config(settings, **{
            "group.id": settings.app_id, "enable.auto.commit": False}))
        self.tps = [TopicPartition(topology.name(t), p)
                    for t in INPUTS for p in range(topology.partitions)]

    def _of(self, partitions: Collection[int] | None) -> list[TopicPartition]:
        return [tp for tp in self.tps if partitions is None or tp.partition in partitions]

    def committed(self, partitions: Collection[int] | None = None) -> int:
        """Sum of the committed offsets of the inputs (of these partitions; 0 where none)."""
        return sum(max(o, 0) for o in committed_offsets(self.consumer, self._of(partitions)))

    def ends(self, partitions: Collection[int] | None = None) -> int:
        """Sum of the end offsets of the inputs (of these partitions)."""
        return sum(self.consumer.get_watermark_offsets(tp, timeout=15, cached=False)[1]
                   for tp in self._of(partitions))

    def settle(self, workers: list[tuple[Child, int]], timeout: float) -> None:
        """Wait until the workers (child, web port) are ready, own every partition between
        them, and the group is at zero lag."""
        deadline = time.monotonic() + timeout
        while True:
            for child, _port in workers:
                if not child.alive():
                    raise CrosscheckError(f"a worker exited:\n{child.log_tail()}")
            if settled([health_doc(port) for _c, port in workers], self.partitions) \
                    and self.committed() >= self.ends():
                return
            if time.monotonic() > deadline:
                raise CrosscheckError(f"the workers did not settle within {timeout:.0f} s:\n"
                                      + "\n".join(c.log_tail(10) for c, _p in workers))
            time.sleep(POLL_S)

    def until(self, since: float, timeout: float, child: Child,
              conditions: dict[str, Callable[[], bool]]) -> dict[str, float | None]:
        """Seconds from ``since`` (a time.monotonic()) to each condition first being true,
        looking every POLL_S while ``child`` lives; None for those not met in ``timeout``."""
        met: dict[str, float | None] = dict.fromkeys(conditions)
        while any(v is None for v in met.values()):
            if not child.alive():
                raise CrosscheckError(f"the worker exited:\n{child.log_tail()}")
            for name, condition in conditions.items():
                if met[name] is None and condition():
                    met[name] = time.monotonic() - since
            if time.monotonic() - since > timeout:
                break
            time.sleep(POLL_S)
        return met

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()
