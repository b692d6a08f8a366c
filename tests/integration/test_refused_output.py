"""Real-broker test: an output record the broker refuses never lets its input offsets commit."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from streams.clients import confluent_config
from streams.config import Settings
from streams.verify import sort_records
from streams.worker.delivery import DELIVERY_EXIT_CODE
from tests.integration.scenarios import Outputs, mixed_scenario
from tests.integration.worker_support import (
    FAST_GROUP_ENV,
    Progress,
    assert_no_duplicates,
    assert_same,
    free_port,
    produce,
    read_outputs,
    running_worker,
    start_worker,
    wait_until_judged,
)
from topology.partitioner import partition_for
from topology.topics import TopicId, Topology

pytestmark = pytest.mark.integration


def set_max_message_bytes(settings: Settings, topic: str, size: int) -> None:
    """Change a topic's max.message.bytes (the largest record batch the broker accepts)."""
    client = AdminClient(confluent_config(settings))
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("max.message.bytes", str(size),
                    incremental_operation=AlterConfigOpType.SET)])
    for future in client.incremental_alter_configs([resource]).values():
        future.result(30)


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_a_refused_output_is_never_committed_past(settings: Settings, topology: Topology,
                                                  tmp_path: Path, guarantee: str) -> None:
    """The dead-letter topic accepts at most 2 KiB per batch and a 6 KiB bad input record
    arrives: the broker refuses its dead letter. aiokafka alone would commit the
    transaction without it (the dead letter lost, its input offset committed); the worker
    instead exits with DELIVERY_EXIT_CODE before that offset commits. Once the topic takes
    the record, the restarted worker writes it exactly once, and every other output is
    the clean run's. At-least-once (whose batches are acked only when their deliveries
    settle, while the next batch is judged): the same exit and no offset past the refused
    record; the restarted worker writes the dead letter, and the outputs are the clean
    run's, some perhaps twice."""
    args = ("--processing-guarantee", guarantee)
    scenario = mixed_scenario(300, seed=31)
    produce(settings, scenario.in_time_order())
    dlq = topology.name(TopicId.DLQ)
    set_max_message_bytes(settings, dlq, 2048)
    payments = topology.name(TopicId.PAYMENTS)
    order_id = scenario.lines[0].order_id
    partition = partition_for(order_id, topology.partitions)
    producer = Producer(confluent_config(settings))
    producer.produce(payments, b"\x07not avro " + b"x" * 6000, order_id.encode(),
                     partition=partition)
    assert producer.flush(30) == 0
    progress = Progress(settings, topology)
    bad_offset = progress.ends([(payments, partition)])[(payments, partition)] - 1
    log = tmp_path / "worker.log"
    port = free_port()
    try:
        tp = (payments, partition)
        first = start_worker(settings, log, port=port, extra_env=FAST_GROUP_ENV,
                             extra_args=args)
        try:
            deadline = time.monotonic() + 180
            while first.alive() and time.monotonic() < deadline:
                committed = progress.committed([tp])[tp]
                assert committed <= bad_offset, \
                    f"offset {committed} committed past the refused record\n{first.log_tail()}"
                time.sleep(0.5)
        finally:
            first.terminate()
        assert first.proc.returncode == DELIVERY_EXIT_CODE, first.log_tail()
        assert "refused by the broker" in log.read_text(), first.log_tail()
        assert progress.committed([tp])[tp] <= bad_offset
        assert not read_outputs(settings, topology).dead_letters

        set_max_message_bytes(settings, dlq, 1_048_588)
        with running_worker(settings, log, port=port, extra_env=FAST_GROUP_ENV,
                            extra_args=args) as second:
            wait_until_judged(second, progress)
            assert second.terminate() == 0, second.log_tail()
    finally:
        progress.close()
    outputs = read_outputs(settings, topology)
    letters = [(d["source_topic"], d["partition"], d["offset"]) for d in outputs.dead_letters]
    if guarantee == "at_least_once":
        assert set(letters) == {(payments, partition, bad_offset)}
        normalized = outputs.normalized()
        assert_same(Outputs(sort_records(list({json.dumps(m, sort_keys=True): m
                                                for m in normalized.mismatches}.values())),
                            sort_records(list({json.dumps(c, sort_keys=True): c
                                               for c in normalized.commands}.values()))),
                    scenario.expected(), f"worker log: {log}")
        return
    assert letters == [(payments, partition, bad_offset)]
    assert_same(outputs.normalized(), scenario.expected(), f"worker log: {log}")
    assert_no_duplicates(outputs)
