"""The ten rules: triggers, decision times, conditions, evidence, details and commands.

Everything here is a pure function of one order's events; the streaming engine and the batch
evaluator both use it.

* A **decision** is ``Decision(due, rule, key)``: rule number 1..10 (contract order), its
  decision time D and its key. The key is the rule's subject except for rule 3
  (PAID_NOT_SHIPPED, subject = order_id, key = the CONFIRMED reservation) and rule 8
  (REFUND_WITHOUT_RELEASE, key = the refunded payment; its subjects, the reservations still
  active at D, are found when the decision is evaluated).
* Decisions are *derived* from the events (``derive_decisions``, in ``triggers``). A
  decision with decision time D depends only on events with event_time <= D, so deriving
  from the events up to D gives the same answer as deriving from all of them.
* ``decide`` evaluates a decision as of D: it returns one ``Finding`` (a mismatch to open)
  per subject for which the rule fires, or nothing.
* ``holds`` is a rule's fires-when condition for one subject re-evaluated at a time T; an OPEN
  mismatch is resolved at the first later event time where it no longer holds. Rules 6 and
  10 state fixed facts and never resolve (``RuleSpec.resolvable`` is False; ``holds`` is
  True for rule 6). Rule 9 is resolvable, but only a late RESERVED/CONFIRMED can flip it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from streams.config import RuleConfig
from streams.model import (
    Command,
    CommandType,
    Mismatch,
    MismatchType,
    Severity,
    Source,
    Status,
    Step,
)
from streams.rules.entities import (
    ACTIVE_PAYMENT,
    ACTIVE_RESERVATION,
    LIVE_SHIPMENT,
    RELEASED,
    OrderView,
)
from streams.rules.ids import command_id, mismatch_id
from streams.rules.triggers import Decision as Decision  # re-exported
from streams.rules.triggers import derive_decisions as derive_decisions  # re-exported
from streams.rules.triggers import trigger_of

MT, CT, SV = MismatchType, CommandType, Severity
PAY, INV, SHIP = Source.PAYMENTS, Source.INVENTORY, Source.SHIPPING


@dataclass(frozen=True)
class RuleSpec:
    """Static facts of a rule. ``reads``: the inputs its decisions rest on (the contract's
    "reads" column): a command of the rule is issued only once each of them has progressed
    past the decision time (``streams.engine.held``)."""

    number: int
    type: MismatchType
    severity: Severity
    command: CommandType | None
    reads: frozenset[Source]
    resolvable: bool = True


ORD = Source.ORDERS
_I, _P, _S, _O = frozenset({INV}), frozenset({PAY}), frozenset({SHIP}), frozenset({ORD})

#: The catalog, by rule number (the contract's table order).
RULES: dict[int, RuleSpec] = {
    1: RuleSpec(1, MT.RESERVATION_WITHOUT_PAYMENT, SV.LOW, CT.RELEASE_STOCK, _I | _P),
    2: RuleSpec(2, MT.PAYMENT_WITHOUT_RESERVATION, SV.HIGH, CT.REFUND_PAYMENT, _P | _I),
    3: RuleSpec(3, MT.PAID_NOT_SHIPPED, SV.MEDIUM, CT.EXPEDITE_SHIPMENT, _I | _P | _S),
    4: RuleSpec(4, MT.SHIPPED_WITHOUT_PAYMENT, SV.CRITICAL, CT.HOLD_SHIPMENT, _S | _P),
    5: RuleSpec(5, MT.DUPLICATE_PAYMENT, SV.CRITICAL, CT.REFUND_PAYMENT, _P),
    6: RuleSpec(6, MT.AMOUNT_MISMATCH, SV.HIGH, None, _P | _O, resolvable=False),
    7: RuleSpec(7, MT.OVERSHIPMENT, SV.HIGH, CT.HOLD_SHIPMENT, _S | _I),
    8: RuleSpec(8, MT.REFUND_WITHOUT_RELEASE, SV.MEDIUM, CT.RELEASE_STOCK, _P | _I | _S),
    9: RuleSpec(9, MT.TCC_EMPTY_ROLLBACK, SV.LOW, None, _I),
    10: RuleSpec(10, MT.TCC_HANGING, SV.MEDIUM, CT.RELEASE_STOCK, _I, resolvable=False),
}
#: rule number of each mismatch type
RULE_OF: dict[MismatchType, int] = {spec.type: n for n, spec in RULES.items()}


def _decided_on(rule: int) -> frozenset[Source]:
    spec = RULES[rule]
    if spec.command is None:
        return spec.reads
    return frozenset().union(*(other.reads for other in RULES.values()
                               if other.command is spec.command))


#: rule -> the inputs its own watermark is over: what it reads, and what the other rules
#: that can call for a command of the same type read. Those decide together, so that a
#: command two rules call for (a payment refunded as a duplicate and as unreserved) is
#: issued with the earliest decision, as in the batch evaluator, whichever input lags.
DECIDED_ON: dict[int, frozenset[Source]] = {n: _decided_on(n) for n in RULES}


class CommandSpec(NamedTuple):
    """The compensating action a finding calls for."""

    type: CommandType
    target_id: str
    amount: int | None = None
    currency: str | None = None
    sku: str | None = None
    quantity: int | None = None

    @property
    def command_id(self) -> str:
        """Stable id of this action."""
        return command_id(self.type, self.target_id)


@dataclass(frozen=True)
class Finding:
    """A rule fired for a subject at decision time ``decided_at``: a mismatch to open."""

    rule: int
    order_id: str
    subject_id: str
    key: str
    decided_at: int
    trigger_time: int
    evidence: tuple[str, ...]
    details: dict[str, str] = field(hash=False)
    command: CommandSpec | None

    @property
    def spec(self) -> RuleSpec:
        """The rule that fired."""
        return RULES[self.rule]

    @property
    def mismatch_id(self) -> str:
        """Stable id of the mismatch (type, order, subject)."""
        return mismatch_id(self.spec.type, self.order_id, self.subject_id)


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds and Z."""
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


