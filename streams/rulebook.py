"""The fifteen rules as settings see them: reads, decision time, severity, command, threshold."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from streams.model import Severity


class CommandMode(enum.StrEnum):
    """Where a rule's compensating commands go.

    ``live``: to the command topic, to be executed; ``shadow``: to its shadow twin with the
    same ids, to be watched (what crosscheck would have done); ``off``: nowhere (the
    mismatch is still emitted).
    """

    LIVE = "live"
    SHADOW = "shadow"
    OFF = "off"


#: The durations of the contract's section 4, by their RuleConfig field name, with defaults.
THRESHOLDS: dict[str, int] = {
    "payment_timeout": 15 * 60_000,
    "reservation_timeout": 5 * 60_000,
    "shipment_timeout": 24 * 3_600_000,
    "payment_grace": 2 * 60_000,
    "release_timeout": 10 * 60_000,
    "tcc_grace": 60_000,
    "callback_timeout": 5 * 60_000,
}

#: The inputs as the contract's "reads" column names them.
INPUT_LETTERS: dict[str, str] = {
    "O": "orders", "P": "payments", "I": "inventory", "S": "shipping",
}


@dataclass(frozen=True)
class RuleInfo:
    """One rule of the contract's table: its type, the inputs it reads (letters, in the
    contract's order), its decision time D as ``trigger`` plus its ``threshold`` (None: D is
    the trigger itself), its default severity and its command (type and target), if any."""

    type: str
    reads: str
    trigger: str
    threshold: str | None
    severity: Severity
    command: str | None = None
    target: str | None = None
    #: the rule needs an order service that publishes PAID
    needs_paid: bool = False

    @property
    def inputs(self) -> tuple[str, ...]:
        """The topic ids of the inputs it reads."""
        return tuple(INPUT_LETTERS[letter] for letter in self.reads.split(", "))

    @property
    def command_text(self) -> str:
        """e.g. ``REFUND_PAYMENT p``, or ``none``."""
        return f"{self.command} {self.target}" if self.command else "none"


SV = Severity

#: The contract's table (section 4), in its order.
RULEBOOK: tuple[RuleInfo, ...] = (
    RuleInfo("RESERVATION_WITHOUT_PAYMENT", "I, P", "first RESERVED/CONFIRMED of r",
             "payment_timeout", SV.LOW, "RELEASE_STOCK", "r"),
    RuleInfo("PAYMENT_WITHOUT_RESERVATION", "P, I", "SUCCEEDED of p", "reservation_timeout",
             SV.HIGH, "REFUND_PAYMENT", "p"),
    RuleInfo("PAID_NOT_SHIPPED", "I, P, S, O", "CONFIRMED of r", "shipment_timeout", SV.MEDIUM,
             "EXPEDITE_SHIPMENT", "order"),
    RuleInfo("SHIPPED_WITHOUT_PAYMENT", "S, P", "CREATED/DISPATCHED of s", "payment_grace",
             SV.CRITICAL, "HOLD_SHIPMENT", "s"),
    RuleInfo("DUPLICATE_PAYMENT", "P", "SUCCEEDED of p", None, SV.CRITICAL, "REFUND_PAYMENT",
             "p"),
    RuleInfo("AMOUNT_MISMATCH", "P, O", "max(SUCCEEDED of p, PLACED)", None, SV.HIGH),
    RuleInfo("OVERSHIPMENT", "S, I", "CREATED of s", "tcc_grace", SV.HIGH, "HOLD_SHIPMENT",
             "s"),
    RuleInfo("REFUND_WITHOUT_RELEASE", "P, I, S", "REFUNDED of p", "release_timeout",
             SV.MEDIUM, "RELEASE_STOCK", "r"),
    RuleInfo("TCC_EMPTY_ROLLBACK", "I", "RELEASED of r", "tcc_grace", SV.LOW),
    RuleInfo("TCC_HANGING", "I", "RESERVED of r", None, SV.MEDIUM, "RELEASE_STOCK", "r"),
    RuleInfo("PAYMENT_NOT_APPLIED", "P, O", "max(SUCCEEDED of p, PLACED)", "callback_timeout",
             SV.HIGH, "MARK_ORDER_PAID", "order", needs_paid=True),
    RuleInfo("CANCELLED_BUT_CHARGED", "O, P", "max(CANCELLED, SUCCEEDED of p)",
             "release_timeout", SV.CRITICAL, "REFUND_PAYMENT", "p"),
    RuleInfo("CANCELLED_BUT_RESERVED", "O, I", "CANCELLED", "release_timeout", SV.MEDIUM,
             "RELEASE_STOCK", "r"),
    RuleInfo("CANCELLED_BUT_SHIPPED", "O, S", "max(CANCELLED, CREATED/DISPATCHED of s)",
             "payment_grace", SV.HIGH, "HOLD_SHIPMENT", "s"),
    RuleInfo("PAID_WITHOUT_PAYMENT", "O, P", "PAID", "payment_grace", SV.CRITICAL,
             needs_paid=True),
)

#: type name -> its RuleInfo
BY_TYPE: dict[str, RuleInfo] = {r.type: r for r in RULEBOOK}


@dataclass(frozen=True)
class RuleSetting:
    """What a rules file sets for one rule; None: not set (the default applies).

    ``threshold`` is the rule's own value of the duration its D adds (``RuleInfo.threshold``),
    in ms: it replaces the global value of that duration for this rule only.
    """

    type: str
    enabled: bool | None = None
    severity: Severity | None = None
    commands: CommandMode | None = None
    threshold: int | None = None


#: how an order's ledger of issued commands records an id that went out in shadow (an id
#: alone went out live): the two are kept apart, each at most once
SHADOW_MARK = "shadow:"


def ledger_key(command_id: str, shadow: bool) -> str:
    """The entry of the order's issued commands for a command_id that went out so."""
    return SHADOW_MARK + command_id if shadow else command_id


def issue_as(mode: CommandMode, went_live: bool, went_shadow: bool) -> CommandMode | None:
    """How a command that a new decision calls for goes out: ``mode`` is its rule's mode when
    the decision is made, ``went_live``/``went_shadow`` whether its command_id already went
    out that way (the order's ledger). None: not at all.

    A command_id goes out live at most once, ever; shadow at most once too. An id that went
    out in shadow stays there (it is never issued after the fact); a later decision in live
    mode that calls for the same id (another mismatch, same action) issues it live, once.
    ``off`` sends nothing, and records nothing.
    """
    if went_live or mode is CommandMode.OFF:
        return None
    if mode is CommandMode.LIVE:
        return CommandMode.LIVE
    return None if went_shadow else CommandMode.SHADOW
