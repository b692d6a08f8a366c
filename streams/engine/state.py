"""Per-order and per-partition engine state as msgspec Structs, and their msgpack encoding."""

from __future__ import annotations

import msgspec

from streams.model import Event, Mismatch, MismatchType, Severity, Status

DECIDE = 0  # Pending.kind: make decision (rule, key) at due
RECHECK = 1  # Pending.kind: re-evaluate the order's OPEN mismatches at due (an event time)


class Pending(msgspec.Struct, frozen=True, order=True, array_like=True):
    """Work waiting for the watermark: a decision or a recheck, processed in field order.

    Ordering is (due, kind, rule, key): at one due time decisions (kind 0, by rule number
    and key) come before rechecks (kind 1).
    """

    due: int
    kind: int
    rule: int = 0
    key: str = ""


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


class OrderState(msgspec.Struct):
    """Everything the engine keeps for one order.

    * ``events``: the order's current history (distinct event_ids, arrival order).
    * ``pending``: decisions and rechecks waiting for the watermark, sorted.
    * ``dues``: due times for which the store's index has an entry for this order (so that
      at most one index entry per (due, order) exists).
    * ``expire_at``: max(every decision due ever scheduled, last event_time) +
      allowed_lateness; None once the history is evicted (ledger-only state).
    * ``ledger``: mismatch_id -> LedgerEntry for every mismatch ever opened.
    * ``commands``: every command_id ever issued for the order.
    """

    order_id: str
    events: list[Event] = msgspec.field(default_factory=list)
    pending: list[Pending] = msgspec.field(default_factory=list)
    dues: list[int] = msgspec.field(default_factory=list)
    expire_at: int | None = None
    ledger: dict[str, LedgerEntry] = msgspec.field(default_factory=dict)
    commands: list[str] = msgspec.field(default_factory=list)

    def has_open(self) -> bool:
        """Whether some mismatch of the current history is OPEN (and can still resolve)."""
        return any(e.status is Status.OPEN and not e.frozen for e in self.ledger.values())


class PartitionMeta(msgspec.Struct):
    """Watermark state of one partition number.

    ``max_time``: source name -> largest event_time read; ``idle``: sorted names of idle
    sources; ``watermark``: the current watermark (None until there is one).
    """

    max_time: dict[str, int] = msgspec.field(default_factory=dict)
    idle: list[str] = msgspec.field(default_factory=list)
    watermark: int | None = None


_order_encoder = msgspec.msgpack.Encoder()
_order_decoder = msgspec.msgpack.Decoder(OrderState)
_meta_decoder = msgspec.msgpack.Decoder(PartitionMeta)


def encode_order(state: OrderState) -> bytes:
    """OrderState -> msgpack bytes (what the Faust table stores)."""
    return _order_encoder.encode(state)


def decode_order(data: bytes) -> OrderState:
    """msgpack bytes -> OrderState."""
    return _order_decoder.decode(data)


def encode_meta(meta: PartitionMeta) -> bytes:
    """PartitionMeta -> msgpack bytes."""
    return _order_encoder.encode(meta)


def decode_meta(data: bytes) -> PartitionMeta:
    """msgpack bytes -> PartitionMeta."""
    return _meta_decoder.decode(data)
