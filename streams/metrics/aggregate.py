"""Stage 2 of the metrics: add up the partitions' partials, emit each window once, and alert.

A window is final when the global metrics watermark reaches its end. The global watermark is
the minimum over the partitions that have reported and are not idle (all their inputs idle),
or the maximum over all of them when every one is idle: the contract's idleness rule, one
level up. Given the partition count, nothing is final before every partition number has
reported at least once (with a watermark, or idle). Windows are emitted in order, from the
earliest one reported by the time the first window is final, empty ones included. A partial
for a window already emitted (an idle partition's tail) goes into the next window: its
events only as late_events, its outputs (mismatches, commands, dead letters, alert samples)
as they are, the way stage 1 treats outputs that fall into a closed window.

Alerts: for each window and mismatch type of severity CRITICAL or HIGH, one MISMATCH alert per
mismatch opened in the window, unless the type opened more than `storm_threshold` in it: then
one STORM alert with the count and up to 10 sample order ids replaces the single alerts.
These are emitted when their window closes. SOURCE_STALLED and SOURCE_RECOVERED alerts (one
pair per stall of an input topic, ``sources.py``) are emitted when the partial that changes
the topic's stall arrives, before the windows it closes.
"""

from __future__ import annotations

from typing import Any

import msgspec

from streams.metrics.sources import SourceStall, alert_id, source_alerts
from streams.metrics.windows import Partial, WindowCounts

_SEVERITY_RANK = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3}
#: at most this many windows are emitted in one step (a guard against absurd time jumps)
MAX_WINDOWS_PER_STEP = 100_000
RECENT_WINDOWS = 120


class AggregatorState(msgspec.Struct):
    """Everything stage 2 keeps (one Faust table key)."""

    watermarks: dict[int, int] = msgspec.field(default_factory=dict)
    idle: dict[int, bool] = msgspec.field(default_factory=dict)
    pending: dict[int, WindowCounts] = msgspec.field(default_factory=dict)
    next_emit: int | None = None
    #: late events not yet added to a window (kept for states written by earlier versions)
    late_carry: int = 0
    #: input topic -> its stall, while one of its partitions is stalled (``sources.py``)
    stalls: dict[str, SourceStall] = msgspec.field(default_factory=dict)


