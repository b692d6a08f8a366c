"""The order id of a ``/orders/{order_id}`` request, checked before the request is routed.

The id comes from the raw path: percent-escapes must be complete (``%`` and two hex digits)
and decode to UTF-8, and the text must be a valid order id (``schemas.limits``: 1 to 256
characters, not only whitespace, no control character, no lone surrogate). aiohttp's own
decoding keeps a broken escape such as ``%ff`` or ``%zz`` as literal text; checking the raw
path instead makes them a 400 rather than a lookup of a different id. Request lines longer
than ``MAX_REQUEST_LINE`` bytes are refused by the HTTP server itself (400, plain text).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from schemas.limits import MAX_ORDER_ID_LENGTH, order_id_problem

PREFIX = "/orders/"
#: the web server's limit for a request line (aiohttp's default is 8190): room for an id of
#: MAX_ORDER_ID_LENGTH characters of any script, percent-encoded, and for a too-long one to
#: get the JSON answer
MAX_REQUEST_LINE = 65_536
RULE = (f"1 to {MAX_ORDER_ID_LENGTH} characters, not only whitespace, without control "
        "characters (U+0000-U+001F, U+007F-U+009F); in the URL as percent-encoded UTF-8")
_BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def order_id_from_path(raw_path: str) -> str:
    """The order id of a raw request path ``/orders/<id>[?query]``; ValueError(reason) if the
    path does not carry a valid order id."""
    path = raw_path.split("?", 1)[0]
    if not path.startswith(PREFIX):
        raise ValueError(f"not a {PREFIX}{{order_id}} path")
    segment = path[len(PREFIX):]
    if len(segment) > 3 * 4 * MAX_ORDER_ID_LENGTH:  # more than any valid id, encoded
        raise ValueError(f"is too long: {len(segment)} characters in the URL "
                         f"(at most {MAX_ORDER_ID_LENGTH} once decoded)")
    broken = _BROKEN_ESCAPE.search(segment)
    if broken is not None:
        raise ValueError(f"invalid percent-encoding at character {broken.start()} of the id "
                         "(a % must be followed by two hex digits)")
    try:
        text = unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"is not UTF-8 once percent-decoded ({exc.reason} at byte "
                         f"{exc.start})") from None
    except UnicodeEncodeError:  # raw bytes the server kept as surrogate escapes
        raise ValueError("is not UTF-8 (raw bytes in the URL)") from None
    problem = order_id_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text
