"""The recovery phase's pure parts: reading a worker's log, /health answers, the printed table."""

from __future__ import annotations

import re
from datetime import datetime

from streams.bench.recovery import Restart, standby_partitions
from streams.bench.recovery_watch import holding, settled
from streams.bench.report import recovery_lines, table
from streams.bench.worker_log import BulkRestore, bulk_restores, milestones, said, timeline

LOG = """\
crosscheck worker 8addb547a2db: group g on 127.0.0.1:29392, 4 partitions, exactly_once
[2026-12-07 03:25:05,506] [29760] [INFO] [^GuardedWorker]: Starting...
[2026-12-07 03:25:05,512] [29760] [INFO] [^-App]: Starting...
crosscheck: orders partition 2: rolled back 1 batch(es) whose transactions did not commit
[2026-12-07 03:25:11,641] [29760] [INFO] Joined group 'g' (generation 9) with member_id m
[2026-12-07 03:25:11,648] [29760] [INFO] Setting newly assigned partitions
crosscheck: bulk restore: 1,234,567 changelog records of 4 partition(s) in 9.8 s (125,976/s)
crosscheck: bulk restore: 2,000 changelog records of 1 partition(s) in 0.1 s (20,000/s)
[2026-12-07 03:25:22,833] [29760] [INFO] [^---Recovery]: Restoring state from changelog topics...
[2026-12-07 03:25:33,360] [29760] [INFO] Aborted tx until highwater for TopicPartition(t, 3)
[2026-12-07 03:25:33,361] [29760] [INFO] Aborted tx until highwater for TopicPartition(t, 0)
[2026-12-07 03:25:33,366] [29760] [INFO] [^---Recovery]: Done reading from changelog topics
[2026-12-07 03:25:33,385] [29760] [INFO] [^---Recovery]: Worker ready
[2026-12-07 03:25:40,000] [29760] [INFO] Joined group 'g' (generation 10) with member_id m
"""


