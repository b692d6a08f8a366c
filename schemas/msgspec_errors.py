"""msgspec's validation messages in the contract's form: the bad field's path and why.

"Expected `int` >= 0 - at `$.amount`" becomes ValidationError("amount", "must not be
negative: -5"), as ``schemas.validation`` reports it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from schemas.errors import ValidationError
from schemas.limits import (
    currency_problem,
    order_id_problem,
    show,
    text_problem,
    time_range_problem,
)
from topology.topics import TopicId

_WHERE = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_EXPECTED = re.compile(r"^Expected `(?P<want>[^`]+)`(?:, got `(?P<got>[^`]+)`)?(?P<rest>.*)$",
                       re.DOTALL)
_BOUND = re.compile(r"^ (?P<op>>=|<=) (?P<n>-?\d+)$")
_NOTHING = object()
_KINDS = {"str": "a string", "int": "an integer", "array": "a list", "object": "an object"}


def _lookup(root: Any, path: str) -> Any:
    value = root
    for name, index, quoted in _STEP.findall(path):
        try:
            value = value[int(index)] if index else value[name or quoted]
        except (KeyError, IndexError, TypeError):
            return _NOTHING
    return value


def _field(path: str) -> str:
    return path[1:] if path.startswith(".") else path


def translate(text: str, topic: TopicId, types: frozenset[str],
              source: Callable[[], Any]) -> ValidationError:
    """A msgspec ValidationError message -> ValidationError(field path, contract reason).

    ``types`` are the event types of ``topic``; ``source`` gives the decoded event (or
    raises), to show the bad value in the reason.
    """
    where = _WHERE.match(text)
    msg, path = (where["msg"], where["path"] or "") if where else (text, "")
    missing = _MISSING.match(msg)
    if missing:
        return ValidationError(_field(f"{path}.{missing['name']}"), "is missing")
    field = _field(path) or "event"
    leaf = field.rsplit(".", 1)[-1]
    try:
        value = _lookup(source(), path)
    except Exception:  # the raw text could not be decoded again: no value to show
        value = _NOTHING
    shown = "" if value is _NOTHING else f": {show(value)}"
    if msg.startswith("Invalid enum value"):
        text = msg.removeprefix("Invalid enum value ")[:60] if value is _NOTHING else show(value)
        if field == "type":
            allowed = ", ".join(sorted(types))
            return ValidationError(field, f"{text} is not a {topic.value} type ({allowed})")
        return ValidationError(field, f"{text} is not allowed")
    expected = _EXPECTED.match(msg)
    if expected is None:
        return ValidationError(field, msg[:200])
    want, got, rest = expected["want"], expected["got"], expected["rest"]
    if got is not None:
        if got == "null":
            return ValidationError(field, "is missing")
        if field == "event":
            return ValidationError(field, "must be a JSON object")
        if leaf == "event_time":
            return ValidationError(field, "must be an ISO-8601 time or epoch milliseconds")
        kind = _KINDS.get(want.split(" | ")[0], f"of type {want}")
        return ValidationError(field, f"must be {kind}, got {got}")
    bound = _BOUND.match(rest)
    if bound:
        if leaf == "event_time":
            return ValidationError(field, time_range_problem(show(value)) if shown else
                                   "epoch milliseconds out of range")
        if bound["op"] == "<=":
            return ValidationError(field, f"is too large{shown}")
        what = "negative" if bound["n"] == "0" else f"less than {bound['n']}"
        return ValidationError(field, f"must not be {what}{shown}")
    if rest.startswith(" of length >= 1"):
        return ValidationError(field, "must not be empty")
    if leaf == "order_id" and isinstance(value, str):
        return ValidationError(field, order_id_problem(value) or msg)
    if rest.startswith(" matching regex"):
        if leaf == "currency":
            return ValidationError(field, currency_problem(None if value is _NOTHING else value))
        problem = text_problem(value) if isinstance(value, str) else None
        return ValidationError(field, problem or "contains a lone surrogate")
    return ValidationError(field, msg[:200])
