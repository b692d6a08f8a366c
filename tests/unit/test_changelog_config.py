"""The worker's table changelogs are created compacted to about the live state."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from streams.config import Settings
from streams.names import META_TABLE, METRICS_TABLE, ORDERS_TABLE
from streams.worker import lifecycle
from streams.worker.faust_app import WorkerOptions, build_app
from topology.changelogs import CHANGELOG_CONFIG, changelog_config


def test_the_uncompacted_tail_is_bounded_in_size_time_and_share() -> None:
    assert CHANGELOG_CONFIG["cleanup.policy"] == "compact"
    # the active segment (never compacted) is far below Kafka's 1 GiB / 7 days
    assert int(CHANGELOG_CONFIG["segment.bytes"]) == 64 * 2**20
    assert int(CHANGELOG_CONFIG["segment.ms"]) == 600_000
    # dirty share below Kafka's 0.5; every dirty record compacted within the hour
    assert float(CHANGELOG_CONFIG["min.cleanable.dirty.ratio"]) == 0.2
    assert int(CHANGELOG_CONFIG["max.compaction.lag.ms"]) == 3_600_000
    # tombstones of evicted orders kept as long as Kafka would
    assert int(CHANGELOG_CONFIG["delete.retention.ms"]) == 86_400_000
    assert all(isinstance(v, str) for v in CHANGELOG_CONFIG.values())  # as the admin API wants


def test_a_tables_own_extras_win_and_become_strings() -> None:
    merged = changelog_config({"segment.ms": 60_000, "retention.ms": 5})
    assert merged["segment.ms"] == "60000" and merged["retention.ms"] == "5"
    assert merged["segment.bytes"] == CHANGELOG_CONFIG["segment.bytes"]
    assert changelog_config(None) == dict(CHANGELOG_CONFIG)


def test_every_table_of_the_app_carries_the_changelog_config(tmp_path: Path) -> None:
    app = build_app(Settings(), WorkerOptions(tmp_path, 16066, 2, {}, web_enabled=False))
    for name in (ORDERS_TABLE, META_TABLE, METRICS_TABLE):
        assert dict(app.tables[name].extra_topic_configs) == dict(CHANGELOG_CONFIG)


def test_missing_changelogs_are_created_with_the_config_and_existing_ones_left(
        monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[Any] = []

    class Admin:
        def list_topics(self, timeout: float) -> Any:
            return SimpleNamespace(topics={"app-meta-changelog": None})

    def table(name: str, partitions: int | None, extra: dict[str, Any] | None) -> Any:
        topic = SimpleNamespace(get_topic_name=lambda: name, partitions=partitions)
        return SimpleNamespace(changelog_topic=topic, extra_topic_configs=extra)

    app = SimpleNamespace(
        tables={"orders": table("app-orders-changelog", None, None),
                "meta": table("app-meta-changelog", None, None),
                "metrics": table("app-metrics-changelog", 1, {"segment.ms": 1000})},
        conf=SimpleNamespace(topic_partitions=4, topic_replication_factor=1))
    monkeypatch.setattr(lifecycle, "admin", lambda settings: Admin())
    monkeypatch.setattr(lifecycle, "create_new",
                        lambda client, new, timeout: created.extend(new) or [t.topic for t in new])
    names = lifecycle.create_changelogs(Settings(), app)
    assert names == ["app-orders-changelog", "app-metrics-changelog"]
    orders, metrics = created
    assert orders.num_partitions == 4 and orders.config == dict(CHANGELOG_CONFIG)
    assert metrics.num_partitions == 1
    assert metrics.config == {**CHANGELOG_CONFIG, "segment.ms": "1000"}