# -- conditions ---------------------------------------------------------------------------


def holds(
    rule: int, subject_id: str, key: str, trigger_time: int, view: OrderView, at: int
) -> bool:
    """Whether rule ``rule``'s condition holds for a subject as of event time ``at``."""
    if rule == 1:
        active = view.rank(INV, subject_id, at) in ACTIVE_RESERVATION
        return active and not view.any_succeeded(at)
    if rule == 2:
        active = view.rank(PAY, subject_id, at) in ACTIVE_PAYMENT
        return active and not view.active_reservations(at)
    if rule == 3:
        active = view.rank(INV, key, at) in ACTIVE_RESERVATION
        return active and bool(view.active_payments(at)) and not view.live_shipments(at)
    if rule == 4:
        live = view.rank(SHIP, subject_id, at) in LIVE_SHIPMENT
        return live and not view.active_payments(at)
    if rule == 5:
        active = view.rank(PAY, subject_id, at) in ACTIVE_PAYMENT
        return active and view.earlier_payment(subject_id, trigger_time, at) is not None
    if rule == 7:
        live = view.rank(SHIP, subject_id, at) in LIVE_SHIPMENT
        return live and view.overshipped(at) is not None
    if rule == 8:
        active = view.rank(INV, subject_id, at) in ACTIVE_RESERVATION
        return active and not view.active_payments(at) and not view.shipped(at)
    if rule == 9:
        return view.first(INV, subject_id, ACTIVE_RESERVATION, min(at, trigger_time)) is None
    if rule == 10:
        released = view.first(INV, subject_id, _RELEASED, at)
        return released is not None and released.event_time < trigger_time
    return True  # rule 6: a fixed fact once decided


# -- findings -----------------------------------------------------------------------------

Facts = tuple[list[Step | None], dict[str, str], CommandSpec | None]
_RELEASED = frozenset({RELEASED})


def _release(view: OrderView, reservation: str, at: int) -> CommandSpec:
    line = view.reservation_line(reservation, at)
    sku, quantity = line if line else (None, None)
    return CommandSpec(CT.RELEASE_STOCK, reservation, sku=sku, quantity=quantity)


def _refund(payment: str, trigger: Step) -> CommandSpec:
    return CommandSpec(
        CT.REFUND_PAYMENT, payment, amount=trigger.amount, currency=trigger.currency
    )


def _reservation_facts(view: OrderView, reservation: str, at: int) -> dict[str, str]:
    line = view.reservation_line(reservation, at)
    facts = {"reservation_id": reservation}
    if line:
        facts.update(sku=line[0], quantity=str(line[1]))
    return facts


def _payment_facts(payment: str, trigger: Step) -> dict[str, str]:
    return {
        "payment_id": payment,
        "amount": str(trigger.amount),
        "currency": str(trigger.currency),
    }


