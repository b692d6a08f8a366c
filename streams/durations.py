"""Durations as settings and options write them (500ms, 60s, 15m, 24h, 1d) and milliseconds."""

from __future__ import annotations

import re

from streams.errors import ConfigError

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration_ms(text: str, name: str = "duration") -> int:
    """Parse '15m', '60s', '500ms', '24h', '1d' or a bare number of seconds into milliseconds."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"{name}: {text!r} is not a duration (examples: 500ms, 60s, 15m, 24h)")
    value, unit = match.groups()
    return int(float(value) * _UNITS_MS[unit or "s"])


def format_duration_ms(ms: int) -> str:
    """Render milliseconds with the largest unit that divides them (for help texts)."""
    for unit in ("d", "h", "m", "s"):
        if ms and ms % _UNITS_MS[unit] == 0:
            return f"{ms // _UNITS_MS[unit]}{unit}"
    return f"{ms}ms"
