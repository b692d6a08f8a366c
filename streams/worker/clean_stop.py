"""Whether a stopping worker's judged records are all committed (the clean-stop marker).

The worker writes a batch's state to RocksDB before its transaction commits (with undo
records: ``streams/worker/local_state.py``), so a stop is clean only if every record it
judged is covered by the group's committed offsets; what is not is rolled back and judged
again by the next start. (For a state directory of the earlier layout, which had no undo
records, the marker decides whether it is kept: ``lifecycle.prepare_state_dir``.)

* ``settle_commits`` runs when the worker begins to stop, after the last batch is judged and
  acked: it waits for a commit already in flight and commits again. (Faust's final commit
  returns at once, committing nothing, when it finds a periodic commit in flight; that one
  may have taken its offsets before the last ack. Its records were then redone by the next
  start and, being in the local state already, ignored as redeliveries: their outputs were
  lost: 270 of 2,449 mismatches in one CI run of the SIGTERM restart test.)
* ``unsettled`` then checks, against the broker (``require_stable``: pending transactional
  offsets are waited for), that the committed offset of every topic-partition the worker
  judged records of is past the last one. If not, or if the broker cannot tell, the clean
  marker is not written and the worker says so.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

from streams.clients import confluent_config
from streams.config import Settings

log = logging.getLogger("crosscheck.worker")

#: seconds to wait for the group's committed offsets at stop
OFFSETS_TIMEOUT = 15.0

TP = tuple[str, int]


async def settle_commits(app: Any) -> None:
    """Commit every acked record now: wait for a commit in flight (it may have taken its
    offsets before the last ack), then commit (a commit started meanwhile took them after)."""
    consumer = app._consumer  # Faust's, None until the app made one (not made here)
    if consumer is None:
        return
    try:
        await consumer.maybe_wait_for_commit_to_finish()
        await consumer.commit()
    except Exception as exc:  # the check at exit decides what this means for the state
        log.warning("final commit failed: %s", exc)


def uncommitted(judged: dict[TP, int], committed: dict[TP, int | None]) -> list[TP]:
    """The topic-partitions whose committed offset is not past every judged record
    (``judged``: the offset after the last judged record), in order."""
    behind = []
    for tp, after in judged.items():
        offset = committed.get(tp)
        if offset is None or offset < after:
            behind.append(tp)
    return sorted(behind)


def committed_offsets(settings: Settings, group: str, tps: list[TP],
                      timeout: float = OFFSETS_TIMEOUT) -> dict[TP, int | None]:
    """The group's committed offsets of ``tps`` (None: none committed), read stable."""
    from confluent_kafka.admin import AdminClient

    client = AdminClient(confluent_config(settings))
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p) for t, p in tps])
    futures = client.list_consumer_group_offsets([request], require_stable=True,
                                                 request_timeout=timeout)
    result = futures[group].result(timeout=timeout + 1)
    return {(tp.topic, tp.partition): (tp.offset if tp.offset >= 0 else None)
            for tp in result.topic_partitions}


def unsettled(settings: Settings, group: str, judged: dict[TP, int],
              timeout: float = OFFSETS_TIMEOUT) -> str | None:
    """Why the local state of a worker that judged ``judged`` cannot be trusted (None: it
    can: every judged record is committed)."""
    if not judged:
        return None
    try:
        committed = committed_offsets(settings, group, sorted(judged), timeout)
    except Exception as exc:  # KafkaException, a timeout: whatever it is, do not trust
        return f"the group's committed offsets could not be read ({exc})"
    behind = uncommitted(judged, committed)
    if not behind:
        return None
    topic, partition = behind[0]
    return (f"{len(behind)} input partitions were judged beyond their committed offset "
            f"(e.g. {topic}[{partition}]: judged up to {judged[behind[0]]}, committed "
            f"{committed.get(behind[0])})")
