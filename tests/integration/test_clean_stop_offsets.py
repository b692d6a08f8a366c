"""The clean-stop check against the real broker: the group's committed offsets decide whether
a stopped worker's local state is kept."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, TopicPartition

from streams.clients import confluent_config
from streams.config import Settings
from streams.worker.clean_stop import committed_offsets, unsettled
from topology.topics import TopicId, Topology

pytestmark = pytest.mark.integration


def test_kept_only_when_the_commits_cover_every_judged_record(
        settings: Settings, topology: Topology) -> None:
    name = topology.name(TopicId.PAYMENTS)
    group = f"{settings.app_id}-clean-stop"
    judged = {(name, 0): 3, (name, 1): 2}
    reason = unsettled(settings, group, judged)
    assert reason is not None and "2 input partitions" in reason

    consumer = Consumer(confluent_config(settings, **{"group.id": group}))
    try:
        consumer.commit(offsets=[TopicPartition(name, 0, 3), TopicPartition(name, 1, 1)],
                        asynchronous=False)
    finally:
        consumer.close()
    assert committed_offsets(settings, group, sorted(judged)) == {(name, 0): 3, (name, 1): 1}
    reason = unsettled(settings, group, judged)
    assert reason is not None and f"{name}[1]: judged up to 2, committed 1" in reason
    assert unsettled(settings, group, {(name, 0): 3, (name, 1): 1}) is None