class Aggregator:
    """Combines partials into final MetricsWindow and Alert records (as Avro-ready dicts)."""

    def __init__(self, size: int, storm_threshold: int, sample_limit: int,
                 partitions: int | None = None) -> None:
        self.size = size
        self.storm_threshold = storm_threshold
        self.sample_limit = sample_limit
        #: input partition count; None: only the partitions that reported count
        self.partitions = partitions

    def global_watermark(self, state: AggregatorState) -> int | None:
        """Min over non-idle reporting partitions; max over all when all are idle."""
        if not state.watermarks:
            return None
        if self.partitions is not None and any(p not in state.idle
                                               for p in range(self.partitions)):
            return None  # a partition that has not reported yet may still hold any window
        active = [wm for p, wm in state.watermarks.items() if not state.idle.get(p, False)]
        return min(active) if active else max(state.watermarks.values())

    def on_partial(self, state: AggregatorState, partial: Partial, now: int | None = None
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Fold in one partial; return the windows and alerts that became final: first the
        source alerts its stalled inputs call for, then those of the windows it closes.
        `now`: the wall clock (epoch ms) to measure stalls against when the partial does not
        carry its own (``Partial.sent_at``)."""
        clock = partial.sent_at if partial.sent_at is not None else now
        sources = source_alerts(state.stalls, partial.partition, partial.stalled, clock)
        if partial.watermark is not None:
            previous = state.watermarks.get(partial.partition)
            if previous is None or partial.watermark > previous:
                state.watermarks[partial.partition] = partial.watermark
        state.idle[partial.partition] = partial.all_idle
        for start, counts in partial.windows.items():
            if state.next_emit is not None and start < state.next_emit:
                self._add_late(state, state.next_emit, counts)
                continue
            state.pending.setdefault(start, WindowCounts()).add(counts, self.sample_limit)
        windows, alerts = self._emit(state)
        return windows, sources + alerts

    def _add_late(self, state: AggregatorState, into: int, counts: WindowCounts) -> None:
        """A window already emitted: its events count as late, its outputs as they are."""
        late = msgspec.structs.replace(
            counts, orders_placed=0, payments_succeeded=0, payments_failed=0, gmv={},
            refunds=0, shipments_created=0,
            late_events=_event_count(counts) + counts.late_events)
        state.pending.setdefault(into, WindowCounts()).add(late, self.sample_limit)

    def _emit(self, state: AggregatorState) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        windows: list[dict[str, Any]] = []
        alerts: list[dict[str, Any]] = []
        wm = self.global_watermark(state)
        if wm is None:
            return windows, alerts
        if state.next_emit is None:
            # the first window is fixed only when it is final: until then a partition may
            # still report an earlier one
            if not state.pending or min(state.pending) + self.size > wm:
                return windows, alerts
            state.next_emit = min(state.pending)
        while state.next_emit + self.size <= wm and len(windows) < MAX_WINDOWS_PER_STEP:
            start = state.next_emit
            counts = state.pending.pop(start, WindowCounts())
            counts.late_events += state.late_carry
            state.late_carry = 0
            windows.append(self.window_record(start, counts))
            alerts.extend(self.alerts(start, counts))
            state.next_emit = start + self.size
        return windows, alerts

    def window_record(self, start: int, c: WindowCounts) -> dict[str, Any]:
        """The MetricsWindow record of a window."""
        attempts = c.payments_succeeded + c.payments_failed
        return {
            "window_start": start,
            "window_end": start + self.size,
            "orders_placed": c.orders_placed,
            "payments_succeeded": c.payments_succeeded,
            "payments_failed": c.payments_failed,
            "payment_success_rate": c.payments_succeeded / attempts if attempts else None,
            "gmv": dict(sorted(c.gmv.items())),
            "refunds": c.refunds,
            "shipments_created": c.shipments_created,
            "mismatches_opened": dict(sorted(c.mismatches_opened.items())),
            "mismatches_resolved": c.mismatches_resolved,
            "commands_issued": dict(sorted(c.commands_issued.items())),
            "dead_letters": c.dead_letters,
            "late_events": c.late_events,
        }

    def alerts(self, start: int, c: WindowCounts) -> list[dict[str, Any]]:
        """The alerts of a closed window: singles, or one STORM per type over the threshold."""
        result: list[dict[str, Any]] = []
        end = start + self.size
        for mtype in sorted(c.samples):
            samples = c.samples[mtype]
            if not samples:
                continue
            count = (c.mismatches_opened.get(mtype, len(samples))
                     - c.mismatches_without.get(mtype, 0))
            if count > self.storm_threshold:
                orders = list(dict.fromkeys(s.order_id for s in samples))[:10]
                severity = min((s.severity for s in samples), key=_SEVERITY_RANK.__getitem__)
                result.append({
                    "alert_id": alert_id("STORM", mtype, start),
                    "kind": "STORM", "mismatch_type": mtype, "severity": severity,
                    "count": count, "window_start": start, "window_end": end,
                    "sample_order_ids": orders, "source": None,
                })
                continue
            for s in samples:
                result.append({
                    "alert_id": alert_id("MISMATCH", s.mismatch_id),
                    "kind": "MISMATCH", "mismatch_type": mtype, "severity": s.severity,
                    "count": 1, "window_start": start, "window_end": end,
                    "sample_order_ids": [s.order_id], "source": None,
                })
        return result


def _event_count(c: WindowCounts) -> int:
    return (c.orders_placed + c.payments_succeeded + c.payments_failed + c.refunds
            + c.shipments_created)


_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(AggregatorState)
_partial_decoder = msgspec.msgpack.Decoder(Partial)


def encode(obj: AggregatorState | Partial) -> bytes:
    """msgpack bytes of a state or a partial."""
    return _encoder.encode(obj)


def decode_state(data: bytes) -> AggregatorState:
    """AggregatorState from msgpack bytes."""
    return _state_decoder.decode(data)


def decode_partial(data: bytes) -> Partial:
    """Partial from msgpack bytes."""
    return _partial_decoder.decode(data)
