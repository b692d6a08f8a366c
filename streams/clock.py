"""The wall clock in epoch milliseconds: detected_at, issued_at and liveness, never decisions."""

from __future__ import annotations

import time


def wall_ms() -> int:
    """Wall clock in epoch ms (detected_at, issued_at, failed_at, ticks and timeouts: never
    what a decision says)."""
    return time.time_ns() // 1_000_000
