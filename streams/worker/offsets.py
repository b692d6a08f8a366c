"""Offsets no read_committed consumer sees (transaction markers, aborted records): workarounds.

Faust commits a partition's offsets only up to the first gap in the offsets its streams
acknowledged. On a topic written by transactional producers (the metrics partials: every
transaction leaves a commit or abort marker, and a killed worker leaves aborted records),
read_committed consumers never see some offsets, and Faust registers such gaps only while
it knows the offset it read last. After a restart it may not: when the partition was
fetched before Faust's "seek to committed offsets" (which resets that knowledge), the
invisible offsets between the committed offset and the first record delivered are never
registered. Faust then refuses every later commit of the partition ("gap at the head"),
so the transaction of the agent consuming it never commits: its outputs stay invisible to
read_committed readers, and are aborted when the transaction times out.

``fill_head_gap`` registers that gap, when it is certain to hold only invisible offsets:
no record of the partition below the head has been delivered and is still unacknowledged
(records of one partition are delivered in offset order), and Faust has not registered it
itself. A registered gap only ever covers offsets no stream will ack. It reads and writes
Faust's private offset bookkeeping (``docs/faust.md``): on a consumer without it, it raises
FaustCouplingError (the aggregator's batch then ends the worker) instead of switching off.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from streams.clients import confluent_config
from streams.config import Settings
from streams.worker.faust_guard import DOC, FaustCouplingError

log = logging.getLogger("crosscheck.worker")


async def fill_head_gap(app: Any, message: Any) -> bool:
    """Before processing `message`: register invisible offsets between its partition's
    committed offset and the lowest offset delivered since. True if a gap was added."""
    consumer = app.consumer
    try:
        if consumer._commit_fut is not None:
            # a running commit has taken its offsets out of `acked` but not yet put them
            # into `committed`: look once it is done (no await from here on)
            await consumer.maybe_wait_for_commit_to_finish()
        tp = message.tp
        committed = consumer._committed_offset.get(tp)
        acked = consumer._acked.get(tp) or ()
        unacked = consumer._unacked_messages
        add_gap = consumer._add_gap
        gaps = consumer._gap.get(tp)
    except AttributeError as exc:  # another Faust (run with the guard overridden)
        raise FaustCouplingError(f"the head-gap fix of the metrics aggregator cannot apply to "
                                 f"this Faust's consumer ({exc}); see {DOC}") from exc
    if not committed:  # None or 0: Faust does not look for a head gap then
        return False
    head = min(message.offset, min(acked)) if acked else message.offset
    if head - committed <= 1 or (gaps and gaps.overlaps(committed + 1)):
        return False  # no gap at the head, or Faust knows it
    if any(m.tp == tp and m.offset < head for m in list(unacked)):
        return False  # a record below the head is still being processed
    await add_gap(tp, committed, head - 1)
    log.info("%s[%d]: offsets %d..%d not delivered (transaction markers or aborted "
             "records): registered as a gap", tp.topic, tp.partition, committed, head - 1)
    return True


class TailProbe:
    """Whether the offsets between a partition's processed position and its end offset hold
    any record a read_committed consumer would see.

    An input written by a transactional producer ends with a commit marker: an offset that
    no consumer ever receives. The worker's processed position then stays below the log's
    end offset for good, the input never counts as caught up, is never ticked idle, and the
    watermark waits for it forever. When such an input has been quiet for the idle timeout,
    this reads [position, end) read_committed with a consumer of its own (blocking: call it
    in a thread); if it finds no record there, the partition is caught up at ``end``. Reading
    the log itself, not Faust's buffers, leaves no race with records being delivered.
    """

    def __init__(self, settings: Settings, timeout: float = 5.0) -> None:
        self._settings = settings
        self._timeout = timeout
        self._consumer: Any = None

    def visible_between(self, topic: str, partition: int, start: int, end: int) -> bool:
        """True if a committed record has an offset in [start, end), or if that is unknown."""
        from confluent_kafka import Consumer, KafkaError, TopicPartition

        if self._consumer is None:
            self._consumer = Consumer(confluent_config(self._settings, **{
                "group.id": f"{self._settings.app_id}-tail-probe",
                "enable.auto.commit": False, "isolation.level": "read_committed",
                "enable.partition.eof": True}))
        consumer = self._consumer
        consumer.assign([TopicPartition(topic, partition, start)])
        deadline = time.monotonic() + self._timeout
        try:
            while time.monotonic() < deadline:
                for msg in consumer.consume(num_messages=10, timeout=0.2):
                    error = msg.error()
                    if error is None:
                        return bool(msg.offset() < end)
                    if error.code() == KafkaError._PARTITION_EOF:
                        # the end of what read_committed readers see now: the last stable
                        # offset. Below `end`, an open transaction holds records that may
                        # still commit: not known to be invisible.
                        return bool(msg.offset() < end)
            return True
        finally:
            consumer.unassign()
