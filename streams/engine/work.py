"""An order's pending work, derived from its state: the decisions its events call for above
the watermark and the rechecks its OPEN mismatches call for (see ``partition.py``)."""

from __future__ import annotations

from streams.config import RuleConfig
from streams.engine.state import LedgerEntry, OrderState
from streams.model import Command, Mismatch, Status
from streams.rules.catalog import RULES
from streams.rules.entities import OrderView
from streams.rules.triggers import FOREVER, due_between

Output = Mismatch | Command
#: pending work as (due, kind, rule, key): kind DECIDE (a decision of rule ``rule`` for
#: ``key``) or RECHECK (the order's OPEN mismatches); the order it is handled in
Work = tuple[int, int, int, str]
DECIDE = 0
RECHECK = 1


def view_of(state: OrderState) -> OrderView:
    """The rules' view over an order state's logs (no copy: rebuild it after a change)."""
    return OrderView(state.order_id,
                     logs=(state.orders, state.payments, state.reservations, state.shipments))


def open_entries(state: OrderState) -> list[LedgerEntry]:
    """The OPEN, resolvable, not frozen mismatches, by (decided_at, rule, subject)."""
    entries = [
        e
        for e in state.ledger.values()
        if e.status is Status.OPEN and not e.frozen and RULES[e.rule].resolvable
    ]
    if len(entries) > 1:
        entries.sort(key=lambda e: (e.decided_at, e.rule, e.subject_id))
    return entries


def pending_work(state: OrderState, rules: RuleConfig, watermark: int | None,
                 until: int = FOREVER) -> list[Work]:
    """An order's work due after ``watermark`` (None: all) and up to ``until``, in order:
    its decisions, and a recheck at each event time after the earliest OPEN resolvable
    mismatch's decision (what the mismatches opened before then would call for)."""
    view = view_of(state)
    work: list[Work] = [(d.due, DECIDE, d.rule, d.key)
                        for d in due_between(view, rules, watermark, until)]
    entries = open_entries(state)
    if entries:
        since = min(e.decided_at for e in entries)
        low = since if watermark is None else max(since, watermark)
        work.extend((t, RECHECK, 0, "") for t in view.event_times_between(low, until))
        work.sort()
    return work
