"""PartitionEngine: the streaming decision engine of one partition number, over a StateStore.

The engine is synchronous, deterministic and keeps no per-order state in memory between
calls: every order's event logs, index entries, expiry and ledger live in the store (see
``state.py``). The wall clock is only read through the injected ``clock`` for detected_at /
issued_at.

Processing model
----------------
* Pending work is derived, not stored. After every call, each decision due at or below the
  partition's watermark has been made; so an order's pending work is the decisions its
  events call for with a due time above the watermark, and a recheck at each of its event
  times above the watermark while it has an OPEN, resolvable mismatch decided before that
  time (``pending_work``). Deriving it costs less than storing it: an order woken for a
  decision that does not fire changes nothing and is not written back.
* Only decisions that would fire are indexed (``_arm``). Whether a decision at D fires
  depends on the order's events up to D only, and every event arriving before the
  watermark passes D comes through ``on_event``, which checks again each pending decision
  due at or after that event: one that would fire if it were made now gets an index entry
  at D (an entry stays when the decision stops firing: waking then finds nothing). A
  decision not indexed when the watermark passes D therefore does not fire, and the order
  is not woken for it (nearly all decisions). When it is woken, the order makes every
  decision due in the span it handles, indexed or not.
* ``on_event``: a redelivered event (event_id already in the order's logs) is ignored
  except for the watermark. Otherwise the event joins its entity's log; decisions newly
  derivable from the logs (``new_decisions``) with D <= watermark (a late event) are made at
  once; then the pending decisions are armed (above). A non-late event of an order with
  OPEN mismatches gets an index entry at its event_time (a recheck). A late event
  (event_time <= watermark) is followed by an immediate recheck of every OPEN mismatch as of
  max(event_time, decided_at); one that no longer holds is RESOLVED with resolved_at = the
  event's time and resolved_by = its event_id; then come the rechecks at the event times up
  to the watermark that mismatches opened by this event call for.
* The watermark (``watermark.py``) then advances and the index is drained: entries (due,
  order_id) with due <= watermark are popped in rounds, each round in (due, order_id)
  order; an order woken at ``due`` handles its work due after what it had handled (the
  previous watermark, or an earlier entry of this drain) and up to ``due``, in (due,
  decisions before rechecks, rule, key) order. Decisions are derived again from the logs as
  of D (``due_between``, then ``decide``), so one whose trigger moved is not made. (An
  order's outputs therefore come in the same order whatever entries it has; how the outputs
  of different orders handled in one drain interleave follows the entries and their rounds.)
* Early decisions, per rule: a decision that would fire is also kept in memory by rule,
  and made as soon as its rule's own watermark passes it (``early.py``).
* Opening a mismatch: a mismatch_id already in the order's ledger is suppressed (OPEN at most
  once ever, even after RESOLVED); a command_id already issued is not issued again (the
  Mismatch still carries it). A resolvable mismatch puts index entries at the order's event
  times > D beyond what is being handled.
* A recheck at T re-evaluates every OPEN, resolvable mismatch decided before T as of T and
  resolves those that no longer hold (resolved_at = T, resolved_by = the smallest event_id at T).
* Eviction: expire_at = max(every decision due scheduled, last event_time + state_retention)
  + allowed_lateness (above every due time of its work). Rules also fire on an order's later
  events (a DISPATCHED hours after payment, a REFUNDED days later), judged against its whole
  history, so the history is kept until no event has come for state_retention (default 7
  days of event time), not merely until the last decision: state follows the orders active
  within that horizon. When handling reaches it, an order with an empty ledger is deleted;
  otherwise only its ledger is kept and its entries are frozen (no longer re-evaluated:
  their evidence is gone). An event arriving for an evicted order starts a fresh history;
  the ledger still prevents any duplicate OPEN or command.
"""

from __future__ import annotations

from collections.abc import Callable

from streams.config import RuleConfig
from streams.engine import watermark as wmark
from streams.engine.api import Engine as Engine  # re-exported
from streams.engine.early import EarlyDecisions
from streams.engine.state import LedgerEntry, OrderState, PartitionMeta, add_event
from streams.engine.store import StateStore
from streams.engine.work import DECIDE as DECIDE  # re-exported
from streams.engine.work import RECHECK as RECHECK  # re-exported
from streams.engine.work import Output as Output  # re-exported
from streams.engine.work import Work as Work  # re-exported
from streams.engine.work import open_entries
from streams.engine.work import pending_work as pending_work  # re-exported
from streams.engine.work import view_of as view_of  # re-exported
from streams.model import Event, Source, Status
from streams.rulebook import CommandMode, ledger_key
from streams.rules.catalog import (
    Decision,
    Finding,
    command_of,
    command_record,
    decide,
    decided_on,
    fires,
    holds,
    issue,
    severity_of,
)
from streams.rules.entities import OrderView
from streams.rules.triggers import FOREVER, due_between, new_decisions


