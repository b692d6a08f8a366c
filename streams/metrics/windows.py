"""Stage 1 of the metrics: per-partition counts per tumbling event-time window (pure, no Kafka).

Each partition number counts its own events and outputs into windows of `size` ms and
closes a window when its watermark reaches the window's end. A closed window is sent as a
Partial (together with the partition's watermark and whether all its inputs are idle) to
stage 2 (``aggregate.py``), which adds up the partitions. Figures:

* orders_placed (PLACED), payments_succeeded / payments_failed, gmv per currency (amounts of
  SUCCEEDED payments), refunds (REFUNDED), shipments_created (CREATED): by event_time.
* mismatches_opened by type (by decided_at), mismatches_resolved (by resolved_at),
  commands_issued by type (by the decided_at of the mismatch that issued it).
* dead_letters: records without a usable event time count in the partition's oldest open
  window. Redelivered events are not counted twice.
* late_events: events whose window had already closed in this partition; they are counted
  there (and in the oldest open window), not in the closed window's business figures.
  Outputs whose time falls in a closed window (decisions caused by late events) are counted
  in the oldest open window.
"""

from __future__ import annotations

import msgspec

from streams.model import Command, Event, Mismatch, Severity, Source, Status

ALERT_SEVERITIES = frozenset({Severity.CRITICAL.value, Severity.HIGH.value})


class Sample(msgspec.Struct, array_like=True, frozen=True):
    """An alert-worthy mismatch: enough for a single alert or a storm's sample ids."""

    mismatch_id: str
    order_id: str
    severity: str
    subject_id: str


class WindowCounts(msgspec.Struct):
    """The figures of one window (of one partition, or of all of them)."""

    orders_placed: int = 0
    payments_succeeded: int = 0
    payments_failed: int = 0
    gmv: dict[str, int] = msgspec.field(default_factory=dict)
    refunds: int = 0
    shipments_created: int = 0
    mismatches_opened: dict[str, int] = msgspec.field(default_factory=dict)
    mismatches_resolved: int = 0
    commands_issued: dict[str, int] = msgspec.field(default_factory=dict)
    dead_letters: int = 0
    late_events: int = 0
    #: mismatch type -> the first alert-worthy mismatches of the window (bounded)
    samples: dict[str, list[Sample]] = msgspec.field(default_factory=dict)

    def add(self, other: WindowCounts, sample_limit: int) -> None:
        """Add another window's figures into this one."""
        self.orders_placed += other.orders_placed
        self.payments_succeeded += other.payments_succeeded
        self.payments_failed += other.payments_failed
        for cur, amount in other.gmv.items():
            self.gmv[cur] = self.gmv.get(cur, 0) + amount
        self.refunds += other.refunds
        self.shipments_created += other.shipments_created
        for t, n in other.mismatches_opened.items():
            self.mismatches_opened[t] = self.mismatches_opened.get(t, 0) + n
        self.mismatches_resolved += other.mismatches_resolved
        for t, n in other.commands_issued.items():
            self.commands_issued[t] = self.commands_issued.get(t, 0) + n
        self.dead_letters += other.dead_letters
        self.late_events += other.late_events
        for t, samples in other.samples.items():
            mine = self.samples.setdefault(t, [])
            mine.extend(samples[: max(0, sample_limit - len(mine))])


class PartitionWindows(msgspec.Struct):
    """Open windows of one partition. ``closed_until``: every window ending at or before it
    has been closed (sent). ``dirty``: starts of the windows changed, opened or closed since
    the owner last stored them (each window is stored under a key of its own, so a batch
    writes the few windows it touched, not every open one); not part of the stored state."""

    open: dict[int, WindowCounts] = msgspec.field(default_factory=dict)
    closed_until: int | None = None
    dirty: set[int] = msgspec.field(default_factory=set)


class Partial(msgspec.Struct):
    """What a partition sends to stage 2: closed windows and its progress."""

    partition: int
    watermark: int | None
    all_idle: bool
    windows: dict[int, WindowCounts] = msgspec.field(default_factory=dict)