def _local(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").astimezone().timestamp()


def test_bulk_restore_lines_are_read_with_their_thousands_separators() -> None:
    assert bulk_restores(LOG) == [BulkRestore(1_234_567, 4, 9.8), BulkRestore(2_000, 1, 0.1)]
    assert bulk_restores("crosscheck: worker stopped with exit code 0") == []


def test_what_the_worker_said_about_its_local_state() -> None:
    lines = said(LOG)
    assert len(lines) == 3
    assert lines[0].startswith("crosscheck: orders partition 2: rolled back 1 batch(es)")
    assert all("bulk restore:" in line for line in lines[1:])


def test_timeline_is_seconds_from_the_kill_to_the_first_line_of_each_milestone() -> None:
    killed = _local("2026-12-07 03:25:05,006")
    found = timeline(LOG, killed)
    assert found == {"started": 0.5, "joined": 6.635, "assigned": 6.642,
                     "recovery_reads": 17.827, "recovery_read_all": 28.354,
                     "recovery_done": 28.36, "faust_ready": 28.379}
    # lines logged before the kill (the survivor's log before it) do not count
    later = timeline(LOG, _local("2026-12-07 03:25:30,000"))
    assert later == {"recovery_read_all": 3.36, "recovery_done": 3.366, "faust_ready": 3.385,
                     "joined": 10.0}
    assert milestones(later) == ("joined 10.0 s, recovery read all 3.4 s, recovery done 3.4 s, "
                                 "faust ready 3.4 s")
    assert milestones({}) == "-"


def test_workers_are_settled_when_all_are_ready_and_own_each_partition_once() -> None:
    a = {"ready": True, "partitions": [0, 1]}
    b = {"ready": True, "partitions": [2, 3]}
    assert settled([a, b], 4)
    assert not settled([a, {"ready": False, "status": "recovering", "partitions": [2, 3]}], 4)
    assert not settled([a, None], 4)  # one does not answer
    assert not settled([a, {"ready": True, "partitions": [1, 2, 3]}], 4)  # 1 twice
    assert not settled([a], 4)
    assert holding(b, {2}) and holding(b, [2, 3]) and not holding(b, {1, 2})
    assert not holding({"ready": False, "partitions": [2, 3]}, {2}) and not holding(None, {2})


def test_standby_partitions_are_those_of_the_orders_table_in_health() -> None:
    doc = {"ready": True, "partitions": [0, 1], "standbys": [
        {"table": "orders", "partition": 3, "applied_offset": 10},
        {"table": "meta", "partition": 2, "applied_offset": 4},
        {"table": "orders", "partition": 2, "applied_offset": None}]}
    assert standby_partitions(doc) == [2, 3]
    assert standby_partitions(doc, "meta") == [2]
    assert standby_partitions({"ready": True}) == [] and standby_partitions(None) == []


def _restart(state: str, ready: float | None, rate: float | None,
             static: bool = True) -> dict[str, object]:
    return {"state": state, "static": static, "ready_s": ready,
            "committed_s": None if ready is None else ready + 1,
            "new_orders": 40, "restored_records": 2_000_000 if rate else 0,
            "restore_seconds": 2_000_000 / rate if rate else 0.0, "restore_rate": rate,
            "changelog_offsets": 2_500_000, "offsets_rate": 2_500_000 / ready if ready else None,
            "window_rate": 2_500_000 / 20.0 if rate else None,
            "said": [], "timeline": {"joined": 6.0, "faust_ready": ready or 0.0}}


RECOVERY = {
    "orders": 1_000_000, "new_orders": 40, "standby_replicas": None,
    "targets": {"ready_s": 10.0, "restore_records_per_s": 100_000.0, "takeover_s": 10.0},
    "rounds": [
        {"session_timeout_s": 15.0, "clean_start_s": 12.5,
         "kept": _restart("kept", 7.0, None), "deleted": _restart("deleted", 45.0, 150_000.0),
         "dynamic": _restart("kept", 27.0, None, static=False),
         "takeover": {"partitions": [2, 3], "committed_s": 28.0, "holds_s": 27.5,
                      "new_orders": 40, "survivor_standbys": [2, 3],
                      "restored_records": 0, "restore_seconds": 0.0, "said": [],
                      "timeline": {"joined": 15.2}}},
        {"session_timeout_s": 6.0, "clean_start_s": 12.0,
         "kept": _restart("kept", 8.0, None), "deleted": _restart("deleted", None, 50_000.0),
         "dynamic": _restart("kept", 11.0, None, static=False),
         "takeover": {"partitions": [0, 1], "committed_s": 9.5, "holds_s": 9.0,
                      "new_orders": 40, "survivor_standbys": [],
                      "restored_records": 900_000, "restore_seconds": 4.5, "said": [],
                      "timeline": {}}},
    ],
}


def test_recovery_table_gives_each_scenario_its_seconds_and_verdicts() -> None:
    lines = recovery_lines(RECOVERY)
    assert lines[0].startswith("recovery: 1,000,000 open orders, 40 new orders")
    assert lines[1].split("  ")[0] == "after a SIGKILL"
    rows = [line for line in lines if line.startswith(("kill -9", "standby")) and
            "after the SIGKILL" not in line]
    assert len(rows) == 8
    kept15, deleted15, dynamic15, takeover15, kept6, deleted6, dynamic6, takeover6 = rows
    assert kept15.startswith("kill -9, state kept, static member")
    assert dynamic15.startswith("kill -9, state kept, dynamic member")
    assert "15 s" in dynamic15 and "27.0 s" in dynamic15 and "28.0 s" in dynamic15
    assert dynamic15.endswith("ready <= 10 s: not met") and kept15.endswith("ready <= 10 s: met")
    assert dynamic6.endswith("ready <= 10 s: not met") and kept6.endswith("ready <= 10 s: met")
    cells = re.split(r"\s{2,}", dynamic15)
    assert cells[1:6] == ["15 s", "27.0 s", "28.0 s", "-", "-"]  # nothing restored or counted
    assert "2,000,000 records in 13.3 s (150,000/s)" in deleted15
    assert "2,500,000 (125,000/s in the restore window, 55,556/s to ready)" in deleted15
    assert deleted15.endswith("  >= 100,000 records/s: met")  # the target of a restore
    assert "never" in deleted6 and deleted6.endswith(">= 100,000 records/s: not met")
    assert takeover15.startswith("standby takeover (partitions 2, 3)")
    assert takeover15.endswith("new orders committed <= 10 s: not met")
    assert "900,000 records in 4.5 s (200,000/s)" in takeover6 and takeover6.endswith(": met")
    notes = [line for line in lines if "after the SIGKILL" in line]
    assert notes[2] == ("kill -9, state kept, dynamic member, session timeout 15 s, after the "
                        "SIGKILL: joined 6.0 s, faust ready 27.0 s")
    assert "the survivor kept standbys of orders partitions [2, 3] before it" in notes[3]
    assert "the survivor kept standbys of orders partitions none before it" in notes[7]
    assert [line for line in lines if "clean stop" in line] == [
        "session timeout 15 s: ready at zero lag 12.5 s after a start from a clean stop",
        "session timeout 6 s: ready at zero lag 12.0 s after a start from a clean stop"]


def test_the_bench_table_ends_with_the_recovery_table_when_the_phase_ran() -> None:
    results = {
        "events": 100, "partitions": 4, "total_seconds": 300.0,
        "machine": {"cpus": 2, "cpu_model": "Test CPU", "memory_gb": 8.0,
                    "kafka_version": "3.9.1", "broker": "127.0.0.1:19092",
                    "broker_on_this_host": True},
        "open_orders": {"orders": 1_000_000, "peak_rss_bytes": 300 * 2**20,
                        "rocksdb_bytes": 700 * 2**20, "throughput": 2_500.0,
                        "rss_target_bytes": 400_000_000},
        "preload": {"events": 100, "seconds": 1.0, "events_per_s": 100},
    }
    assert "recovery:" not in table(results)
    text = table({**results, "recovery": RECOVERY})
    assert "\nrecovery: 1,000,000 open orders" in text
    assert text.index("open orders: 1,000,000") < text.index("recovery:") \
        < text.index("pre-load:")
    with_standbys = {**RECOVERY, "standby_replicas": "1"}
    assert recovery_lines(with_standbys)[0].endswith("; CROSSCHECK_STANDBY_REPLICAS=1")
    # results of a run before the dynamic member's restart was measured
    older = {**RECOVERY, "rounds": [{k: v for k, v in r.items() if k != "dynamic"}
                                    for r in RECOVERY["rounds"]]}  # type: ignore[attr-defined]
    assert "dynamic member" not in "\n".join(recovery_lines(older))


def test_a_restarts_own_restore_rate_is_over_the_window_from_assignment_to_recovery() -> None:
    restart = Restart("deleted", True, 30.0, 31.0, 40, changelog_offsets=1_000_000,
                      timeline={"joined": 13.0, "assigned": 13.0, "recovery_reads": 21.0})
    assert restart.window_rate == 125_000.0
    assert Restart("kept", False, 20.0, 21.0, 40, changelog_offsets=5,
                   timeline={"joined": 13.0}).window_rate is None
    # Faust's recovery had nothing left to read: the window ends when the worker is ready
    nothing_left = Restart("deleted", True, 12.0, 13.0, 40, changelog_offsets=1_000_000,
                           timeline={"assigned": 2.0, "faust_ready": 10.0})
    assert nothing_left.window_rate == 125_000.0
