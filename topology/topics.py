"""Typed definitions of every topic: id, default name, key, value schema, co-partition group."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

from streams.errors import ConfigError

#: Co-partition group of the input topics: same partition count, murmur2 on order_id.
ORDER_GROUP = "order_id"

_DAY_MS = 86_400_000


class TopicId(enum.StrEnum):
    """Stable identifiers of the topics; names are resolved through `Topology`."""

    ORDERS = "orders"
    PAYMENTS = "payments"
    INVENTORY = "inventory"
    SHIPPING = "shipping"
    MISMATCHES = "mismatches"
    COMMANDS = "commands"
    COMMANDS_SHADOW = "commands.shadow"
    ALERTS = "alerts"
    METRICS = "metrics"
    DLQ = "dlq"
    TICKS = "ticks"
    METRICS_PARTIALS = "metrics.partials"
    BACKFILL_MISMATCHES = "backfill.mismatches"
    BACKFILL_COMMANDS = "backfill.commands"
    BACKFILL_COMMANDS_SHADOW = "backfill.commands.shadow"


@dataclass(frozen=True)
class TopicDef:
    """One topic: what it carries and how it is laid out."""

    id: TopicId
    default_name: str
    key: str
    value_schema: str
    copartition_group: str | None
    is_input: bool = False
    cleanup_policy: str = "delete"
    retention_ms: int = 7 * _DAY_MS
    #: None: the configured default partition count; 1 for single-partition topics.
    partitions: int | None = None
    description: str = ""
    #: "avro" (Confluent wire format, schemas/*.avsc) or "msgpack" (internal topics only)
    encoding: str = "avro"


TOPICS: tuple[TopicDef, ...] = (
    TopicDef(TopicId.ORDERS, "orders", "order_id", "OrderEvent", ORDER_GROUP, True,
             description="order service events (optional input)"),
    TopicDef(TopicId.PAYMENTS, "payments", "order_id", "PaymentEvent", ORDER_GROUP, True,
             description="payment service events"),
    TopicDef(TopicId.INVENTORY, "inventory", "order_id", "InventoryEvent", ORDER_GROUP, True,
             description="inventory service events (TCC Try / Confirm / Cancel)"),
    TopicDef(TopicId.SHIPPING, "shipping", "order_id", "ShippingEvent", ORDER_GROUP, True,
             description="shipping service events"),
    TopicDef(TopicId.MISMATCHES, "crosscheck.mismatches", "order_id", "Mismatch", ORDER_GROUP,
             retention_ms=30 * _DAY_MS, description="OPEN and RESOLVED mismatches"),
    TopicDef(TopicId.COMMANDS, "crosscheck.commands", "order_id", "Command", ORDER_GROUP,
             retention_ms=30 * _DAY_MS, description="compensating commands, each issued once"),
    TopicDef(TopicId.COMMANDS_SHADOW, "crosscheck.commands.shadow", "order_id", "Command",
             ORDER_GROUP, retention_ms=30 * _DAY_MS,
             description="commands decided in shadow mode (same ids): never executed"),
    TopicDef(TopicId.ALERTS, "crosscheck.alerts", "alert type", "Alert", None,
             description="alerts (single, STORM, SOURCE_STALLED / SOURCE_RECOVERED)"),
    TopicDef(TopicId.METRICS, "crosscheck.metrics", "window start", "MetricsWindow", None,
             description="business metrics per event-time window"),
    TopicDef(TopicId.DLQ, "crosscheck.dlq", "source key", "DeadLetter", None,
             retention_ms=30 * _DAY_MS, description="records that could not be decoded"),
    TopicDef(TopicId.TICKS, "crosscheck.ticks", "partition number", "Tick", ORDER_GROUP,
             retention_ms=_DAY_MS, description="internal: idle-input notices per partition"),
    TopicDef(TopicId.METRICS_PARTIALS, "crosscheck.metrics.partials", "partition number",
             "streams.metrics.windows.Partial", None,
             retention_ms=_DAY_MS, partitions=1, encoding="msgpack",
             description="internal: per-partition metrics windows for the aggregator"),
    TopicDef(TopicId.BACKFILL_MISMATCHES, "crosscheck.backfill.mismatches", "order_id",
             "Mismatch", None, retention_ms=30 * _DAY_MS, description="replay output"),
    TopicDef(TopicId.BACKFILL_COMMANDS, "crosscheck.backfill.commands", "order_id", "Command",
             None, retention_ms=30 * _DAY_MS, description="replay output"),
    TopicDef(TopicId.BACKFILL_COMMANDS_SHADOW, "crosscheck.backfill.commands.shadow",
             "order_id", "Command", None, retention_ms=30 * _DAY_MS,
             description="replay output: commands decided in shadow mode"),
)

BY_ID: Mapping[TopicId, TopicDef] = {t.id: t for t in TOPICS}
INPUTS: tuple[TopicId, ...] = tuple(t.id for t in TOPICS if t.is_input)


def command_topic(shadow: bool, backfill: bool = False) -> TopicId:
    """Where a command goes: the command topic, or its shadow twin for a command decided in
    shadow mode (of the live worker, or, with ``backfill``, of a replay)."""
    if backfill:
        return TopicId.BACKFILL_COMMANDS_SHADOW if shadow else TopicId.BACKFILL_COMMANDS
    return TopicId.COMMANDS_SHADOW if shadow else TopicId.COMMANDS


@dataclass(frozen=True)
class Topology:
    """Resolves topic ids to names (prefix and overrides) and partition counts."""

    partitions: int = 4
    prefix: str = ""
    overrides: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        known = {t.value for t in TopicId} | {t.default_name for t in TOPICS}
        for key in self.overrides or {}:
            if key not in known:
                raise ConfigError(
                    f"CROSSCHECK_TOPICS: unknown topic {key!r} (known: {', '.join(sorted(known))})"
                )

    def name(self, topic: TopicId) -> str:
        """The Kafka name of a topic."""
        definition = BY_ID[topic]
        overrides = self.overrides or {}
        name = overrides.get(topic.value) or overrides.get(definition.default_name)
        return name if name else self.prefix + definition.default_name

    def partitions_of(self, topic: TopicId) -> int:
        """How many partitions `topics create` gives a topic."""
        return BY_ID[topic].partitions or self.partitions

    @cached_property
    def _by_name(self) -> dict[str, TopicId]:
        return {self.name(t.id): t.id for t in TOPICS}

    def by_name(self) -> dict[str, TopicId]:
        """Kafka name -> topic id, for decoding records by the topic they came from."""
        return dict(self._by_name)

    def topic_id(self, name: str) -> TopicId:
        """The id of a topic by its Kafka name or its id; ConfigError if unknown."""
        names = self._by_name
        if name in names:
            return names[name]
        try:
            return TopicId(name)
        except ValueError:
            raise ConfigError(
                f"unknown topic {name!r}; known: {', '.join(sorted(names))}"
            ) from None

    def inputs(self) -> Iterator[tuple[TopicId, str]]:
        """(id, name) of the input topics."""
        for topic in INPUTS:
            yield topic, self.name(topic)
