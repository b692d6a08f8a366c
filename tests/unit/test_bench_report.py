"""The benchmark's pure parts: percentiles, the printed table, the machine description."""

from __future__ import annotations

from pathlib import Path

from streams import native
from streams.bench.changelogs import changelog_bytes, topic_log_bytes
from streams.bench.latency import percentile, steady_latencies
from streams.bench.procs import env_for
from streams.bench.report import machine, table
from streams.broker_config import BrokerPaths, kafka_version
from streams.config import RuleConfig, Settings

RESULTS = {
    "events": 200_000, "partitions": 4, "total_seconds": 321.0,
    "machine": {"cpus": 2, "cpu_model": "Test CPU", "memory_gb": 8.0, "kafka_version": "3.9.1",
                "broker": "127.0.0.1:19092", "broker_on_this_host": True,
                "engine": "native"},
    "preload": {"events": 200_000, "seconds": 10.0, "events_per_s": 20_000},
    "ceiling": {"records": 200_000, "seconds": 2.0, "records_per_s": 100_000},
    "worker": {
        "exactly_once": {"throughput": 5_000.0, "seconds_to_zero_lag": 48.0,
                         "startup_seconds": 8.0, "peak_rss_bytes": 200 * 2**20,
                         "rocksdb_bytes": 50 * 2**20, "changelog_bytes": 80 * 2**20,
                         "records": 200_000,
                         "stage_seconds": {"decode": 4.0, "engine": 12.0, "state_write": 2.0,
                                           "produce": 4.0, "batch": 24.0}},
        "at_least_once": {"throughput": 6_000.0, "seconds_to_zero_lag": 40.0,
                          "startup_seconds": 7.0, "peak_rss_bytes": None,
                          "rocksdb_bytes": 0},
    },
    "replay": {"records_per_s": 25_000, "seconds": 8.0, "peak_rss_bytes": 100 * 2**20,
               "state_bytes": 2**20},
    "latency": {"mismatches": 120, "p50_ms": 1_500.0, "p99_ms": 3_100.0, "max_ms": 3_300.0,
                "rate": 500.0, "steady_p50_ms": 900.0, "steady_p99_ms": 1_200.0,
                "steady_mismatches": 100},
    "open_orders": {"orders": 1_000_000, "publish_seconds": 30.0, "seconds_to_zero_lag": 400.0,
                    "throughput": 2_500.0, "peak_rss_bytes": 300 * 2**20,
                    "rocksdb_bytes": 700 * 2**20, "changelog_bytes": 900 * 2**20,
                    "mismatch_offsets": 0,
                    "rss_target_bytes": 400_000_000},
}


def test_steady_latencies_leave_out_what_was_decided_before_the_warm_up_ended() -> None:
    assert steady_latencies([100, 2_000, 2_500, 1_999], [900, 80, 70, 600], 2_000) == [80, 70]
    assert steady_latencies([], [], 0) == []


def test_percentile_is_the_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7], 0.99) == 7
    values = list(range(1, 101))
    assert percentile(values, 0.5) in (50, 51)
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100


def test_table_has_a_row_per_phase_and_the_latency() -> None:
    text = table(RESULTS)
    lines = text.splitlines()
    assert "200,000 events" in lines[0] and "2 CPUs (Test CPU)" in lines[0]
    assert lines[0].endswith("(same host); native engine")
    assert lines[1].split()[:2] == ["phase", "records/s"]
    rows = {line.split("  ")[0].strip(): line for line in lines[3:7]}
    assert "100,000" in rows["ceiling: raw consumer + Avro decode"]
    assert "5%" in rows["worker, exactly-once"] and "200 MB" in rows["worker, exactly-once"]
    assert rows["worker, exactly-once"].split()[-4:] == ["50", "MB", "80", "MB"]
    assert "6,000" in rows["worker, at-least-once"]
    # results without the figure (an external broker, or written before it was measured)
    assert rows["worker, at-least-once"].split()[-3:] == ["0", "MB", "-"]
    assert lines[1].split()[-2:] == ["RocksDB", "changelogs"]
    assert "25%" in rows["replay (backfill, all events)"]
    assert "p50 1,500 ms, p99 3,100 ms" in text
    assert "steady state (decided 2 s or more after the start): p50 900 ms, p99 1,200 ms over " \
           "100" in text
    older = {**RESULTS, "latency": {k: v for k, v in RESULTS["latency"].items()
                                    if not k.startswith("steady")}}
    assert "steady" not in table(older)  # results written before the steady-state figures
    eos = next(line for line in lines if line.startswith("exactly-once worker, per record"))
    assert "engine 60.0 µs (30%)" in eos and "outside the batch" in eos  # of 40 s consuming
    alos = next(line for line in lines if line.startswith("at-least-once worker"))
    assert "not available" in alos
    held = next(line for line in lines if line.startswith("open orders:"))
    assert "1,000,000 undecided orders" in held and "peak RSS 300 MB (within the 400 MB" in held
    assert "RocksDB 700 MB, changelogs 900 MB;" in held
    over = {**RESULTS, "open_orders": {**RESULTS["open_orders"], "peak_rss_bytes": 500 * 2**20}}
    assert "(over the 400 MB target)" in table(over) and "NOT all open" not in table(over)
    decided = {**RESULTS, "open_orders": {**RESULTS["open_orders"], "mismatch_offsets": 3}}
    assert "NOT all open: 3 offsets" in table(decided)


def test_machine_and_environment() -> None:
    settings = Settings(bootstrap_servers="127.0.0.1:1234", topic_prefix="x.",
                        rules=RuleConfig(allowed_lateness=5_000))
    info = machine(settings)
    assert info["broker_on_this_host"] and info["cpus"] and info["python"]
    assert info["engine"] == ("native" if native.status() == "native" else "python")
    env = env_for(settings)
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:1234"
    assert env["CROSSCHECK_TOPIC_PREFIX"] == "x."
    assert env["CROSSCHECK_ALLOWED_LATENESS"] == "5s"


def test_changelog_bytes_are_the_log_segments_of_the_apps_changelog_partitions(
        tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    sizes = {"app-orders-changelog-0": {"00000000000000000000.log": 300,
                                        "00000000000000000000.index": 10_485_760,
                                        "00000000000000004000.log": 50},
             "app-orders-changelog-11": {"00000000000000000000.log": 7},
             "app-meta-changelog-0": {"00000000000000000000.log": 20},
             "app-orders-changelog-1.3f2a9c-delete": {"00000000000000000000.log": 1_000},
             "app-orders-0": {"00000000000000000000.log": 2_000},
             "other-orders-changelog-0": {"00000000000000000000.log": 4_000}}
    for part, files in sizes.items():
        (logs / part).mkdir(parents=True)
        for name, size in files.items():
            (logs / part / name).write_bytes(b"x" * size)
    topics = ["app-orders-changelog", "app-meta-changelog", "app-metrics-changelog"]
    assert topic_log_bytes(logs, topics) == 300 + 50 + 7 + 20
    assert topic_log_bytes(tmp_path / "absent", topics) == 0


def test_changelog_bytes_are_read_only_from_the_local_broker(tmp_path: Path) -> None:
    external = Settings(home=tmp_path, bootstrap_servers="kafka:9092")
    assert changelog_bytes(external) is None
    local = Settings(home=tmp_path, app_id="app")
    part = BrokerPaths(tmp_path, kafka_version()).kafka_log_dirs / "app-metrics-changelog-0"
    part.mkdir(parents=True)
    (part / "00000000000000000000.log").write_bytes(b"x" * 42)
    assert changelog_bytes(local) == 42
