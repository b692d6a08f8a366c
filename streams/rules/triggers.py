"""Decisions and their trigger events, derived from the rule table's triggers.

A **decision** is ``Decision(due, rule, key)``: rule number (contract order), its decision
time D and its key (the entity of its trigger; see ``streams.rules.spec.Trigger``).
``triggers`` derives every decision of an order with its trigger event; ``due_between`` the
decisions due in a span of event time (what the engine makes when the watermark crosses
it); ``trigger_of`` finds the trigger of one decision, looking at its entity's events only
(what ``decide`` needs, per decision, on the engine's hot path); ``new_decisions`` the
decisions one arriving event adds. All three read the rules' ``Trigger`` entries, through
a ``Plan``: the table's triggers with their delays for one RuleConfig, grouped as each
function reads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from streams.config import RuleConfig
from streams.model import RANK, Event, Source, Step
from streams.rules.entities import OrderView, trigger_key
from streams.rules.table import RULES

FOREVER = 2**62  # "no upper bound" for event-time queries

ORD = Source.ORDERS


class Decision(NamedTuple):
    """One decision to make: at ``due`` (event time D), rule ``rule`` for ``key``."""

    due: int
    rule: int
    key: str


#: (due, rule, key, trigger step): one event calling for one decision
Candidate = tuple[int, int, str, Step]
#: one rule's trigger with its delay: (rule, source, ranks, delay in ms, first, after rank)
Armed = tuple[int, Source, frozenset[int], int, bool, int | None]


class Plan:
    """The triggers of the rules in force, with their delays for one RuleConfig, grouped
    as the functions here read them."""

    def __init__(self, rules: RuleConfig, numbers: Iterable[int] | None = None) -> None:
        """``numbers``: the rules in force (None: every rule of the table)."""
        self.rules = rules
        armed: list[Armed] = []
        own = {s.type: s.threshold for s in rules.per_rule if s.threshold is not None}
        for n in sorted(RULES if numbers is None else numbers):
            t = RULES[n].trigger
            # the rule's own duration where the rules file gives one, else the global one
            delay = own.get(RULES[n].type.value, t.delay_of(rules)) if t.delay else 0
            armed.append((n, t.source, t.ranks, delay, t.first, t.after_rank))
        #: rule -> its trigger
        self.by_rule: dict[int, Armed] = {a[0]: a for a in armed}
        #: (source, rank) -> the triggers an event of that type is (or may be, ``first``) one of
        self.on: dict[tuple[Source, int], tuple[Armed, ...]] = {
            (s, r): tuple(a for a in armed if a[1] is s and r in a[2])
            for s in Source for r in RANK[s].values()}
        #: rank of an order event -> the triggers whose D waits for the order's first of them
        self.anchored: dict[int, tuple[Armed, ...]] = {
            r: tuple(a for a in armed if a[5] == r) for r in RANK[ORD].values()}
        #: per source with triggers: (source, rank -> (rule, delay) of the triggers of every
        #: event of that rank, rank -> (rule, delay, after rank) of those ``after`` an order
        #: event (None: there are none), the ``first`` triggers)
        self.sources: list[tuple[Source, list[tuple[tuple[int, int], ...]],
                                 list[tuple[tuple[int, int, int], ...]] | None,
                                 tuple[Armed, ...]]] = []
        for source in Source:
            mine = [a for a in armed if a[1] is source]
            if not mine:
                continue
            ranks = range(len(RANK[source]))
            plain = [tuple((a[0], a[3]) for a in mine
                           if not a[4] and a[5] is None and r in a[2]) for r in ranks]
            after = [tuple((a[0], a[3], a[5]) for a in mine
                           if a[5] is not None and r in a[2]) for r in ranks]
            self.sources.append((source, plain, after if any(after) else None,
                                 tuple(a for a in mine if a[4])))


_plans: dict[RuleConfig, Plan] = {}
_last: tuple[RuleConfig, Plan] | None = None


def in_force(rules: RuleConfig) -> list[int]:
    """The numbers of the rules ``rules`` leaves on (a rule switched off in the rules file
    makes no decision; its open mismatches are still rechecked)."""
    return [n for n, spec in RULES.items() if rules.enabled(spec.type.value)]


def plan_of(rules: RuleConfig) -> Plan:
    """The plan of every rule in force for ``rules`` (built once per RuleConfig)."""
    global _last
    if _last is not None and _last[0] is rules:
        return _last[1]
    plan = _plans.get(rules)
    if plan is None:
        plan = _plans[rules] = Plan(rules, in_force(rules))
    _last = (rules, plan)
    return plan


#: each rank of an order event, as the set ``OrderView.first`` takes
_ORDER_RANKS = {rank: frozenset({rank}) for rank in RANK[ORD].values()}


def _anchor(view: OrderView, rank: int, at: int) -> Step | None:
    """The order's first own event of ``rank`` by (event_time, event_id), up to ``at``."""
    return view.first(ORD, view.order_id, _ORDER_RANKS[rank], at)


