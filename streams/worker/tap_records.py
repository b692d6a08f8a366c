"""What the batch tap hands the worker: light fetched records, and batches Faust tracks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: the attribute of the Faust app that holds its BatchTap (read by the patched fetch loop)
TAP_ATTRIBUTE = "crosscheck_tap"


class TapMessage:
    """A fetched record of a tapped topic, as the worker reads it: what the runtime, the
    batch loop and ``ack`` use (Faust's ``ConsumerMessage`` sets twenty attributes a record,
    and its ``_to_message`` was the fetch loop's largest cost)."""

    __slots__ = (
        "acked",
        "generation_id",
        "key",
        "offset",
        "partition",
        "topic",
        "tp",
        "value",
    )

    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None,
                 value: bytes | None, tp: Any, generation_id: int) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.tp = tp
        self.generation_id = generation_id
        self.acked = False


class BatchMark:
    """What Faust's set of unacked messages (``Consumer._unacked_messages``, a WeakSet)
    holds for a batch being judged, instead of each of its records: ``wait_empty`` (a
    rebalance, a stop) waits until it is acked. (Adding and discarding each record there
    cost ~2.5 % of the worker's main thread.) Records waiting in the buffer are not tracked:
    none of them is judged while flow is suspended, and they are dropped then."""

    __slots__ = ("__weakref__", "acked", "offset", "refcount", "tp")

    def __init__(self) -> None:
        self.acked = False
        self.refcount = 1
        self.tp = None  # not a record: ``fill_head_gap`` compares tp and offset
        self.offset = -1


class Batch(list[Any]):
    """Records taken from the tap together, with the mark Faust's consumer tracks them by."""

    __slots__ = ("mark",)

    def __init__(self, records: Iterable[Any]) -> None:
        super().__init__(records)
        self.mark = BatchMark()

