"""TailProbe on the real broker: what lies between a position and the end offset of a partition
written by a transactional producer (commit and abort markers, open transactions)."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from streams.clients import confluent_config
from streams.config import Settings
from streams.worker.offsets import TailProbe
from topology.topics import TopicId, Topology

pytestmark = pytest.mark.integration


def test_markers_are_invisible_and_an_open_transaction_is_not(
        settings: Settings, topology: Topology) -> None:
    name = topology.name(TopicId.PAYMENTS)
    producer = Producer(confluent_config(settings, **{
        "transactional.id": f"{settings.app_id}-probe-test"}))
    producer.init_transactions(60)
    probe = TailProbe(settings)

    producer.begin_transaction()
    producer.produce(name, b"committed", b"k", partition=0)
    producer.commit_transaction(60)
    # offset 0: the record, 1: its commit marker; end offset 2
    assert probe.visible_between(name, 0, 0, 2) is True
    assert probe.visible_between(name, 0, 1, 2) is False  # only the marker is left

    producer.begin_transaction()
    producer.produce(name, b"open", b"k", partition=0)
    assert producer.flush(60) == 0
    # offset 2: a record of an open transaction (end offset 3, last stable offset 2): it
    # may still commit, so the partition is not known to be caught up
    assert probe.visible_between(name, 0, 1, 3) is True

    producer.abort_transaction(60)
    # offset 3: the abort marker; the aborted record at 2 is never readable
    assert probe.visible_between(name, 0, 1, 4) is False
