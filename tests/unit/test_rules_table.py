"""The rule table: its entries are consistent, and the triggers' derivation holds for any
trigger the table can express (order events, ``after`` an order event, a rule switched off)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import native
from streams.config import RuleConfig
from streams.model import LIFECYCLE, Event, Item, MismatchType, Severity, Source, Step
from streams.rulebook import RULEBOOK
from streams.rules import table, triggers
from streams.rules.catalog import DECIDED_ON, RULE_OF
from streams.rules.entities import OrderView, dedup, trigger_key
from streams.rules.spec import RuleSpec, Trigger
from streams.rules.triggers import FOREVER, Decision, Plan, plan_of

RULES = RuleConfig(payment_timeout=40, reservation_timeout=20, shipment_timeout=60,
                   payment_grace=10, release_timeout=30, tcc_grace=5)
ORD, PAY, INV, SHIP = Source.ORDERS, Source.PAYMENTS, Source.INVENTORY, Source.SHIPPING


def test_the_table_is_consistent() -> None:
    assert list(table.RULES) == list(range(1, len(table.RULES) + 1))
    for number, spec in table.RULES.items():
        assert spec.number == number
        assert RULE_OF[spec.type] == number
        assert spec.reads <= DECIDED_ON[number]
        assert spec.trigger.source in spec.reads or spec.trigger.source is ORD
        assert spec.command is None or spec.command in table.COMMANDS
        if spec.trigger.after is not None:
            assert ORD in spec.reads  # D waits for an order event: the rule reads orders
    assert len({spec.type for spec in table.RULES.values()}) == len(table.RULES)


def test_the_table_says_what_the_rulebook_says() -> None:
    """The settings' view of each rule (``streams.rulebook``: the rules file, ``crosscheck
    rules``) and its entry agree: reads, the duration D adds, severity, command."""
    for spec, info in zip(table.RULES.values(), RULEBOOK, strict=False):
        assert spec.type == info.type
        assert sorted(s.value for s in spec.reads) == sorted(info.inputs), info.type
        assert spec.trigger.delay == info.threshold, info.type
        assert spec.severity == info.severity, info.type
        assert (spec.command.value if spec.command else None) == info.command, info.type
    assert len(table.RULES) <= len(RULEBOOK)


@pytest.mark.skipif(native.status() != "native", reason="the native engine is not built")
def test_the_native_table_is_the_python_one() -> None:
    module = native.load()
    assert module is not None
    ours = [(n, spec.type.value, spec.severity.value,
             spec.command.value if spec.command else None, sorted(s.value for s in spec.reads),
             spec.trigger.source.value, list(spec.trigger.types), spec.trigger.delay,
             spec.trigger.first, spec.trigger.after, spec.resolvable)
            for n, spec in table.RULES.items()]
    theirs = [(n, kind, severity, command, sorted(reads), source, list(types), delay, first,
               after, resolvable)
              for n, kind, severity, command, reads, source, types, delay, first, after,
              resolvable in module.RULES]
    assert theirs == ours


@pytest.mark.parametrize("bad", [
    dict(source=PAY, types=("RESERVED",)),
    dict(source=PAY, types=()),
    dict(source=PAY, types=("SUCCEEDED",), delay="no_such_setting"),
    dict(source=PAY, types=("SUCCEEDED",), after="SUCCEEDED"),
    dict(source=ORD, types=("CANCELLED",), after="PLACED"),
    dict(source=INV, types=("RESERVED",), first=True, after="PLACED"),
])
def test_a_trigger_the_derivation_cannot_handle_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Trigger(**bad)  # type: ignore[arg-type]


def test_a_rule_not_in_force_calls_for_no_decision() -> None:
    events = [Event(PAY, "e1", "o", "SUCCEEDED", 100, "p1", amount=1, currency="CNY")]
    view = OrderView("o", events)
    every = Plan(RULES)
    without = Plan(RULES, [n for n in table.RULES if n != 5])
    assert 5 in every.by_rule and 5 not in without.by_rule
    assert {a[0] for a in every.on[(PAY, 0)]} == {2, 5, 6, 11, 12}
    assert {a[0] for a in without.on[(PAY, 0)]} == {2, 6, 11, 12}
    assert Decision(100, 5, "p1") in triggers.derive_decisions(view, RULES)


# -- the derivation, for triggers of every shape the table allows ------------------------

#: more shapes than the table's own (an order event's trigger without ``first``, other
#: anchors and delays), added to the table for these tests only
SHAPES = {
    16: Trigger(PAY, ("REFUNDED",), "tcc_grace", after="CANCELLED"),
    17: Trigger(ORD, ("CANCELLED",), "release_timeout"),
    18: Trigger(SHIP, ("DISPATCHED",), "payment_grace", after="PAID"),
    19: Trigger(INV, ("RESERVED",), "payment_grace", after="PLACED"),
    20: Trigger(ORD, ("PLACED",), "tcc_grace", first=True),
}


@pytest.fixture
def shaped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table with SHAPES added (and the plans built again)."""
    base = table.RULES[9]
    for number, trigger in SHAPES.items():
        monkeypatch.setitem(table.RULES, number, RuleSpec(
            number, MismatchType.TCC_EMPTY_ROLLBACK, Severity.LOW, None, frozenset(Source),
            trigger, holds=base.holds, facts=base.facts))
    monkeypatch.setattr(triggers, "_plans", {})
    monkeypatch.setattr(triggers, "_last", None)


