"""The worker creates its tables' changelog topics before Faust starts (lifecycle.py), with
the compaction configs of topology/changelogs.py; the bench reads their bytes on disk."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, ResourceType

from streams.bench.changelogs import changelog_bytes
from streams.broker import LocalBroker
from streams.clients import confluent_config
from streams.config import Settings
from streams.names import META_TABLE, METRICS_TABLE, ORDERS_TABLE
from streams.worker.app import create_worker
from streams.worker.faust_app import WorkerOptions
from streams.worker.lifecycle import create_changelogs, discover_partitions
from tests.integration.worker_support import free_port
from topology.changelogs import CHANGELOG_CONFIG

pytestmark = pytest.mark.integration


def test_every_changelog_exists_compacted_before_the_app_starts(
        settings: Settings, tmp_path: Path, local_broker: LocalBroker | None) -> None:
    inputs, outputs = discover_partitions(settings)
    worker = create_worker(settings, WorkerOptions(
        data_dir=tmp_path / "state", web_port=free_port(), input_partitions=inputs,
        output_partitions=outputs, web_enabled=False))
    tables = worker.app.tables
    names = {t: tables[t].changelog_topic.get_topic_name()
             for t in (ORDERS_TABLE, META_TABLE, METRICS_TABLE)}
    assert sorted(create_changelogs(settings, worker.app)) == sorted(names.values())
    assert create_changelogs(settings, worker.app) == []  # once only
    client = AdminClient(confluent_config(settings))
    topics = client.list_topics(timeout=15).topics
    assert len(topics[names[ORDERS_TABLE]].partitions) == inputs
    assert len(topics[names[META_TABLE]].partitions) == inputs
    assert len(topics[names[METRICS_TABLE]].partitions) == \
        (tables[METRICS_TABLE].changelog_topic.partitions or inputs)
    for name in names.values():
        resource = ConfigResource(ResourceType.TOPIC, name)
        config = client.describe_configs([resource])[resource].result(15)
        assert config["cleanup.policy"].value == "compact"
        assert {k: config[k].value for k in CHANGELOG_CONFIG} == dict(CHANGELOG_CONFIG)
        assert all(config[k].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
                   for k in CHANGELOG_CONFIG)  # the topic's own, not the broker's defaults
    if local_broker is None:  # an external broker: its disk is not readable from here
        return
    on_disk = replace(settings, bootstrap_servers=None, home=local_broker.paths.home)
    assert changelog_bytes(on_disk) == 0
    producer = Producer(confluent_config(settings))
    for n in range(10):
        producer.produce(names[ORDERS_TABLE], key=b"k%d" % n, value=b"v" * 1000, partition=0)
    assert producer.flush(15) == 0
    assert 10_000 < (changelog_bytes(on_disk) or 0) < 20_000