def _candidates(view: OrderView, plan: Plan, low: int, high: int) -> list[Candidate]:
    """Every (decision, trigger) pair the order's events call for with low < due <= high: a
    decision appears once per event that calls for it (a ``first`` trigger: once, with its
    entity's first such event)."""
    found: list[Candidate] = []
    anchors: dict[int, Step | None] = {}
    for source, plain, anchored, firsts in plan.sources:
        if source is Source.PAYMENTS:
            entities = view.payments
        elif source is Source.INVENTORY:
            entities = view.reservations
        elif source is Source.SHIPPING:
            entities = view.shipments
        else:
            entities = view.entities(source)
        for key, log in entities.items():
            for s in log:
                for rule, delay in plain[s.rank]:
                    due = s.event_time + delay
                    if low < due <= high:
                        found.append((due, rule, key, s))
                if anchored is None:
                    continue
                for rule, delay, after in anchored[s.rank]:
                    if after not in anchors:
                        anchors[after] = _anchor(view, after, FOREVER)
                    anchor = anchors[after]
                    if anchor is not None:
                        due = max(s.event_time, anchor.event_time) + delay
                        if low < due <= high:
                            found.append((due, rule, key, s))
            for rule, _, ranks, delay, _, _ in firsts:
                first: Step | None = None
                for s in log:  # lifecycle order is by event_time first
                    if s.rank in ranks and (first is None or (
                            s.event_time == first.event_time and s.event_id < first.event_id)):
                        first = s
                if first is not None:
                    due = first.event_time + delay
                    if low < due <= high:
                        found.append((due, rule, key, first))
    return found


def triggers(view: OrderView, rules: RuleConfig, at: int) -> dict[Decision, Step]:
    """Every decision derivable from the events up to ``at``, with its trigger event.

    When several events trigger the same decision, the first by (event_time, event_id) is
    the trigger (it leads the evidence). A decision at D rests on events up to D only (its
    triggers come at or before D), so those with D <= at are what the events up to ``at``
    call for.
    """
    found: dict[Decision, Step] = {}
    for due, rule, key, step in _candidates(view, plan_of(rules), -FOREVER, at):
        decision = Decision(due, rule, key)
        current = found.get(decision)
        if current is None or trigger_key(step) < trigger_key(current):
            found[decision] = step
    return found


def due_between(view: OrderView, rules: RuleConfig, low: int | None, high: int
                ) -> list[Decision]:
    """The decisions with low < due <= high (low None: no lower bound), sorted: what the
    engine makes when its watermark moves from ``low`` to ``high``."""
    found = _candidates(view, plan_of(rules), -FOREVER if low is None else low, high)
    if not found:
        return []
    return sorted({Decision(due, rule, key) for due, rule, key, _ in found})