def by_definition(view: OrderView, rules: RuleConfig, at: int) -> dict[Decision, Step]:
    """Every decision up to ``at`` straight from the Trigger definitions: each event of a
    trigger type (the entity's first by (event_time, event_id) only, for ``first``) at
    D = max(its time, the order's first ``after`` event) + delay."""
    found: dict[Decision, Step] = {}
    for number, spec in table.RULES.items():
        t = spec.trigger
        anchor = None
        if t.after is not None:
            anchor = view.first(ORD, view.order_id, frozenset({t.after_rank}), FOREVER)
            if anchor is None:
                continue
        for entity in view.entity_ids(t.source):
            steps = [s for s in view.log(t.source, entity)
                     if LIFECYCLE[t.source][s.rank] in t.types]
            if t.first and steps:
                steps = [min(steps, key=trigger_key)]
            for s in steps:
                start = s.event_time if anchor is None else max(s.event_time, anchor.event_time)
                decision = Decision(start + t.delay_of(rules), number, entity)
                current = found.get(decision)
                if decision.due <= at and (current is None
                                           or trigger_key(s) < trigger_key(current)):
                    found[decision] = s
    return found


TYPES = {source: list(kinds) for source, kinds in LIFECYCLE.items()}


@st.composite
def events(draw: st.DrawFn) -> list[Event]:
    """One order's events: few entities, coarse times (many ties), some repeated ids."""
    result: list[Event] = []
    for n in range(draw(st.integers(0, 10))):
        source = draw(st.sampled_from(list(Source)))
        kind = draw(st.sampled_from(TYPES[source]))
        t = draw(st.integers(0, 12)) * 5
        entity = "o" if source is ORD else draw(st.sampled_from(["a", "b"]))
        eid = f"e{draw(st.integers(0, n))}"
        result.append(Event(source, eid, "o", kind, t, entity, amount=100, currency="CNY",
                            sku="A", quantity=1, items=(Item("A", 1),), total_amount=100))
    return result


@pytest.mark.usefixtures("shaped")
@settings(max_examples=600, deadline=None)
@given(events(), st.integers(0, 130), st.data())
def test_every_trigger_shape_derives_as_defined(evs: list[Event], at: int,
                                               data: st.DataObject) -> None:
    assert set(plan_of(RULES).by_rule) == set(range(1, 21))
    view = OrderView("o", evs)
    assert triggers.triggers(view, RULES, at) == by_definition(view, RULES, at)
    for decision in by_definition(view, RULES, FOREVER):
        for due in (decision.due - 5, decision.due, decision.due + 5):
            other = decision._replace(due=due)
            assert triggers.trigger_of(view, RULES, other) == by_definition(
                view, RULES, due).get(other)
    history = dedup(evs)
    if history:
        event = history.pop(data.draw(st.integers(0, len(history) - 1)))
        before = set(by_definition(OrderView("o", history), RULES, FOREVER))
        after = OrderView("o", [*history, event])
        expected = sorted(set(by_definition(after, RULES, FOREVER)) - before)
        assert triggers.new_decisions(after, event, RULES) == expected
