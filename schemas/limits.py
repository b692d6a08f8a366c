"""Limits on input values (order ids, event times, currencies, text) and reasons for bad ones.

A valid **order id** is 1 to ``MAX_ORDER_ID_LENGTH`` (256) characters, not only whitespace,
with no control character (U+0000-U+001F, U+007F-U+009F) and no lone surrogate (which UTF-8
cannot carry). The validator dead-letters events whose order_id breaks this, and the web
endpoint ``/orders/{order_id}`` answers 400 for such ids, so every order the worker holds can
be looked up. Any other text field must be free of lone surrogates.

A valid **event time** is from 1970-01-01T00:00:00.000Z to ``MAX_EVENT_TIME``
(8999-12-31T23:59:59.999Z): decision times (event time + a rule's timeout) then stay within
what ISO-8601 with a four-digit year (and Python's datetime) can show, and far from 2**63.
"""

from __future__ import annotations

import re

MAX_ORDER_ID_LENGTH = 256
#: 8999-12-31T23:59:59.999Z in epoch milliseconds
MAX_EVENT_TIME = 221_845_391_999_999
MAX_EVENT_TIME_ISO = "8999-12-31T23:59:59.999Z"
#: an ISO-4217 currency code: three capital letters
CURRENCY_PATTERN = r"^[A-Z]{3}\Z"

_CONTROL = "\x00-\x1f\x7f-\x9f"
_SURROGATE = "\ud800-\udfff"
#: what msgspec checks (with the length bounds); order_id_problem says what is wrong
ORDER_ID_PATTERN = rf"^(?=[^{_CONTROL}{_SURROGATE}]*\S)[^{_CONTROL}{_SURROGATE}]*\Z"
#: any other text: no lone surrogate
TEXT_PATTERN = rf"^[^{_SURROGATE}]*\Z"
_BAD_CHAR = re.compile(rf"[{_CONTROL}{_SURROGATE}]")
_SHOWN_CHARS = 40


def order_id_problem(value: object) -> str | None:
    """Why `value` is not a valid order id (a short reason), or None if it is one."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > MAX_ORDER_ID_LENGTH:
        return f"is too long: {len(value)} characters (at most {MAX_ORDER_ID_LENGTH})"
    return text_problem(value, control=True) or (
        "must not be blank (only whitespace)" if value.isspace() else None)


def text_problem(value: str, control: bool = False) -> str | None:
    """The first lone surrogate (or, with `control`, control character) in `value`."""
    bad = _BAD_CHAR.search(value) if control else re.search(f"[{_SURROGATE}]", value)
    if bad is None:
        return None
    char = bad.group()
    kind = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    return f"contains {kind} (U+{ord(char):04X} at position {bad.start()})"


def time_range_problem(shown: str) -> str:
    """The reason for an epoch-millisecond event time (``shown``) out of range."""
    return (f"epoch milliseconds out of range: {shown} (0 to {MAX_EVENT_TIME}, "
            f"that is up to {MAX_EVENT_TIME_ISO})")


def currency_problem(value: object) -> str:
    """The reason for a currency that is not an ISO-4217 code."""
    return f"{show(value)} is not an ISO-4217 code (three capital letters)"


def show(value: object) -> str:
    """A short rendering of a bad value for a reason: strings and numbers cut, others named."""
    if isinstance(value, str):
        if len(value) > _SHOWN_CHARS:
            return f"{value[:_SHOWN_CHARS]!r}... ({len(value)} characters)"
        return repr(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 128 else f"a {value.bit_length()}-bit integer"
    if isinstance(value, list | dict | tuple):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"
