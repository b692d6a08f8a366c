"""WindowTracker: counts a partition's events and outputs into its metrics windows and closes them.

The windows themselves (msgspec Structs, encoded into the meta table and the partials) are in
``streams.metrics.windows``; this module holds the logic.
"""

from __future__ import annotations

from streams.metrics.windows import ALERT_SEVERITIES, PartitionWindows, Sample, WindowCounts
from streams.model import Command, Event, Mismatch, Source, Status


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
            t = state.closed_until  # None: nothing closed yet, the window -1
        start = -1 if t is None else self.start_of(t)
        state.dirty.add(start)
        window = state.open.get(start)
        if window is None:  # (setdefault would build a WindowCounts every time)
            window = state.open[start] = WindowCounts()
        return window

    def on_event(self, state: PartitionWindows, event: Event) -> None:
        """Count a (non-redelivered) input event."""
        self.count(state, event.source, event.type, event.event_time, event.amount,
                   event.currency)

    def count(self, state: PartitionWindows, source: Source, etype: str, event_time: int,
              amount: int | None, currency: str | None) -> None:
        """Count a (non-redelivered) input event given by the fields the windows count."""
        late = state.closed_until is not None and event_time < state.closed_until
        window = self._window(state, event_time)
        if late:
            window.late_events += 1
            return
        if source is Source.ORDERS and etype == "PLACED":
            window.orders_placed += 1
        elif source is Source.PAYMENTS:
            if etype == "SUCCEEDED":
                window.payments_succeeded += 1
                currency = currency or ""
                window.gmv[currency] = window.gmv.get(currency, 0) + (amount or 0)
            elif etype == "FAILED":
                window.payments_failed += 1
            elif etype == "REFUNDED":
                window.refunds += 1
        elif source is Source.SHIPPING and etype == "CREATED":
            window.shipments_created += 1

    def on_outputs(self, state: PartitionWindows, outputs: list[Mismatch | Command]) -> None:
        """Count mismatches opened/resolved and commands issued (live ones: a command
        decided in shadow mode is not issued)."""
        decided = {o.mismatch_id: o.decided_at for o in outputs if isinstance(o, Mismatch)}
        for o in outputs:
            if isinstance(o, Mismatch):
                if o.status is Status.OPEN:
                    w = self._window(state, o.decided_at)
                    t = o.type.value
                    w.mismatches_opened[t] = w.mismatches_opened.get(t, 0) + 1
                    if "decided_without" in o.details:  # said once, by SOURCE_STALLED
                        w.mismatches_without[t] = w.mismatches_without.get(t, 0) + 1
                    elif o.severity.value in ALERT_SEVERITIES:
                        samples = w.samples.setdefault(t, [])
                        if len(samples) < self.sample_limit:
                            samples.append(Sample(o.mismatch_id, o.order_id,
                                                  o.severity.value, o.subject_id))
                else:
                    self._window(state, o.resolved_at).mismatches_resolved += 1
            elif not o.shadow:  # (a shadow command is never issued)
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

    def closes_nothing(self, state: PartitionWindows, watermark: int | None) -> bool:
        """Whether ``close(state, watermark)`` would change nothing and return no window (a
        check that costs less than the call)."""
        if watermark is None:
            return True
        return state.closed_until is not None and -1 not in state.open and \
            watermark - watermark % self.size <= state.closed_until

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
