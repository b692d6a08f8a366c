"""What a rule of the rule table is made of: its trigger, its conditions, its static facts.

The table itself is ``streams.rules.table``; ``streams.rules.triggers`` derives every
decision from the triggers, ``streams.rules.catalog`` evaluates them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from streams.config import RuleConfig
from streams.model import (
    LIFECYCLE,
    RANK,
    CommandType,
    MismatchType,
    Severity,
    Source,
    Step,
)
from streams.rules.entities import OrderView
from streams.rules.ids import command_id

#: RuleConfig's fields (what a trigger's ``delay`` may name)
_SETTINGS = frozenset(f.name for f in dataclasses.fields(RuleConfig))


@dataclass(frozen=True)
class Trigger:
    """The events that call for a rule's decisions, and when each is decided.

    Each event of ``source`` whose type is one of ``types`` calls for one decision, keyed by
    its entity (payment, reservation or shipment id; the order_id for an order event), at
    D = its event_time + the RuleConfig setting named ``delay`` (none: D = its time).

    * ``first``: only the entity's first such event by (event_time, event_id) calls for it.
    * ``after``: a type of the order's own events (PLACED, ...): without one, no decision;
      with one, D = max(event_time, the time of the order's first of them) + delay, so the
      arrival of that order event calls for the decisions too (at their new D).

    ``first`` and ``after`` do not combine, and an order event's trigger has no ``after``.
    """

    source: Source
    types: tuple[str, ...]
    delay: str | None = None
    first: bool = False
    after: str | None = None
    #: the ranks of ``types`` in their source's lifecycle
    ranks: frozenset[int] = field(init=False)
    #: the rank of ``after`` among the order's event types (None: no ``after``)
    after_rank: int | None = field(init=False)

    def __post_init__(self) -> None:
        unknown = [t for t in self.types if t not in RANK[self.source]]
        if not self.types or unknown:
            raise ValueError(f"trigger types {unknown or self.types} of {self.source.value}: "
                             f"not among {LIFECYCLE[self.source]}")
        if self.delay is not None and self.delay not in _SETTINGS:
            raise ValueError(f"trigger delay {self.delay!r} is not a RuleConfig setting")
        if self.after is not None and (self.first or self.source is Source.ORDERS
                                       or self.after not in RANK[Source.ORDERS]):
            raise ValueError(f"trigger after {self.after!r}: an order event type, for a "
                             "trigger of another source without first")
        object.__setattr__(self, "ranks", frozenset(RANK[self.source][t] for t in self.types))
        object.__setattr__(self, "after_rank",
                           None if self.after is None else RANK[Source.ORDERS][self.after])

    def delay_of(self, rules: RuleConfig) -> int:
        """D minus the trigger's (or the ``after`` event's) time, in ms."""
        return 0 if self.delay is None else int(getattr(rules, self.delay))


class CommandSpec(NamedTuple):
    """The compensating action a finding calls for."""

    type: CommandType
    target_id: str
    amount: int | None = None
    currency: str | None = None
    sku: str | None = None
    quantity: int | None = None
    payment_id: str | None = None

    @property
    def command_id(self) -> str:
        """Stable id of this action."""
        return command_id(self.type, self.target_id)


#: whether a rule's condition holds for (subject, key, trigger_time) as of event time ``at``
Holds = Callable[[str, str, int, OrderView, int], bool]
#: whether a rule fires at D for (subject, key) with its trigger event (when that differs
#: from ``Holds`` at D)
Fires = Callable[[str, str, Step, OrderView, int], bool]
#: a finding's evidence events after the trigger and its details, for (subject, key,
#: trigger) as of D
Facts = Callable[[str, str, Step, OrderView, int],
                 tuple[list[Step | None], dict[str, str]]]
#: the subjects of the mismatches a decision for ``key`` at D can open
Subjects = Callable[[OrderView, str, int], list[str]]
#: the command of type T a finding calls for, from (subject, key, trigger) as of D
BuildCommand = Callable[[str, str, Step, OrderView, int], CommandSpec]


@dataclass(frozen=True)
class RuleSpec:
    """One rule: one entry of the rule table (``streams.rules.table``).

    ``reads``: the inputs its decisions rest on (the contract's "reads" column): a command
    of the rule is issued only once each of them has progressed past the decision time
    (``streams.engine.held``). ``holds``: its fires-when condition for a subject, evaluated
    at D and again at later event times (an OPEN mismatch is resolved at the first where it
    no longer holds); ``fires`` replaces it at D where given. ``subjects``: the subjects of
    a decision for a key (None: the key itself). ``facts``: evidence and details. The
    command of type ``command`` is built by ``streams.rules.table.COMMANDS``. A rule that is
    not ``resolvable`` states a fixed fact: its mismatches are never rechecked.
    """

    number: int
    type: MismatchType
    severity: Severity
    command: CommandType | None
    reads: frozenset[Source]
    trigger: Trigger
    holds: Holds
    facts: Facts
    fires: Fires | None = None
    subjects: Subjects | None = None
    resolvable: bool = True


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds and Z."""
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
