"""Deciding the rules of the rule table: findings, conditions, records, rule watermarks.

Everything here is a pure function of one order's events; the streaming engine and the batch
evaluator both use it. The rules themselves are the entries of ``streams.rules.table``.

* A **decision** is ``Decision(due, rule, key)``: rule number (contract order), its decision
  time D and its key, the entity of its trigger event. The key is the rule's subject unless
  its ``subjects`` says otherwise: PAID_NOT_SHIPPED's subject is the order (key: the
  CONFIRMED reservation), REFUND_WITHOUT_RELEASE's are the reservations still active at D
  (key: the refunded payment), found when the decision is evaluated.
* Decisions are *derived* from the events (``derive_decisions``, in ``triggers``). A
  decision with decision time D depends only on events with event_time <= D, so deriving
  from the events up to D gives the same answer as deriving from all of them.
* ``decide`` evaluates a decision as of D: it returns one ``Finding`` (a mismatch to open)
  per subject for which the rule fires, or nothing.
* ``holds`` is a rule's fires-when condition for one subject re-evaluated at a time T; an OPEN
  mismatch is resolved at the first later event time where it no longer holds. Rules that
  state fixed facts never resolve (``RuleSpec.resolvable`` False).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from streams.config import RuleConfig
from streams.model import Command, Mismatch, MismatchType, Severity, Source, Status, Step
from streams.rulebook import SHADOW_MARK, CommandMode, issue_as
from streams.rules.entities import OrderView
from streams.rules.ids import mismatch_id
from streams.rules.spec import CommandSpec as CommandSpec  # re-exported
from streams.rules.spec import RuleSpec as RuleSpec  # re-exported
from streams.rules.spec import iso as iso  # re-exported
from streams.rules.table import COMMANDS
from streams.rules.table import RULES as RULES  # re-exported
from streams.rules.triggers import Decision as Decision  # re-exported
from streams.rules.triggers import derive_decisions as derive_decisions  # re-exported
from streams.rules.triggers import in_force, trigger_of

#: rule number of each mismatch type
RULE_OF: dict[MismatchType, int] = {spec.type: n for n, spec in RULES.items()}


def _decided_on(rule: int, in_force: Collection[int]) -> frozenset[Source]:
    spec = RULES[rule]
    if spec.command is None:
        return spec.reads
    return frozenset().union(spec.reads, *(
        other.reads for n, other in RULES.items()
        if n in in_force and other.command is spec.command))


#: rule -> the inputs its own watermark is over: what it reads, and what the other rules
#: that can call for a command of the same type read. Those decide together, so that a
#: command two rules call for (a payment refunded as a duplicate and as unreserved) is
#: issued with the earliest decision, as in the batch evaluator, whichever input lags.
DECIDED_ON: dict[int, frozenset[Source]] = {n: _decided_on(n, RULES) for n in RULES}


def decided_on(rules: RuleConfig) -> dict[int, frozenset[Source]]:
    """``DECIDED_ON`` over the rules ``rules`` leaves on (a rule switched off widens no
    other's watermark: a shop without the orders topic that switches off the rules of the
    order's status gets its refunds, releases and holds decided without waiting for it)."""
    on = set(in_force(rules))
    if len(on) == len(RULES):
        return DECIDED_ON
    return {n: _decided_on(n, on) for n in RULES}


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


def holds(
    rule: int, subject_id: str, key: str, trigger_time: int, view: OrderView, at: int
) -> bool:
    """Whether rule ``rule``'s condition holds for a subject as of event time ``at``."""
    return RULES[rule].holds(subject_id, key, trigger_time, view, at)


def _subjects(spec: RuleSpec, decision: Decision, view: OrderView) -> list[str]:
    """The subjects of the mismatches a decision can open (sorted)."""
    if spec.subjects is None:
        return [decision.key]
    return spec.subjects(view, decision.key, decision.due)


def _fires(spec: RuleSpec, subject: str, key: str, trigger: Step, view: OrderView,
           at: int) -> bool:
    if spec.fires is not None:
        return spec.fires(subject, key, trigger, view, at)
    return spec.holds(subject, key, trigger.event_time, view, at)


def fires(decision: Decision, view: OrderView, rules: RuleConfig) -> bool:
    """Whether ``decide`` finds anything for the decision (without building the findings)."""
    trigger = trigger_of(view, rules, decision)
    if trigger is None:
        return False
    spec = RULES[decision.rule]
    if spec.subjects is None:
        return _fires(spec, decision.key, decision.key, trigger, view, decision.due)
    return any(_fires(spec, subject, decision.key, trigger, view, decision.due)
               for subject in spec.subjects(view, decision.key, decision.due))


def decide(decision: Decision, view: OrderView, rules: RuleConfig) -> list[Finding]:
    """Evaluate a decision as of its time D: one Finding per subject the rule fires for.

    Returns nothing when the decision is not derivable from the events up to D (its trigger
    moved or vanished) or the condition does not hold. Only events with event_time <= D are
    looked at, so the result does not depend on events that arrive after D.
    """
    at, rule, key = decision
    trigger = trigger_of(view, rules, decision)
    if trigger is None:
        return []
    spec = RULES[rule]
    findings: list[Finding] = []
    for subject in _subjects(spec, decision, view):
        if not _fires(spec, subject, key, trigger, view, at):
            continue
        more, details = spec.facts(subject, key, trigger, view, at)
        evidence: list[str] = [trigger.event_id]
        for event in more:
            if event is not None and event.event_id not in evidence:
                evidence.append(event.event_id)
        details["trigger_time"] = iso(trigger.event_time)
        command = (COMMANDS[spec.command](subject, key, trigger, view, at)
                   if spec.command is not None else None)
        findings.append(Finding(rule, view.order_id, subject, key, at, trigger.event_time,
                                tuple(evidence), details, command))
    return findings


# -- what the rules file makes of a finding ------------------------------------------------


def severity_of(finding: Finding, rules: RuleConfig) -> Severity:
    """The severity of a finding's mismatch: the rules file's for its rule, else the table's."""
    spec = finding.spec
    return rules.severity_of(spec.type.value, spec.severity)


def mode_of(finding: Finding, rules: RuleConfig) -> CommandMode | None:
    """The mode of the finding's command as decided now (None: it calls for none)."""
    return None if finding.command is None else rules.mode_of(finding.spec.type.value)


def command_of(finding: Finding, rules: RuleConfig) -> str | None:
    """The command_id the finding's mismatch carries: none when its rule's mode is off."""
    if finding.command is None or mode_of(finding, rules) is CommandMode.OFF:
        return None
    return finding.command.command_id


def issue(finding: Finding, rules: RuleConfig, issued: Collection[str]) -> CommandMode | None:
    """How the finding's command goes out (None: not at all), given the order's ledger of
    issued commands (``rulebook.ledger_key`` entries): ``rulebook.issue_as``."""
    mode = mode_of(finding, rules)
    if mode is None or finding.command is None:
        return None
    cid = finding.command.command_id
    return issue_as(mode, cid in issued, SHADOW_MARK + cid in issued)


# -- records ------------------------------------------------------------------------------


def open_record(finding: Finding, command: str | None, detected_at: int,
                severity: Severity | None = None) -> Mismatch:
    """The OPEN Mismatch record of a finding, carrying the command_id it maps to (and the
    severity the rules file gives it, the table's when None)."""
    return Mismatch(
        mismatch_id=finding.mismatch_id,
        type=finding.spec.type,
        status=Status.OPEN,
        order_id=finding.order_id,
        subject_id=finding.subject_id,
        severity=finding.spec.severity if severity is None else severity,
        decided_at=finding.decided_at,
        detected_at=detected_at,
        evidence=finding.evidence,
        command_id=command,
        details=dict(finding.details),
    )


def command_record(finding: Finding, issued_at: int, shadow: bool = False
                   ) -> Command | None:
    """The Command a finding calls for (None when its rule has no command); ``shadow``:
    decided in shadow mode (it goes to the shadow topic)."""
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
        payment_id=spec.payment_id,
        shadow=shadow,
    )