class PartitionEngine:
    """Decides mismatches for the orders of one partition number (see the module docstring)."""

    def __init__(self, rules: RuleConfig, store: StateStore, clock: Callable[[], int],
                 early: bool = True) -> None:
        self.rules = rules
        #: whether decisions are made early, at their rule's own watermark (off: only at the
        #: partition's, as an engine of state format 1 did; for the tests that compare with it)
        self.early = early
        self.store = store
        self.clock = clock
        #: whether the last ``on_event`` was a new event (False: a redelivery, ignored)
        self.last_was_new = False
        #: the decisions that would fire, kept by rule for their rule's watermark
        self._early = EarlyDecisions(decided_on(rules))

    # -- public API ------------------------------------------------------------------------

    @property
    def watermark(self) -> int | None:
        """The partition's current watermark (None before there is one)."""
        return self._meta().watermark

    def on_event(self, event: Event) -> list[Output]:
        """Apply one input event; return the mismatches and commands it leads to, in order."""
        out: list[Output] = []
        meta = self._meta()
        before = meta.watermark
        state = self.store.get_order(event.order_id)
        if state is None:
            state = OrderState(event.order_id)
        view = view_of(state)
        self.last_was_new = not view.has_event(event.event_id)
        if self.last_was_new:
            self._apply(state, view, event, before, out)
        wmark.observe(meta, event.source, event.event_time, self.rules.allowed_lateness)
        self.store.put_meta(meta)
        self._drain(before, meta.watermark, out)
        self._decide_early(meta, out)
        return out

    def set_idle(self, source: Source, idle: bool) -> list[Output]:
        """Mark an input source idle (or active again); return what the watermark move decides."""
        meta = self._meta()
        before = meta.watermark
        wmark.set_idle(meta, source, idle, self.rules.allowed_lateness)
        return self._moved(meta, before)

    def set_released(self, source: Source, released: bool) -> list[Output]:
        """Release an input source stalled past source_hold (it stops holding the
        watermark), or hold it again; return what the watermark move decides."""
        meta = self._meta()
        before = meta.watermark
        wmark.set_released(meta, source, released, self.rules.allowed_lateness)
        return self._moved(meta, before)

    def advance_to(self, watermark: int) -> list[Output]:
        """Force the watermark to ``watermark`` (never backwards); return what that decides."""
        meta = self._meta()
        before = meta.watermark
        wmark.force(meta, watermark)
        return self._moved(meta, before)

    # -- internals -------------------------------------------------------------------------

    def _meta(self) -> PartitionMeta:
        return self.store.get_meta() or PartitionMeta()

    def _moved(self, meta: PartitionMeta, before: int | None) -> list[Output]:
        """After a change of the meta from watermark ``before``: store it, and what the
        partition's and the rules' watermarks now decide."""
        self.store.put_meta(meta)
        out: list[Output] = []
        self._drain(before, meta.watermark, out)
        self._decide_early(meta, out)
        return out

    def _apply(self, state: OrderState, view: OrderView, event: Event, wm: int | None,
               out: list[Output]) -> None:
        """Add the event to the order (``view`` is over its logs: it sees the event too)."""
        add_event(state, event)
        new = new_decisions(view, event, self.rules)
        self._extend_expiry(state, max([event.event_time + self.rules.state_retention,
                                        *(d.due for d in new)]), wm)
        rechecks: list[int] = []  # at or below wm: handled below, not indexed
        late = wm is not None and event.event_time <= wm
        now = [d for d in new if wm is not None and d.due <= wm]
        if late and wm is not None:
            # a late event can change any decision already made at or after its time: each
            # is made again (the ledger keeps an OPEN or a command from repeating)
            now = sorted({*now, *due_between(view, self.rules, event.event_time - 1, wm)})
        if wm is not None:
            for decision in now:
                self._decide(state, view, decision, wm, out, rechecks)
        self._arm(state, view, event.event_time, wm)
        if late:
            self._late_recheck(state, view, event, out)
            for at in sorted(set(rechecks)):
                self._recheck(state, view, at, out)
        elif state.has_open():
            self._index(state, event.event_time, wm)
        self._settle(state, wm, wm, changed=True)

    def _arm(self, state: OrderState, view: OrderView, since: int, wm: int | None) -> None:
        """Index the order at each of its pending decisions that would fire if it were made
        now, of those an event at ``since`` can change: due at or after it (a decision at D
        looks at the order's events up to D). Only an event of the order can change whether
        a decision fires, and every event arriving before the watermark passes D comes
        through here, so a decision not armed after the order's last event does not fire
        when the watermark passes it: the order is not woken for it (nearly all decisions)."""
        low = since - 1 if wm is None else max(wm, since - 1)
        dues, early, order_id = state.dues, self._early, state.order_id
        for decision in due_between(view, self.rules, low, FOREVER):
            if decision.due in dues and (not self.early or early.has(
                    decision.rule, decision.due, order_id, decision.key)):
                continue  # indexed and kept already: whether it fires changes nothing
            if fires(decision, view, self.rules):
                self._index(state, decision.due, wm)
                if self.early:
                    self._early.keep(decision.rule, decision.due, state.order_id, decision.key)

    def _decide_early(self, meta: PartitionMeta, out: list[Output]) -> None:
        """Make the kept decisions each rule's own watermark has passed (``early.py``), in
        (due, rule, order_id, key) order, as the batch evaluator makes an order's."""
        if not self._early:
            return
        wm = meta.watermark
        for due, rule, order_id, key in self._early.ready(meta, self.rules.allowed_lateness):
            state = self.store.get_order(order_id)
            if state is None:
                continue
            emitted = len(out)
            self._decide(state, view_of(state), Decision(due, rule, key),
                         -FOREVER if wm is None else wm, out, None)
            if len(out) > emitted:
                self._settle(state, wm, wm, changed=True)

    def _extend_expiry(self, state: OrderState, time: int, limit: int | None) -> None:
        """Move expire_at to ``time`` + lateness if that is later. The index entry at the
        earlier expiry, if there is one, is kept for the move: waking there, the order is
        indexed again at its expiry (``_rearm``), so an order gets an expiry entry or two,
        not one per event."""
        expire_at = time + self.rules.allowed_lateness
        if state.expire_at is None or expire_at > state.expire_at:
            armed = state.expire_at is not None and state.expire_at in state.dues
            state.expire_at = expire_at
            if not armed:
                self._index(state, expire_at, limit)

    def _rearm(self, state: OrderState, until: int) -> bool:
        """After handling up to ``until`` (before its expiry): make sure the index wakes the
        order again, at its expiry if nothing else will; whether that changed its dues."""
        expire_at = state.expire_at
        if expire_at is None or any(d > until for d in state.dues):
            return False
        self._index(state, expire_at, until)
        return True

    def _index(self, state: OrderState, due: int, limit: int | None) -> None:
        """Make sure the store's index wakes the order at ``due`` (unless already handled)."""
        if (limit is None or due > limit) and due not in state.dues:
            state.dues.append(due)
            self.store.add_due(due, state.order_id)

    def _drain(self, before: int | None, wm: int | None, out: list[Output]) -> None:
        """Handle every index entry up to ``wm``; orders handled up to ``before`` already."""
        if wm is None:
            return
        handled: dict[str, int] = {}
        while entries := self.store.pop_due(wm):
            for due, order_id in entries:
                since = handled.get(order_id, before)
                if since is not None and due <= since:
                    continue
                state = self.store.get_order(order_id)
                if state is None:
                    continue
                handled[order_id] = due
                self._wake(state, since, due, wm, out)

    def _wake(self, state: OrderState, since: int | None, until: int, wm: int,
              out: list[Output]) -> None:
        """Handle the order's work due after ``since`` and up to ``until``, then evict it or
        write it back if that changed it."""
        view = view_of(state)
        emitted = len(out)
        decisions = due_between(view, self.rules, since, until)
        times = (view.event_times_between(since, until)
                 if decisions or open_entries(state) else [])
        work: list[Work] = [(d.due, DECIDE, d.rule, d.key) for d in decisions]
        if times:
            work.extend((t, RECHECK, 0, "") for t in times)
            work.sort()
        for due, kind, rule, key in work:
            if kind == DECIDE:
                self._decide(state, view, Decision(due, rule, key), until, out, None)
            elif state.ledger:
                self._recheck(state, view, due, out)
        # a ledger change always emits (an OPEN or a RESOLVED): nothing emitted, no change
        changed = len(out) > emitted
        if state.expire_at is not None and until < state.expire_at:
            changed = self._rearm(state, until) or changed
        self._settle(state, until, wm, changed)

    def _settle(self, state: OrderState, limit: int | None, wm: int | None,
                changed: bool) -> None:
        """Evict the order if handling reached its expiry, else store it if it changed (its
        dues at or below ``wm`` pruned: handled, or handled before this drain ends)."""
        if state.expire_at is not None and limit is not None and limit >= state.expire_at:
            self._evict(state)
        elif changed:
            if wm is not None:
                state.dues = [d for d in state.dues if d > wm]
            self.store.put_order(state.order_id, state)

    def _evict(self, state: OrderState) -> None:
        if not state.ledger:
            self.store.delete_order(state.order_id)
            return
        for entry in state.ledger.values():
            entry.frozen = True
        state.orders, state.payments, state.reservations, state.shipments = [], {}, {}, {}
        state.dues, state.expire_at = [], None
        self.store.put_order(state.order_id, state)

    def _decide(
        self,
        state: OrderState,
        view: OrderView,
        decision: Decision,
        limit: int,
        out: list[Output],
        rechecks: list[int] | None,
    ) -> None:
        findings = decide(decision, view, self.rules)
        if len(findings) > 1:
            findings.sort(key=lambda f: f.subject_id)
        for finding in findings:
            self._open(state, view, finding, limit, out, rechecks)

    def _open(
        self,
        state: OrderState,
        view: OrderView,
        finding: Finding,
        limit: int,
        out: list[Output],
        rechecks: list[int] | None,
    ) -> None:
        """Open a mismatch (once ever). A resolvable one is rechecked at the order's event
        times after D: those up to ``limit`` by the caller (``rechecks`` collects them when
        given), later ones through the index."""
        mid = finding.mismatch_id
        if mid in state.ledger:
            return
        now = self.clock()
        spec = finding.spec
        cid = command_of(finding, self.rules)
        entry = LedgerEntry(
            mismatch_id=mid,
            type=spec.type,
            rule=finding.rule,
            subject_id=finding.subject_id,
            key=finding.key,
            severity=severity_of(finding, self.rules),
            decided_at=finding.decided_at,
            trigger_time=finding.trigger_time,
            evidence=finding.evidence,
            details=dict(finding.details),
            command_id=cid,
        )
        state.ledger[mid] = entry
        out.append(entry.record(state.order_id, now))
        mode = issue(finding, self.rules, state.commands) if cid is not None else None
        if mode is not None:
            shadow = mode is CommandMode.SHADOW
            command = command_record(finding, now, shadow)
            if command is not None:
                state.commands.append(ledger_key(command.command_id, shadow))
                out.append(command)
        if spec.resolvable:
            for time in view.event_times():
                if time <= finding.decided_at:
                    continue
                if time > limit:
                    self._index(state, time, limit)
                elif rechecks is not None:
                    rechecks.append(time)

    def _holds(self, entry: LedgerEntry, view: OrderView, at: int) -> bool:
        return holds(entry.rule, entry.subject_id, entry.key, entry.trigger_time, view, at)

    def _recheck(self, state: OrderState, view: OrderView, at: int, out: list[Output]) -> None:
        entries = [e for e in open_entries(state) if e.decided_at < at]
        if not entries:
            return
        first = view.first_event_at(at)
        if first is None:
            return
        for entry in entries:
            if not self._holds(entry, view, at):
                self._resolve(state, entry, at, first.event_id, out)

    def _late_recheck(
        self, state: OrderState, view: OrderView, event: Event, out: list[Output]
    ) -> None:
        for entry in open_entries(state):
            if not self._holds(entry, view, max(event.event_time, entry.decided_at)):
                self._resolve(state, entry, event.event_time, event.event_id, out)

    def _resolve(
        self, state: OrderState, entry: LedgerEntry, at: int, by: str, out: list[Output]
    ) -> None:
        entry.status, entry.resolved_at, entry.resolved_by = Status.RESOLVED, at, by
        out.append(entry.record(state.order_id, self.clock()))
