"""`crosscheck bench` and `crosscheck soak` on tiny inputs: the shape of their output, not speed."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from streams.bench.procs import crosscheck_argv, env_for
from streams.clients import admin
from streams.config import Settings

pytestmark = pytest.mark.integration


def test_bench_prints_a_table_and_a_json_line_and_writes_the_results(
        settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    # a 2 s idle timeout (default 10 s): the latency run waits that long plus 4 s for the
    # decisions the idle inputs let come
    quick = replace(settings, rules=replace(settings.rules, idle_timeout=2_000))
    run = subprocess.run(
        [*crosscheck_argv(), "bench", "--events", "3000", "--latency-events", "1500",
         "--latency-rate", "1000", "--open-orders", "2000", "--no-recovery", "--out", str(out),
         "--workdir", str(tmp_path / "work")],
        env=env_for(quick), capture_output=True, text=True, timeout=400, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    results = json.loads(lines[-1])
    assert json.loads(out.read_text()) == results

    # the table
    assert lines[0].startswith("crosscheck bench: 3,000 events, 4 partitions")
    assert lines[1].split()[:2] == ["phase", "records/s"]
    phases = [line.split("  ")[0] for line in lines[3:7]]
    assert phases == ["ceiling: raw consumer + Avro decode", "worker, exactly-once",
                      "worker, at-least-once", "replay (backfill, all events)"]
    assert any(line.startswith("decision latency") and "p50" in line and "p99" in line
               for line in lines)

    # the JSON
    assert results["events"] == 3000 and results["partitions"] == 4
    assert {"cpus", "cpu_model", "memory_gb", "kafka_version", "broker"} <= set(
        results["machine"])
    assert results["preload"]["events"] == 3000
    assert results["ceiling"]["records"] == 3000 and results["ceiling"]["records_per_s"] > 0
    for guarantee in ("exactly_once", "at_least_once"):
        w = results["worker"][guarantee]
        assert w["records"] == 3000 and w["throughput"] > 0
        assert w["peak_rss_bytes"] > 10 * 2**20 and w["rocksdb_bytes"] > 0
        assert w["seconds_to_zero_lag"] >= w["startup_seconds"] >= 0
        assert w["changelog_bytes"] is None  # not the local broker: its disk is not read
    r = results["replay"]
    assert r["records"] == 3000 and r["records_per_s"] > 0 and r["peak_rss_bytes"] > 0
    lat = results["latency"]
    assert lat["events"] == 1500 and lat["mismatches"] > 0
    assert 0 <= lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    held = results["open_orders"]
    assert held["orders"] == 2000 and held["mismatch_offsets"] == 0
    assert held["peak_rss_bytes"] > 10 * 2**20 and held["rocksdb_bytes"] > 0
    assert any(line.startswith("open orders: 2,000 undecided orders") for line in lines)
    assert "recovery" not in results  # (its kills and restarts take minutes)

    # nothing of the run is left on the broker
    topics = admin(settings).list_topics(timeout=15).topics
    assert not [t for t in topics if "bench-" in t]


def test_soak_samples_the_state_while_event_time_passes_retention(
        settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    run = subprocess.run(
        [*crosscheck_argv(), "soak", "--duration", "16s", "--rate", "600", "--span", "4d",
         "--state-retention", "12h", "--sample-every", "1.5s", "--out", str(out),
         "--workdir", str(tmp_path / "work")],
        env=env_for(settings), capture_output=True, text=True, timeout=400, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["events"] == 16 * 600 and results["caught_up"] is True
    assert results["state_retention_ms"] == 12 * 3600 * 1000
    samples = results["samples"]
    assert len(samples) >= 8
    committed = [s["committed"] for s in samples]
    assert committed == sorted(committed) and committed[-1] == 16 * 600
    marks = [s["watermark"] for s in samples if s["watermark"] is not None]
    assert marks == sorted(marks) and marks[-1] - marks[0] > 2 * 86_400_000
    assert all(s["rocksdb_bytes"] > 0 for s in samples[1:])
    assert max(s["live_orders"] for s in samples) > 0
    verdict = results["verdict"]
    assert verdict["ratio"] is not None and verdict["steady_samples"] >= 6
    lines = run.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["elapsed", "committed"]
    assert len(lines) == 1 + len(samples) + 2
    assert lines[-2].startswith("verdict: ") and "RSS, the same way" in lines[-1]

    topics = admin(settings).list_topics(timeout=15).topics
    assert not [t for t in topics if "soak-" in t]
