"""Creating every topic idempotently and checking partition counts and co-partitioning."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from topology.errors import TopologyError
from topology.topics import BY_ID, ORDER_GROUP, TOPICS, TopicId, Topology


@dataclass
class CheckReport:
    """What `topics check` found: partition count per topic and the problems."""

    partitions: dict[str, int | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every input topic exists and they are co-partitioned."""
        return not self.problems


def _existing(client: AdminClient) -> dict[str, int]:
    metadata = client.list_topics(timeout=15)
    return {name: len(t.partitions) for name, t in metadata.topics.items() if not t.error}


def create_topics(client: AdminClient, topology: Topology,
                  only: list[TopicId] | None = None) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    existing = _existing(client)
    brokers = len(client.list_topics(timeout=15).brokers) or 1
    wanted = [t for t in TOPICS if only is None or t.id in only]
    new = [
        NewTopic(
            topology.name(t.id),
            num_partitions=topology.partitions_of(t.id),
            replication_factor=min(3, brokers),
            config={"cleanup.policy": t.cleanup_policy, "retention.ms": str(t.retention_ms)},
        )
        for t in wanted
        if topology.name(t.id) not in existing
    ]
    return create_new(client, new)


def create_new(client: AdminClient, new: list[NewTopic], timeout: float = 30.0) -> list[str]:
    """Create these topics (one that exists by now is left as it is) and wait until the
    broker's metadata lists them; the names created. TopologyError names a topic that
    could not be created."""
    created: list[str] = []
    if not new:
        return created
    for name, future in client.create_topics(new, operation_timeout=timeout).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise TopologyError(f"could not create topic {name}: {error}") from None
    wait_visible(client, created)
    return created


def wait_visible(client: AdminClient, names: list[str], timeout: float = 15.0) -> None:
    """Until the broker's metadata lists every topic of ``names`` with its partitions (a
    created topic reaches the metadata a moment after CreateTopics answers: a check right
    after, or a consumer group formed then, may not see it yet); TopologyError after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    missing = set(names)
    while missing:
        missing -= {name for name, count in _existing(client).items() if count > 0}
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise TopologyError(f"created topics not in the broker's metadata after "
                                f"{timeout:g}s: {', '.join(sorted(missing))}")
        time.sleep(0.1)


def check_topics(client: AdminClient, topology: Topology) -> CheckReport:
    """Every input topic must exist and all of one co-partition group share a partition count."""
    existing = _existing(client)
    report = CheckReport()
    groups: dict[str, dict[str, int]] = {}
    for t in TOPICS:
        name = topology.name(t.id)
        count = existing.get(name)
        report.partitions[name] = count
        if count is None:
            if t.is_input:
                report.problems.append(f"input topic {name} is missing")
            continue
        if t.is_input or (t.copartition_group == ORDER_GROUP and t.id is TopicId.TICKS):
            groups.setdefault(t.copartition_group or name, {})[name] = count
    for group, counts in groups.items():
        if len(set(counts.values())) > 1:
            listing = ", ".join(f"{n}={c}" for n, c in sorted(counts.items()))
            report.problems.append(
                f"topics co-partitioned by {group} have different partition counts: {listing}"
            )
    return report


def input_partition_count(client: AdminClient, topology: Topology) -> int:
    """The common partition count of the input topics; TopologyError if they differ or are gone."""
    report = check_topics(client, topology)
    if not report.ok:
        raise TopologyError("; ".join(report.problems) + " (run `crosscheck topics check`)")
    counts = {report.partitions[topology.name(t)] for t in BY_ID if BY_ID[t].is_input}
    (count,) = counts
    assert count is not None
    return count
