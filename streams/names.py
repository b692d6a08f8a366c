"""Stable names of the worker's Faust parts: they become consumer groups and changelog topics."""

from __future__ import annotations

#: Faust table of per-order state (events, pending decisions, ledger): "<app>-orders-changelog".
ORDERS_TABLE = "orders"
#: Faust table of per-partition watermark state: "<app>-meta-changelog".
META_TABLE = "meta"
#: Keys of the meta table: the engine's watermark state; each open metrics window under
#: WINDOW_PREFIX + its start (decimal), and the windows' closed_until. (State format 1 kept
#: every open window in one value under WINDOWS_KEY, rewritten whole after every batch: a
#: worker still finding it there upgrades the partition on its first write.)
META_KEY = b"meta"
WINDOW_PREFIX = b"window/"
WINDOWS_CLOSED_KEY = b"windows.closed_until"
WINDOWS_KEY = b"windows"
#: Keys of the meta table: each held command (decided, not yet confirmed by every input its
#: rule reads) under HELD_PREFIX + its command_id (``streams.engine.held``).
HELD_PREFIX = b"held/"
#: Key of the meta table: when each released input of the partition became stalled (wall
#: clock; what the SOURCE_STALLED alert measures).
STALLED_KEY = b"stalled.since"
#: Faust table (one partition) of the metrics aggregator: "<app>-metrics-changelog".
METRICS_TABLE = "metrics"
#: The agent that judges the input topics.
AGENT_NAME = "crosscheck.judge"
#: The agent that adds up the partitions' metrics windows and raises alerts.
AGGREGATOR_NAME = "crosscheck.aggregate"


def changelog_topic(app_id: str, table: str) -> str:
    """The changelog topic Faust gives a table of an app."""
    return f"{app_id}-{table}-changelog"
