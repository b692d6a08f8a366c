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

from streams.model import Severity

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
    #: mismatch type -> how many of those opened were decided without a stalled input
    #: (``decided_without``): the SOURCE_STALLED alert says it once, they raise no alert
    mismatches_without: dict[str, int] = msgspec.field(default_factory=dict)

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
        for t, n in other.mismatches_without.items():
            self.mismatches_without[t] = self.mismatches_without.get(t, 0) + n
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


class StalledInput(msgspec.Struct, frozen=True):
    """An input topic-partition stalled past ``source_hold``: quiet while another input of
    its partition number kept advancing, so the watermark goes on without it."""

    #: the input topic's name (as configured, prefix included)
    topic: str
    #: its progress: the largest event_time read on it (None: it never had a record)
    last_event_time: int | None
    #: wall clock (epoch ms) when it became stalled (quiet while another input advanced)
    since: int


class Partial(msgspec.Struct):
    """What a partition sends to stage 2: closed windows and its progress.

    ``stalled``: the partition's inputs stalled past ``source_hold`` right now (empty when
    none); stage 2 turns changes of it into SOURCE_STALLED and SOURCE_RECOVERED alerts.
    ``sent_at``: the wall clock (epoch ms) when it was made, what those alerts measure how
    long a source has been stalled against (None: stage 2 uses its own clock)."""

    partition: int
    watermark: int | None
    all_idle: bool
    windows: dict[int, WindowCounts] = msgspec.field(default_factory=dict)
    stalled: list[StalledInput] = msgspec.field(default_factory=list)
    sent_at: int | None = None
