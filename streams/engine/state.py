"""Per-order and per-partition engine state as msgspec Structs, and their msgpack encoding.

State format 2 (this one): an order keeps one log per entity (its own, and per payment,
reservation and shipment) of compact ``Step``s in lifecycle order, the due times of its
index entries, its expiry and its ledger. Pending work is not stored: which decisions and
rechecks are still to come follows from the logs, the ledger and the partition's watermark
(``streams.engine.partition``), so waking an order for a decision that does not fire
changes nothing in its state and writes nothing. Encoded as a msgpack array led by the
format number.

State format 1 (the earlier one): a msgpack map of the order's whole history as ``Event``s,
its pending decisions and rechecks, and the same dues, expiry and ledger. ``decode_order``
reads it and upgrades it to format 2 (its pending work is what format 2 derives); the next
write of the order stores format 2. A format-1 worker cannot read format 2.
"""

from __future__ import annotations

import msgspec

from streams.model import Event, Mismatch, MismatchType, Severity, Status, Step
from streams.rules.entities import place

#: the state format ``encode_order`` writes (the first element of its msgpack array)
ORDER_FORMAT = 2


class LedgerEntry(msgspec.Struct, array_like=True):
    """A mismatch the order ever opened: enough to re-emit it and to re-evaluate it.

    ``frozen`` is set when the order's history is evicted: the events the condition rests on
    are gone, so the mismatch is no longer re-evaluated (it stays in its status for good).
    """

    mismatch_id: str
    type: MismatchType
    rule: int
    subject_id: str
    key: str
    severity: Severity
    decided_at: int
    trigger_time: int
    evidence: tuple[str, ...]
    details: dict[str, str]
    command_id: str | None
    status: Status = Status.OPEN
    resolved_at: int | None = None
    resolved_by: str | None = None
    frozen: bool = False

    def record(self, order_id: str, detected_at: int) -> Mismatch:
        """The Mismatch record of this entry in its current status."""
        return Mismatch(
            mismatch_id=self.mismatch_id,
            type=self.type,
            status=self.status,
            order_id=order_id,
            subject_id=self.subject_id,
            severity=self.severity,
            decided_at=self.decided_at,
            detected_at=detected_at,
            evidence=self.evidence,
            command_id=self.command_id,
            details=dict(self.details),
            resolved_at=self.resolved_at,
            resolved_by=self.resolved_by,
        )


class OrderState(msgspec.Struct, array_like=True, tag=ORDER_FORMAT):
    """Everything the engine keeps for one order (state format 2).

    * ``orders``: the order's own events (PLACED, CANCELLED); ``payments``,
      ``reservations``, ``shipments``: entity id -> its events. Each log is in lifecycle
      order (``streams.rules.entities.lifecycle_key``), and no event_id is in two places.
    * ``dues``: due times for which the store's index may have an entry for this order (so
      that at most one index entry per (due, order) is added). Entries at or below the
      partition's watermark have been handled; they are pruned when the order is written
      and skipped when the index is rebuilt.
    * ``expire_at``: max(every decision due ever scheduled, last event_time +
      state_retention) + allowed_lateness; None once the history is evicted (ledger-only).
    * ``ledger``: mismatch_id -> LedgerEntry for every mismatch ever opened.
    * ``commands``: every command_id ever issued for the order.
    """

    order_id: str
    orders: list[Step] = msgspec.field(default_factory=list)
    payments: dict[str, list[Step]] = msgspec.field(default_factory=dict)
    reservations: dict[str, list[Step]] = msgspec.field(default_factory=dict)
    shipments: dict[str, list[Step]] = msgspec.field(default_factory=dict)
    dues: list[int] = msgspec.field(default_factory=list)
    expire_at: int | None = None
    ledger: dict[str, LedgerEntry] = msgspec.field(default_factory=dict)
    commands: list[str] = msgspec.field(default_factory=list)

    def has_open(self) -> bool:
        """Whether some mismatch of the current history is OPEN (and can still resolve)."""
        return any(e.status is Status.OPEN and not e.frozen for e in self.ledger.values())

    def history_size(self) -> int:
        """How many events the order's logs hold."""
        return len(self.orders) + sum(
            len(log) for logs in (self.payments, self.reservations, self.shipments)
            for log in logs.values())


class PartitionMeta(msgspec.Struct):
    """Watermark state of one partition number.

    ``max_time``: source name -> largest event_time read (the input's progress); ``idle``:
    sorted names of the *quiet* sources (caught up, no record for idle_timeout);
    ``released``: sorted names of the sources stalled past source_hold (quiet while another
    input advanced; a subset of ``idle``), which no longer hold the watermark; ``watermark``:
    the current watermark (None until there is one).
    """

    max_time: dict[str, int] = msgspec.field(default_factory=dict)
    idle: list[str] = msgspec.field(default_factory=list)
    watermark: int | None = None
    released: list[str] = msgspec.field(default_factory=list)


# -- state format 1 (read only, upgraded on read) ------------------------------------------


class PendingV1(msgspec.Struct, frozen=True, order=True, array_like=True):
    """Format 1's pending work item (due, kind, rule, key): read, not kept."""

    due: int
    kind: int
    rule: int = 0
    key: str = ""


class OrderStateV1(msgspec.Struct):
    """State format 1: the order's whole history as Events, and its pending work."""

    order_id: str
    events: list[Event] = msgspec.field(default_factory=list)
    pending: list[PendingV1] = msgspec.field(default_factory=list)
    dues: list[int] = msgspec.field(default_factory=list)
    expire_at: int | None = None
    ledger: dict[str, LedgerEntry] = msgspec.field(default_factory=dict)
    commands: list[str] = msgspec.field(default_factory=list)


def upgrade_order(old: OrderStateV1) -> OrderState:
    """A format-1 state in format 2: its events into their entities' logs. Its pending work
    is dropped: it is what format 2 derives from the logs, the ledger and the watermark."""
    state = OrderState(old.order_id, dues=old.dues, expire_at=old.expire_at,
                       ledger=old.ledger, commands=old.commands)
    for event in old.events:
        add_event(state, event)
    return state


def add_event(state: OrderState, event: Event) -> None:
    """Put an event into its entity's log, at its place in lifecycle order."""
    place((state.orders, state.payments, state.reservations, state.shipments), event)


_order_encoder = msgspec.msgpack.Encoder()
_order_decoder = msgspec.msgpack.Decoder(OrderState)
_order_v1_decoder = msgspec.msgpack.Decoder(OrderStateV1)
_meta_decoder = msgspec.msgpack.Decoder(PartitionMeta)
#: the first byte of a msgpack map (fixmap, map 16, map 32): state format 1
_MAP_MARKERS = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])


def encode_order(state: OrderState) -> bytes:
    """OrderState -> msgpack bytes (what the Faust table stores), format 2."""
    return _order_encoder.encode(state)


def decode_order(data: bytes) -> OrderState:
    """msgpack bytes of either state format -> OrderState (format 1 is upgraded)."""
    if data and data[0] in _MAP_MARKERS:
        return upgrade_order(_order_v1_decoder.decode(data))
    return _order_decoder.decode(data)


def encode_meta(meta: PartitionMeta) -> bytes:
    """PartitionMeta -> msgpack bytes."""
    return _order_encoder.encode(meta)


def decode_meta(data: bytes) -> PartitionMeta:
    """msgpack bytes -> PartitionMeta."""
    return _meta_decoder.decode(data)