def _facts(rule: int, subject: str, key: str, trigger: Step, view: OrderView, at: int) -> Facts:
    """(evidence events after the trigger, details, command) of a finding at ``at``. The
    trigger is an event of the decision's key (rules 2, 5, 6, 8: the payment)."""
    if rule in (1, 8):
        details = _reservation_facts(view, subject, at)
        if rule == 8:
            details["payment_id"] = key
        return [view.latest(INV, subject, at)], details, _release(view, subject, at)
    if rule == 2:
        return [view.latest(PAY, subject, at)], _payment_facts(key, trigger), _refund(key, trigger)
    if rule == 3:
        payments = view.active_payments(at)
        evidence = [view.latest(INV, key, at)] + [view.latest(PAY, p, at) for p in payments]
        details = {"reservation_id": key, "payment_ids": ",".join(payments)}
        return evidence, details, CommandSpec(CT.EXPEDITE_SHIPMENT, view.order_id)
    if rule in (4, 7):
        details = {"shipment_id": subject, "shipment_state": str(view.state(SHIP, subject, at))}
        evidence = [view.latest(SHIP, subject, at)]
        over = view.overshipped(at) if rule == 7 else None
        if over is not None:
            sku, shipped, reserved = over
            details.update(sku=sku, shipped=str(shipped), reserved=str(reserved))
            for s in view.live_shipments(at):
                if sku in view.shipment_items(s, at):
                    evidence.append(view.latest(SHIP, s, at))
            for r in view.active_reservations(at):
                line = view.reservation_line(r, at)
                if line and line[0] == sku:
                    evidence.append(view.latest(INV, r, at))
        return evidence, details, CommandSpec(CT.HOLD_SHIPMENT, subject)
    if rule == 5:
        other = view.earlier_payment(subject, trigger.event_time, at) or ""
        details = _payment_facts(key, trigger) | {"other_payment_id": other}
        return [view.first(PAY, other, ACTIVE_PAYMENT, at)], details, _refund(key, trigger)
    if rule == 6:
        placed = view.placed(at)
        details = _payment_facts(key, trigger)
        if placed is not None:
            details["expected_amount"] = str(placed.total_amount)
            details["expected_currency"] = str(placed.currency)
        return [placed], details, None
    if rule == 9:
        return [], {"reservation_id": subject}, None
    released = view.first(INV, subject, _RELEASED, at)
    details = {"reservation_id": subject}
    if released is not None:
        details["released_at"] = iso(released.event_time)
    return [released], details, _release(view, subject, at)


def _amount_differs(trigger: Step, placed: Step | None) -> bool:
    if placed is None:
        return False
    return trigger.amount != placed.total_amount or trigger.currency != placed.currency


def _subjects(decision: Decision, view: OrderView) -> list[tuple[str, str]]:
    """(subject, key) of each mismatch a decision can open: rule 8 one per reservation
    active at D, rule 3 the order, every other rule its key."""
    rule, key = decision.rule, decision.key
    if rule == 8:
        return [(r, key) for r in view.active_reservations(decision.due)]
    if rule == 3:
        return [(view.order_id, key)]
    return [(key, key)]


def _fires(rule: int, subject: str, key: str, trigger: Step, view: OrderView, at: int) -> bool:
    if rule == 6:
        return _amount_differs(trigger, view.placed(at))
    return holds(rule, subject, key, trigger.event_time, view, at)


def fires(decision: Decision, view: OrderView, rules: RuleConfig) -> bool:
    """Whether ``decide`` finds anything for the decision (without building the findings)."""
    trigger = trigger_of(view, rules, decision)
    if trigger is None:
        return False
    return any(_fires(decision.rule, subject, key, trigger, view, decision.due)
               for subject, key in _subjects(decision, view))


def decide(decision: Decision, view: OrderView, rules: RuleConfig) -> list[Finding]:
    """Evaluate a decision as of its time D: one Finding per subject the rule fires for.

    Returns nothing when the decision is not derivable from the events up to D (its trigger
    moved or vanished) or the condition does not hold. Only events with event_time <= D are
    looked at, so the result does not depend on events that arrive after D.
    """
    at = decision.due
    trigger = trigger_of(view, rules, decision)
    if trigger is None:
        return []
    rule = decision.rule
    findings: list[Finding] = []
    for subject, key in _subjects(decision, view):
        if not _fires(rule, subject, key, trigger, view, at):
            continue
        more, details, command = _facts(rule, subject, key, trigger, view, at)
        evidence: list[str] = [trigger.event_id]
        for event in more:
            if event is not None and event.event_id not in evidence:
                evidence.append(event.event_id)
        details["trigger_time"] = iso(trigger.event_time)
        findings.append(
            Finding(
                rule,
                view.order_id,
                subject,
                key,
                at,
                trigger.event_time,
                tuple(evidence),
                details,
                command,
            )
        )
    return findings


# -- records ------------------------------------------------------------------------------


def open_record(finding: Finding, command: str | None, detected_at: int) -> Mismatch:
    """The OPEN Mismatch record of a finding, carrying the command_id it maps to."""
    return Mismatch(
        mismatch_id=finding.mismatch_id,
        type=finding.spec.type,
        status=Status.OPEN,
        order_id=finding.order_id,
        subject_id=finding.subject_id,
        severity=finding.spec.severity,
        decided_at=finding.decided_at,
        detected_at=detected_at,
        evidence=finding.evidence,
        command_id=command,
        details=dict(finding.details),
    )


def command_record(finding: Finding, issued_at: int) -> Command | None:
    """The Command a finding calls for (None when its rule has no command)."""
    spec = finding.command
    if spec is None:
        return None
    return Command(
        command_id=spec.command_id,
        type=spec.type,
        order_id=finding.order_id,
        target_id=spec.target_id,
        mismatch_id=finding.mismatch_id,
        issued_at=issued_at,
        amount=spec.amount,
        currency=spec.currency,
        sku=spec.sku,
        quantity=spec.quantity,
    )
