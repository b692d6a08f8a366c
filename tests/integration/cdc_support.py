"""Reading the change events the CDC stack's connector writes (for the CDC integration tests)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from streams.cdc.stack import CdcStack
from streams.clients import admin, confluent_config
from streams.simulate.shopdb import TABLES


@dataclass(frozen=True)
class Change:
    """One change event: where it is, its key and its JSON value (Debezium's envelope)."""

    topic: str
    partition: int
    key: str
    value: dict[str, Any]

    @property
    def row(self) -> dict[str, Any]:
        after: dict[str, Any] = self.value["after"]
        return after

    @property
    def ident(self) -> tuple[str, str, int]:
        """(table, primary key, LSN): what the mapping's event_id is made of."""
        table = self.value["source"]["table"]
        pk = next(t.key for t in TABLES.values() if t.name == table)
        return table, self.row[pk], self.value["source"]["lsn"]


def read_changes(stack: CdcStack, done: Callable[[list[Change]], bool],
                 timeout: float = 90.0) -> list[Change]:
    """Every change event on the stack's topics from their start, once ``done`` says so."""
    settings = stack.settings
    deadline = time.monotonic() + timeout
    topics = list(stack.plan.topics.values())
    while True:  # the connector creates a topic with its table's first change
        meta = admin(settings).list_topics(timeout=10)
        if all(t in meta.topics for t in topics):
            break
        assert time.monotonic() < deadline, f"topics not created: {topics}"
        time.sleep(0.5)
    consumer = Consumer({**confluent_config(settings), "group.id": f"t-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING)
                     for t in topics for p in meta.topics[t].partitions])
    changes: list[Change] = []
    try:
        while not done(changes):
            assert time.monotonic() < deadline, f"only {len(changes)} change events arrived"
            for msg in consumer.consume(500, timeout=0.5):
                assert msg.error() is None, msg.error()
                changes.append(Change(msg.topic(), msg.partition(), msg.key().decode(),
                                      json.loads(msg.value())))
    finally:
        consumer.close()
    return changes
