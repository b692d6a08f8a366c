"""Bytes of a worker's table changelogs on the local broker's disk (next to its RocksDB bytes).

The broker keeps each partition of a topic in ``<log.dirs>/<topic>-<partition>/``; the
record bytes are its ``.log`` segments (the index files are preallocated and would count
10 MiB a partition). confluent-kafka has no DescribeLogDirs call, so the figure is read
only from the local broker's directory: None against an external cluster.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

from streams.config import Settings
from streams.names import META_TABLE, METRICS_TABLE, ORDERS_TABLE, changelog_topic

#: the worker's tables, each with a changelog
TABLES = (ORDERS_TABLE, META_TABLE, METRICS_TABLE)


def topic_log_bytes(log_dirs: Path, topics: Iterable[str]) -> int:
    """Bytes of the ``.log`` segments of every partition of these topics under ``log_dirs``
    (a deleted topic's directories, renamed ``<topic>-<n>.<id>-delete``, do not count)."""
    wanted = set(topics)
    total = 0
    if not log_dirs.is_dir():
        return 0
    for part in log_dirs.iterdir():
        topic, _, number = part.name.rpartition("-")
        if topic not in wanted or not number.isdigit() or not part.is_dir():
            continue
        for segment in part.glob("*.log"):
            with contextlib.suppress(OSError):
                total += segment.stat().st_size
    return total


def changelog_bytes(settings: Settings) -> int | None:
    """Bytes of the changelogs of the settings' app on the local broker; None when the
    broker is not the local one (its disk is not readable from here)."""
    if not settings.uses_local_broker:
        return None
    from streams.broker_config import BrokerPaths, kafka_version

    paths = BrokerPaths(Path(settings.home).expanduser().resolve(), kafka_version())
    return topic_log_bytes(paths.kafka_log_dirs,
                           (changelog_topic(settings.app_id, t) for t in TABLES))
