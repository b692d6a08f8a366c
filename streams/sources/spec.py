"""What a sources file says, checked: per input its topic, format and field mappings."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from topology.topics import TopicId


class Format(enum.StrEnum):
    """How an input's records are written."""

    AVRO = "avro"  #: the contract's Avro topic, as without a sources file
    JSON = "json"  #: one JSON event per record
    DEBEZIUM = "debezium"  #: Debezium change events of one table (Kafka Connect JSON)


class Meta(enum.StrEnum):
    """What a ``@name`` field reads: the record's own metadata, not its value."""

    KEY = "@key"  #: the Kafka key as text
    TIMESTAMP = "@timestamp"  #: the Kafka record timestamp (ms)
    COMMIT = "@commit"  #: debezium: the commit time of the change (source.ts_ms)


#: event time units a number may be given in -> milliseconds per unit (as a divisor or factor)
UNITS: dict[str, tuple[int, int]] = {"s": (1000, 1), "ms": (1, 1), "us": (1, 1000),
                                     "ns": (1, 1_000_000)}

#: a status mapped to this is no event: records with it are skipped
SKIP = "skip"

#: the event types of each input (the contract's section 2): what a status may map to. A
#: mapped event is then validated as any input event (``schemas.validation``)
EVENT_TYPES: dict[TopicId, tuple[str, ...]] = {
    TopicId.ORDERS: ("PLACED", "PAID", "CANCELLED"),
    TopicId.PAYMENTS: ("SUCCEEDED", "FAILED", "REFUNDED"),
    TopicId.INVENTORY: ("RESERVED", "CONFIRMED", "RELEASED"),
    TopicId.SHIPPING: ("CREATED", "DISPATCHED", "DELIVERED", "CANCELLED"),
}


@dataclass(frozen=True)
class FieldRef:
    """Where one contract field is read from: a path into the record, a metadata item or a
    constant; ``rule`` is how the sources file wrote it (for the reasons of map errors)."""

    name: str  #: the contract field, e.g. "amount"
    rule: str  #: e.g. 'amount = "payment.amount"'
    path: tuple[str, ...] = ()
    meta: Meta | None = None
    constant: Any = None
    has_constant: bool = False
    unit: str = "ms"  #: event_time given as a number
    decimals: int = 0  #: amounts given in major units


@dataclass(frozen=True)
class ItemsRef:
    """Where an input's item lines are: the array and the paths inside each element."""

    rule: str
    path: tuple[str, ...]
    sku: tuple[str, ...] = ("sku",)
    quantity: tuple[str, ...] = ("quantity",)
    unit_price: tuple[str, ...] | None = ("unit_price",)  #: orders only
    decimals: int = 0


class EventIdRule(enum.StrEnum):
    """How a change event's event_id is made (debezium inputs)."""

    LSN = "lsn"  #: table:key:lsn, one event per change
    STATUS = "status"  #: table:key:status, one event per status a row takes
    FIELD = "field"  #: a column of the row


@dataclass(frozen=True)
class InputSpec:
    """One mapped input: its topic, format and where each contract field comes from."""

    input: TopicId
    topic: str
    format: Format
    line: int | None  #: where its table starts in the file
    fields: Mapping[str, FieldRef] = field(default_factory=dict)
    items: ItemsRef | None = None
    type_field: FieldRef | None = None
    #: status value (as text) -> contract type, or SKIP; None: the contract's type names
    types: Mapping[str, str] | None = None
    unwrap: bool = False
    table: str = ""
    key: tuple[str, ...] = ()
    event_id_rule: EventIdRule = EventIdRule.FIELD

    @property
    def mapped(self) -> bool:
        """True for json and debezium inputs (what `crosscheck ingest` reads)."""
        return self.format is not Format.AVRO


@dataclass(frozen=True)
class SourcesFile:
    """A valid sources file: the inputs it lists (the others are Avro, as without one)."""

    name: str
    inputs: Mapping[TopicId, InputSpec]
    #: the ``[cdc]`` table, left to `crosscheck cdc` (unchecked here)
    cdc: Mapping[str, Any] = field(default_factory=dict)

    def mapped(self) -> list[InputSpec]:
        """The json and debezium inputs, in the contract's order."""
        return [spec for topic, spec in sorted(self.inputs.items(), key=lambda i: _ORDER[i[0]])
                if spec.mapped]

    def by_topic(self) -> dict[str, InputSpec]:
        """Source topic name -> the mapped input reading it."""
        return {spec.topic: spec for spec in self.mapped()}


_ORDER = {topic: i for i, topic in enumerate(
    (TopicId.ORDERS, TopicId.PAYMENTS, TopicId.INVENTORY, TopicId.SHIPPING))}

#: the contract field naming each input's entity (the order's own id for orders)
ENTITY_FIELD: dict[TopicId, str] = {
    TopicId.ORDERS: "order_id",
    TopicId.PAYMENTS: "payment_id",
    TopicId.INVENTORY: "reservation_id",
    TopicId.SHIPPING: "shipment_id",
}

#: fields every mapped input must say where to read (event_id: json inputs only)
COMMON_REQUIRED = ("order_id", "event_time")
#: per input: the fields it must map, and those it may map
REQUIRED: dict[TopicId, tuple[str, ...]] = {
    TopicId.ORDERS: ("user_id", "total_amount", "currency"),
    TopicId.PAYMENTS: ("payment_id", "amount", "currency"),
    TopicId.INVENTORY: ("reservation_id", "sku", "quantity"),
    TopicId.SHIPPING: ("shipment_id",),
}
OPTIONAL: dict[TopicId, tuple[str, ...]] = {
    TopicId.ORDERS: ("payment_id",),
    TopicId.PAYMENTS: ("channel",),
    TopicId.INVENTORY: (),
    TopicId.SHIPPING: (),
}
#: inputs whose events carry item lines (required mapping)
WITH_ITEMS = (TopicId.ORDERS, TopicId.SHIPPING)
#: contract fields holding amounts (``decimals`` applies) and counts
AMOUNTS = frozenset({"amount", "total_amount"})
COUNTS = frozenset({"quantity"})