class WindowTracker:
    """Counts one partition's events and outputs into windows of `size` ms."""

    def __init__(self, size: int, sample_limit: int) -> None:
        self.size = size
        self.sample_limit = sample_limit

    def start_of(self, t: int) -> int:
        """Start of the window holding time t."""
        return t - t % self.size

    def _window(self, state: PartitionWindows, t: int | None) -> WindowCounts:
        """The open window for time t, or the oldest open one if t's window is closed."""
        if t is None or (state.closed_until is not None and t < state.closed_until):
            if state.closed_until is None:
                state.dirty.add(-1)
                return state.open.setdefault(-1, WindowCounts())
            t = state.closed_until
        start = self.start_of(t)
        state.dirty.add(start)
        return state.open.setdefault(start, WindowCounts())

    def on_event(self, state: PartitionWindows, event: Event) -> None:
        """Count a (non-redelivered) input event."""
        late = state.closed_until is not None and event.event_time < state.closed_until
        window = self._window(state, event.event_time)
        if late:
            window.late_events += 1
            return
        source, etype = event.source, event.type
        if source is Source.ORDERS and etype == "PLACED":
            window.orders_placed += 1
        elif source is Source.PAYMENTS:
            if etype == "SUCCEEDED":
                window.payments_succeeded += 1
                currency = event.currency or ""
                window.gmv[currency] = window.gmv.get(currency, 0) + (event.amount or 0)
            elif etype == "FAILED":
                window.payments_failed += 1
            elif etype == "REFUNDED":
                window.refunds += 1
        elif source is Source.SHIPPING and etype == "CREATED":
            window.shipments_created += 1

    def on_outputs(self, state: PartitionWindows, outputs: list[Mismatch | Command]) -> None:
        """Count mismatches opened/resolved and commands issued."""
        decided = {o.mismatch_id: o.decided_at for o in outputs if isinstance(o, Mismatch)}
        for o in outputs:
            if isinstance(o, Mismatch):
                if o.status is Status.OPEN:
                    w = self._window(state, o.decided_at)
                    t = o.type.value
                    w.mismatches_opened[t] = w.mismatches_opened.get(t, 0) + 1
                    if o.severity.value in ALERT_SEVERITIES:
                        samples = w.samples.setdefault(t, [])
                        if len(samples) < self.sample_limit:
                            samples.append(Sample(o.mismatch_id, o.order_id,
                                                  o.severity.value, o.subject_id))
                else:
                    self._window(state, o.resolved_at).mismatches_resolved += 1
            else:
                w = self._window(state, decided.get(o.mismatch_id))
                t = o.type.value
                w.commands_issued[t] = w.commands_issued.get(t, 0) + 1

    def on_dead_letter(self, state: PartitionWindows) -> None:
        """Count a dead letter (no event time): in the oldest open window."""
        if state.open:
            oldest = min(state.open)
            state.dirty.add(oldest)
            state.open[oldest].dead_letters += 1
        else:
            self._window(state, state.closed_until).dead_letters += 1

    def close(self, state: PartitionWindows, watermark: int | None) -> dict[int, WindowCounts]:
        """Close every window whose end is <= watermark; returns them by start."""
        if watermark is None:
            return {}
        until = self.start_of(watermark)  # windows starting before it end at or before wm
        if state.closed_until is not None and until <= state.closed_until:
            # nothing to close: every open window (but -1) starts at or after the largest
            # window start <= closed_until (``_window`` never opens an earlier one), and
            # until is a window start <= closed_until. (Per event, with many windows open,
            # sorting them all was most of the worker's time.) -1 moves to the end of the
            # dict as in the general case, so the encoded windows stay the same.
            carry = state.open.pop(-1, None)
            if carry is not None:
                state.open[-1] = carry
            return {}
        carry = state.open.pop(-1, None)  # dead letters counted before any window existed
        closed = {start: state.open.pop(start)
                  for start in sorted([s for s in state.open if s < until])}
        state.dirty.update(closed)
        if carry is not None:
            state.dirty.add(-1)
            if closed:
                closed[min(closed)].add(carry, self.sample_limit)
            else:
                state.open[-1] = carry
        if state.closed_until is None or until > state.closed_until:
            state.closed_until = until
        return closed
