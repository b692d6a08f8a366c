"""The rule catalog: entity state as of a time, the fifteen rules, and stable ids."""

from streams.rules.catalog import (
    RULES,
    CommandSpec,
    Decision,
    Finding,
    RuleSpec,
    command_record,
    decide,
    derive_decisions,
    holds,
    open_record,
)
from streams.rules.entities import OrderView
from streams.rules.ids import command_id, mismatch_id

__all__ = [
    "RULES",
    "CommandSpec",
    "Decision",
    "Finding",
    "OrderView",
    "RuleSpec",
    "command_id",
    "command_record",
    "decide",
    "derive_decisions",
    "holds",
    "mismatch_id",
    "open_record",
]