def trigger_of(view: OrderView, rules: RuleConfig, decision: Decision) -> Step | None:
    """The trigger of a decision as of its time D, None if the events up to D do not call
    for it: ``triggers(view, rules, decision.due).get(decision)``, from the events of the
    decision's entity (its key) only."""
    at, rule, key = decision
    armed = plan_of(rules).by_rule.get(rule)
    if armed is None:
        return None
    _, source, ranks, delay, first, after = armed
    if first:
        step = view.first(source, key, ranks, at)
        if step is not None and step.event_time + delay == at:
            return step
        return None
    if after is None:
        matches = [s for s in view.history(source, key, at)
                   if s.rank in ranks and s.event_time + delay == at]
    else:
        anchor = _anchor(view, after, at)
        if anchor is None:
            return None
        floor = anchor.event_time  # D = max(t, the anchor's time) + delay
        matches = [s for s in view.history(source, key, at)
                   if s.rank in ranks and max(s.event_time, floor) + delay == at]
    if not matches:
        return None
    return matches[0] if len(matches) == 1 else min(matches, key=trigger_key)


def _earliest(steps: list[Step]) -> Step | None:
    return min(steps, key=trigger_key) if steps else None


def new_decisions(view: OrderView, event: Event, rules: RuleConfig) -> list[Decision]:
    """``derive_decisions(view) - derive_decisions(view without event)``, sorted, from the
    few decisions ``event`` can add (the engine's hot path: no second derivation).

    ``view`` holds ``event`` (and no other event with its event_id). A decision is new when
    no other event calls for it: for a trigger, no other event of the entity with a trigger
    type and the same D; for a ``first`` trigger, the event became its entity's first at
    another time than the previous first; for a trigger ``after`` an order event, an order
    event of that type that became the order's first moves the D of every such decision.
    """
    plan = plan_of(rules)
    eid, source, t = event.event_id, event.source, event.event_time
    rank = RANK[source].get(event.type, -1)
    triggered = plan.on.get((source, rank), ())
    anchored = plan.anchored.get(rank, ()) if source is ORD else ()
    if not triggered and not anchored:
        return []
    entity = event.entity_id if source is not ORD else view.order_id
    rest = [s for s in view.log(source, entity) if s.event_id != eid]
    found: list[Decision] = []
    for rule, _, ranks, delay, first, after in triggered:
        if first:
            step = view.first(source, entity, ranks, FOREVER)
            if step is not None and step.event_id == eid:
                previous = _earliest([s for s in rest if s.rank in ranks])
                if previous is None or previous.event_time != t:
                    found.append(Decision(t + delay, rule, entity))
        elif after is None:
            if not any(s.event_time == t and s.rank in ranks for s in rest):
                found.append(Decision(t + delay, rule, entity))
        else:
            anchor = _anchor(view, after, FOREVER)
            if anchor is not None:
                floor = anchor.event_time
                due = max(t, floor) + delay
                if not any(s.rank in ranks and max(s.event_time, floor) + delay == due
                           for s in rest):
                    found.append(Decision(due, rule, entity))
    for rule, of, ranks, delay, _, _ in anchored:
        anchor = _anchor(view, rank, FOREVER)
        if anchor is None or anchor.event_id != eid:
            continue  # not the order's first of its type: no D moved
        previous = _earliest([s for s in rest if s.rank == rank])
        for other in view.entity_ids(of):
            steps = [s for s in view.log(of, other) if s.rank in ranks]
            for due in {max(s.event_time, t) + delay for s in steps}:
                if previous is None or all(
                        max(s.event_time, previous.event_time) + delay != due for s in steps):
                    found.append(Decision(due, rule, other))
    return sorted(set(found))


def derive_decisions(events: Iterable[Event] | OrderView, rules: RuleConfig) -> set[Decision]:
    """All decisions the given events of one order (or a view of them) call for."""
    if isinstance(events, OrderView):
        return set(triggers(events, rules, FOREVER))
    evs = list(events)
    if not evs:
        return set()
    return set(triggers(OrderView(evs[0].order_id, evs), rules, FOREVER))
