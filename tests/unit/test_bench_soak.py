"""The soak run's pure parts: live-order counting, the flat-state verdict, the table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streams.bench.soak import LiveOrders, Sample, table, verdict, wal_size
from topology.topics import TopicId

DAY = 86_400_000


def rec(order_id: str, t: int) -> tuple[TopicId, dict[str, Any]]:
    return TopicId.ORDERS, {"order_id": order_id, "event_time": t}


def test_live_orders_counts_from_first_event_to_last_plus_retention() -> None:
    live = LiveOrders([rec("a", 10), rec("a", 50), rec("b", 40), rec("b", 30)], retention=100)
    assert live.at(None) == 0
    assert live.at(9) == 0
    assert live.at(10) == 1  # a begins
    assert live.at(30) == 2  # b's first event (published after its later one)
    assert live.at(139) == 2  # b: last 40 + 100
    assert live.at(140) == 1
    assert live.at(149) == 1
    assert live.at(150) == 0


def samples(sizes: list[int], step: int = DAY) -> list[Sample]:
    return [Sample(float(i), i, i, i * step, 100, size, size // 2, None)
            for i, size in enumerate(sizes)]


def test_verdict_is_near_one_when_the_size_is_flat() -> None:
    # retention 7 days; one sample per day: samples 7.. are past one retention
    sizes = [10 * i for i in range(7)] + [100, 104, 98, 101, 99, 103, 100, 102, 97]
    v = verdict(samples(sizes), retention=7 * DAY)
    assert v["steady_samples"] == 9
    assert v["middle_max_bytes"] == 103
    assert v["last_max_bytes"] == 102
    assert v["ratio"] == round(102 / 103, 3)
    assert v["rss_ratio"] is None  # no RSS sampled


def test_verdict_compares_the_rss_the_same_way() -> None:
    s = samples([100] * 16)
    for i, x in enumerate(s):
        x.rss_bytes = 2**20 * (200 + 10 * i)
    v = verdict(s, retention=7 * DAY)
    assert (v["middle_max_rss_bytes"], v["last_max_rss_bytes"]) == (2**20 * 320, 2**20 * 350)
    assert v["rss_ratio"] == round(350 / 320, 3)
    assert table({"samples": [vars(x) for x in s], "verdict": v}).splitlines()[-1] == (
        f"         RSS, the same way: {v['rss_ratio']} (350 / 320 MiB)")


def test_verdict_follows_growth_when_the_size_grows_with_history() -> None:
    sizes = [10 * i for i in range(16)]
    v = verdict(samples(sizes), retention=7 * DAY)
    assert v["middle_max_bytes"] == 120
    assert v["last_max_bytes"] == 150
    assert v["ratio"] == 1.25


def test_verdict_needs_samples_past_one_retention() -> None:
    v = verdict(samples([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), retention=7 * DAY)
    assert v["ratio"] is None
    assert "only 3 samples" in v["reason"]
    no_wm = [Sample(0.0, 0, 0, None, 0, 1, 0, None)]
    assert verdict(no_wm, retention=DAY)["reason"] == "no watermark was ever read"


def test_table_shows_every_sample_and_the_verdict() -> None:
    s = samples([2**20 * i for i in range(16)])
    results = {"samples": [vars(x) for x in s], "verdict": verdict(s, retention=7 * DAY)}
    text = table(results)
    lines = text.splitlines()
    assert len(lines) == 1 + 16 + 1
    assert lines[-2].split()[-3:-1] == ["15.0", "7.5"]  # the last sample: 15 MiB, half WAL
    assert lines[-1].startswith("verdict:") and "= 1.25" in lines[-1]


def test_wal_size_counts_write_ahead_logs_only(tmp_path: Path) -> None:
    db = tmp_path / "v1" / "tables" / "orders-0.db"
    db.mkdir(parents=True)
    (db / "000004.log").write_bytes(b"x" * 100)
    (db / "000009.log").write_bytes(b"x" * 20)
    (db / "LOG").write_bytes(b"x" * 1000)  # RocksDB's info log
    (db / "LOG.old.1700000000").write_bytes(b"x" * 1000)
    (db / "000005.sst").write_bytes(b"x" * 5000)
    assert wal_size(tmp_path) == 120
    assert wal_size(tmp_path / "missing") == 0
