"""Topic configs of the worker's table changelogs: compacted down to about the live state."""

from __future__ import annotations

from collections.abc import Mapping

#: A restore reads a changelog partition from its start, so its time is the partition's
#: records, not its keys. Compaction keeps the last record of each key (and, for a while,
#: the tombstone of an order that was decided and evicted), but never touches the active
#: segment, and starts on a partition only once its dirty (not yet compacted) share
#: reaches ``min.cleanable.dirty.ratio``. What a restore reads beyond the live state is
#: therefore at most the active segment plus that dirty share; with Kafka's defaults
#: (1 GiB segments rolled weekly, ratio 0.5) that was up to 1 GiB per partition of every
#: write ever made to it and then twice the live state. Here (see docs/operations.md):
CHANGELOG_CONFIG: Mapping[str, str] = {
    "cleanup.policy": "compact",
    #: the active segment rolls at 64 MiB ...
    "segment.bytes": str(64 * 1024 * 1024),
    #: ... or after 10 minutes, so a quiet partition's tail becomes compactable too
    "segment.ms": str(10 * 60_000),
    #: compact once a fifth of the log is dirty: a restore reads at most 1.25x the
    #: compacted log (plus the active segment), for about 5x the changelog's bytes
    #: rewritten by the broker's cleaner (2x at Kafka's 0.5)
    "min.cleanable.dirty.ratio": "0.2",
    #: a dirty record is compacted within an hour even where the ratio is not reached
    "max.compaction.lag.ms": str(60 * 60_000),
    #: tombstones of evicted orders stay a day after compaction (Kafka's default, made
    #: explicit): a reader of the changelog that resumes from an offset older than this
    #: could miss an eviction and keep the order
    "delete.retention.ms": str(24 * 60 * 60_000),
}


def changelog_config(extra: Mapping[str, object] | None = None) -> dict[str, str]:
    """The config of a new changelog topic: ``CHANGELOG_CONFIG`` and a table's own extras
    (which win)."""
    return {**CHANGELOG_CONFIG, **{k: str(v) for k, v in (extra or {}).items()}}
