"""PartitionEngine: the streaming decision engine of one partition number, over a StateStore.

The engine is synchronous, deterministic and keeps no per-order state in memory between
calls: every order's events, pending work and ledger live in the store (see ``state.py``).
The wall clock is only read through the injected ``clock`` for detected_at / issued_at.

Processing model
----------------
* ``on_event``: a redelivered event (event_id already in the order's history) is ignored
  except for the watermark. Otherwise the event joins the history; decisions newly derivable
  from the history (``derive_decisions`` after minus before, as ``new_decisions`` finds
  them) are scheduled as pending work
  at their decision time D, or made at once when D <= watermark (a late event). A non-late
  event of an order with OPEN mismatches schedules a recheck at its event_time. A late event
  (event_time <= watermark) is followed by an immediate recheck of every OPEN mismatch as of
  max(event_time, decided_at); one that no longer holds is RESOLVED with resolved_at = the
  event's time and resolved_by = its event_id.
* The watermark (``watermark.py``) then advances and every index entry (due, order_id) with
  due <= watermark is processed in (due, order_id) order: the order's pending items with
  due <= that entry are handled in (due, decisions-before-rechecks, rule, key) order.
  A decision is re-derived first and skipped if the events up to D no longer call for it.
* Opening a mismatch: a mismatch_id already in the order's ledger is suppressed (OPEN at most
  once ever, even after RESOLVED); a command_id already issued is not issued again (the
  Mismatch still carries it). Opening schedules rechecks at the order's known event times > D.
* A recheck at T re-evaluates every OPEN, resolvable mismatch decided before T as of T and
  resolves those that no longer hold (resolved_at = T, resolved_by = the smallest event_id at T).
* Eviction: expire_at = max(every decision due scheduled, last event_time + state_retention)
  + allowed_lateness. Rules also fire on an order's later events (a DISPATCHED hours after
  payment, a REFUNDED days later), judged against its whole history, so the history is
  kept until no event has come for state_retention (default 7 days of event time), not
  merely until the last decision: state follows the orders active within that horizon.
  When the watermark reaches it with nothing pending, an order with an empty ledger is
  deleted; otherwise only its ledger is kept and its entries are frozen (no longer
  re-evaluated: their evidence is gone). An event arriving for an evicted order starts a
  fresh history; the ledger still prevents any duplicate OPEN or command.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from streams.config import RuleConfig
from streams.engine import watermark as wmark
from streams.engine.state import (
    DECIDE,
    RECHECK,
    LedgerEntry,
    OrderState,
    PartitionMeta,
    Pending,
)
from streams.engine.store import StateStore
from streams.model import Command, Event, Mismatch, Source, Status
from streams.rules.catalog import (
    RULES,
    Decision,
    Finding,
    command_record,
    decide,
    holds,
)
from streams.rules.entities import OrderView
from streams.rules.triggers import new_decisions

Output = Mismatch | Command


class PartitionEngine:
    """Decides mismatches for the orders of one partition number (see the module docstring)."""

    def __init__(self, rules: RuleConfig, store: StateStore, clock: Callable[[], int]) -> None:
        self.rules = rules
        self.store = store
        self.clock = clock

    # -- public API ------------------------------------------------------------------------

    @property
    def watermark(self) -> int | None:
        """The partition's current watermark (None before there is one)."""
        return self._meta().watermark

    def on_event(self, event: Event) -> list[Output]:
        """Apply one input event; return the mismatches and commands it leads to, in order."""
        out: list[Output] = []
        meta = self._meta()
        state = self.store.get_order(event.order_id) or OrderState(order_id=event.order_id)
        if all(e.event_id != event.event_id for e in state.events):
            self._apply(state, event, meta.watermark, out)
        wmark.observe(meta, event.source, event.event_time, self.rules.allowed_lateness)
        self.store.put_meta(meta)
        self._drain(meta.watermark, out)
        return out

    def set_idle(self, source: Source, idle: bool) -> list[Output]:
        """Mark an input source idle (or active again); return what the watermark move decides."""
        meta = wmark.set_idle(self._meta(), source, idle, self.rules.allowed_lateness)
        self.store.put_meta(meta)
        out: list[Output] = []
        self._drain(meta.watermark, out)
        return out

    def advance_to(self, watermark: int) -> list[Output]:
        """Force the watermark to ``watermark`` (never backwards); return what that decides."""
        meta = wmark.force(self._meta(), watermark)
        self.store.put_meta(meta)
        out: list[Output] = []
        self._drain(meta.watermark, out)
        return out

    # -- internals -------------------------------------------------------------------------

    def _meta(self) -> PartitionMeta:
        return self.store.get_meta() or PartitionMeta()

    def _apply(self, state: OrderState, event: Event, wm: int | None, out: list[Output]) -> None:
        state.events.append(event)
        view = OrderView(state.order_id, state.events, unique=True)
        new = new_decisions(view, event, self.rules)
        self._extend_expiry(state, max([event.event_time + self.rules.state_retention,
                                        *(d.due for d in new)]), wm)
        for decision in new:
            if wm is not None and decision.due <= wm:
                self._decide(state, view, decision, wm, out)
            else:
                item = Pending(decision.due, DECIDE, decision.rule, decision.key)
                self._schedule(state, item, wm)
        if wm is not None and event.event_time <= wm:
            self._late_recheck(state, view, event, out)
        elif state.has_open():
            self._schedule(state, Pending(event.event_time, RECHECK), wm)
        if wm is None:
            self.store.put_order(state.order_id, state)
        else:
            self._process(state, wm, out, view)

    def _extend_expiry(self, state: OrderState, time: int, limit: int | None) -> None:
        expire_at = time + self.rules.allowed_lateness
        if state.expire_at is None or expire_at > state.expire_at:
            state.expire_at = expire_at
            self._index(state, expire_at, limit)

    def _index(self, state: OrderState, due: int, limit: int | None) -> None:
        """Make sure the store's index wakes the order at ``due`` (unless already handled)."""
        if (limit is None or due > limit) and due not in state.dues:
            state.dues.append(due)
            self.store.add_due(due, state.order_id)

    def _schedule(self, state: OrderState, item: Pending, limit: int | None) -> None:
        """Add pending work; ``limit``: work due up to it is handled by the running loop."""
        at = bisect.bisect_left(state.pending, item)
        if at == len(state.pending) or state.pending[at] != item:
            state.pending.insert(at, item)
            self._index(state, item.due, limit)

    def _drain(self, wm: int | None, out: list[Output]) -> None:
        if wm is None:
            return
        while entries := self.store.pop_due(wm):
            for due, order_id in entries:
                state = self.store.get_order(order_id)
                if state is None:
                    continue
                if due in state.dues:
                    state.dues.remove(due)
                self._process(state, due, out)

    def _process(
        self, state: OrderState, limit: int, out: list[Output], view: OrderView | None = None
    ) -> None:
        """Handle the order's pending work due up to ``limit``, then evict or store it."""
        while state.pending and state.pending[0].due <= limit:
            if view is None:  # built on demand: an order woken for its expiry needs none
                view = OrderView(state.order_id, state.events, unique=True)
            item = state.pending.pop(0)
            if item.kind == DECIDE:
                self._decide(state, view, Decision(item.due, item.rule, item.key), limit, out)
            else:
                self._recheck(state, view, item.due, out)
        if state.expire_at is not None and limit >= state.expire_at and not state.pending:
            self._evict(state)
        else:
            self.store.put_order(state.order_id, state)

    def _evict(self, state: OrderState) -> None:
        if not state.ledger:
            self.store.delete_order(state.order_id)
            return
        for entry in state.ledger.values():
            entry.frozen = True
        state.events, state.pending, state.expire_at = [], [], None
        self.store.put_order(state.order_id, state)

    def _decide(
        self,
        state: OrderState,
        view: OrderView,
        decision: Decision,
        limit: int,
        out: list[Output],
    ) -> None:
        for finding in sorted(decide(decision, view, self.rules), key=lambda f: f.subject_id):
            self._open(state, view, finding, limit, out)

    def _open(
        self,
        state: OrderState,
        view: OrderView,
        finding: Finding,
        limit: int,
        out: list[Output],
    ) -> None:
        mid = finding.mismatch_id
        if mid in state.ledger:
            return
        now = self.clock()
        spec = finding.spec
        cid = finding.command.command_id if finding.command else None
        entry = LedgerEntry(
            mismatch_id=mid,
            type=spec.type,
            rule=finding.rule,
            subject_id=finding.subject_id,
            key=finding.key,
            severity=spec.severity,
            decided_at=finding.decided_at,
            trigger_time=finding.trigger_time,
            evidence=finding.evidence,
            details=dict(finding.details),
            command_id=cid,
        )
        state.ledger[mid] = entry
        out.append(entry.record(state.order_id, now))
        command = command_record(finding, now)
        if command is not None and command.command_id not in state.commands:
            state.commands.append(command.command_id)
            out.append(command)
        if spec.resolvable:
            for time in view.event_times():
                if time > finding.decided_at:
                    self._schedule(state, Pending(time, RECHECK), limit)

    def _open_entries(self, state: OrderState) -> list[LedgerEntry]:
        entries = [
            e
            for e in state.ledger.values()
            if e.status is Status.OPEN and not e.frozen and RULES[e.rule].resolvable
        ]
        return sorted(entries, key=lambda e: (e.decided_at, e.rule, e.subject_id))

    def _holds(self, entry: LedgerEntry, view: OrderView, at: int) -> bool:
        return holds(entry.rule, entry.subject_id, entry.key, entry.trigger_time, view, at)

    def _recheck(self, state: OrderState, view: OrderView, at: int, out: list[Output]) -> None:
        first = view.first_event_at(at)
        for entry in self._open_entries(state):
            if entry.decided_at < at and first is not None and not self._holds(entry, view, at):
                self._resolve(state, entry, at, first.event_id, out)

    def _late_recheck(
        self, state: OrderState, view: OrderView, event: Event, out: list[Output]
    ) -> None:
        for entry in self._open_entries(state):
            if not self._holds(entry, view, max(event.event_time, entry.decided_at)):
                self._resolve(state, entry, event.event_time, event.event_id, out)

    def _resolve(
        self, state: OrderState, entry: LedgerEntry, at: int, by: str, out: list[Output]
    ) -> None:
        entry.status, entry.resolved_at, entry.resolved_by = Status.RESOLVED, at, by
        out.append(entry.record(state.order_id, self.clock()))
