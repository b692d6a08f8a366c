"""The heap profile: the worker's snapshot records and the soak's reading of them."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rocksdict import Options, Rdict

from streams.bench import heap
from streams.bench.soak import SoakConfig, heap_env
from streams.worker import heapprofile

MIB = 2**20


@pytest.fixture
def tracing() -> Iterator[None]:
    was = tracemalloc.is_tracing()
    if not was:
        tracemalloc.start(2)
    yield
    if not was:
        tracemalloc.stop()


def test_install_does_nothing_without_the_variable() -> None:
    assert heapprofile.install({}) is None


def test_install_starts_tracing_and_the_thread(tmp_path: Path) -> None:
    was = tracemalloc.is_tracing()
    profiler = heapprofile.install({heapprofile.DIR_ENV: str(tmp_path / "h"),
                                    heapprofile.EVERY_ENV: "3600",
                                    heapprofile.FRAMES_ENV: "3"})
    try:
        assert profiler is not None and profiler.is_alive()
        assert tracemalloc.is_tracing() and (was or tracemalloc.get_traceback_limit() == 3)
        assert profiler.every == 3600 and profiler.frames == 3
        assert (tmp_path / "h").is_dir()
    finally:
        assert profiler is not None
        profiler.stop()
        profiler.join(10)
        if not was:
            tracemalloc.stop()
    assert not profiler.is_alive()


def test_a_snapshot_holds_the_heap_the_process_and_the_sites(
        tmp_path: Path, tracing: None) -> None:
    keep = [bytearray(4096) for _ in range(64)]  # 256 KiB at one site of this file
    profiler = heapprofile.HeapProfiler(tmp_path, every=3600, frames=2)
    path = profiler.write_one()
    assert path.name == "heap-0000.json" and profiler.written == 1
    record = json.loads(path.read_text())
    assert record["traced_bytes"] >= 256 * 1024
    assert record["rss"] > 0 and 0 < record["anon"] <= record["rss"]
    assert record["malloc"]["in_use"] > 0  # glibc here
    assert record["rocksdb"]["databases"] == 0
    mine = [s for s in record["sites"] if s[0][0].startswith(__file__)]
    assert sum(size for _, size, _ in mine) >= 256 * 1024
    assert all(size >= heapprofile.MIN_SITE_BYTES for _, size, _ in record["sites"])
    assert not [s for s in record["sites"] if "tracemalloc" in s[0][0]]
    assert profiler.write_one().name == "heap-0001.json"
    del keep


def test_rocksdb_memory_sums_the_properties_of_each_database(tmp_path: Path) -> None:
    dbs = [Rdict(str(tmp_path / f"db{i}"), options=Options(raw_mode=True)) for i in range(2)]
    try:
        for db in dbs:
            db[b"k"] = b"v" * 1000
        totals = heapprofile.rocksdb_memory(lambda: dbs)
        assert totals["databases"] == 2
        assert totals["memtables"] > 0
        assert set(heapprofile.ROCKSDB_PROPERTIES) <= set(totals)
    finally:
        for db in dbs:
            db.close()


class _Obj:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


def test_worker_databases_lists_each_table_partition_once() -> None:
    a, b, c = object(), object(), object()
    tables = {"orders": _Obj(data=_Obj(_dbs={0: a, 1: b})), "meta": _Obj(data=_Obj(_dbs={0: b})),
              "metrics": _Obj(data=_Obj(_dbs={2: c})), "other": _Obj(data=_Obj(_dbs={}))}
    worker = _Obj(app=_Obj(tables=tables), stores={0: _Obj()})
    found = heapprofile.worker_databases(worker)()
    assert sorted(map(id, found)) == sorted(map(id, [a, b, c]))


def record(elapsed: float, sites: list[tuple[list[str], int, int]], traced: int = 10 * MIB,
           rss: int = 200 * MIB) -> dict[str, Any]:
    return {"elapsed_s": elapsed, "frames": 2, "traced_bytes": traced, "rss": rss,
            "anon": rss - 50 * MIB,
            "malloc": {"in_use": 80 * MIB, "free": 5 * MIB, "arena": 85 * MIB, "mmapped": 0},
            "rocksdb": {"memtables": 30 * MIB, "block_cache": 2 * MIB, "table_readers": MIB},
            "sites": [[list(f), s, c] for f, s, c in sites]}


def test_timeline_separates_python_heap_from_native() -> None:
    [row] = heap.timeline([record(60, [], traced=40 * MIB, rss=300 * MIB)])
    assert row["anon"] == 250 * MIB and row["traced"] == 40 * MIB
    assert row["native"] == 210 * MIB and row["rocksdb"] == 33 * MIB
    assert row["malloc_in_use"] == 80 * MIB and row["malloc_free"] == 5 * MIB
    assert row["beyond_malloc"] == 250 * MIB - 85 * MIB


def test_growth_ranks_sites_by_bytes_gained_and_leaves_out_shrinking_ones() -> None:
    before = record(100, [(["a.py:1"], 1000, 10), (["b.py:2", "c.py:3"], 5000, 5),
                          (["gone.py:9"], 700, 7)])
    after = record(200, [(["a.py:1"], 3000, 30), (["b.py:2", "c.py:3"], 4000, 4),
                         (["new.py:4"], 1500, 3)])
    grown = heap.growth(before, after)
    assert [(g.frames, g.size_diff, g.count_diff, g.size_after) for g in grown] == [
        (("a.py:1",), 2000, 20, 3000), (("new.py:4",), 1500, 3, 1500)]
    assert len(heap.growth(before, after, top=1)) == 1


def test_summary_compares_the_snapshot_nearest_the_middle_with_the_last() -> None:
    records = [record(t, [(["a.py:1"], 1000 + int(t), 1)], traced=int(t) * MIB,
                      rss=(100 + int(t)) * MIB) for t in (60, 300, 620, 900, 1200)]
    s = heap.summary(records)
    assert s["snapshots"] == 5 and len(s["timeline"]) == 5
    assert s["middle_elapsed_s"] == 620 and s["last_elapsed_s"] == 1200
    assert s["middle_to_last"]["traced"] == 580 * MIB
    assert s["middle_to_last"]["rss"] == 580 * MIB
    assert s["middle_to_last"]["native"] == 0
    assert s["middle_to_last"]["rocksdb"] == 0
    assert s["growth"][0]["size_diff"] == 580
    lines = heap.text(s).splitlines()
    assert lines[0].startswith("heap profile")
    assert any(line.startswith("from 620s to 1200s: rss +580.0") for line in lines)
    assert lines[-1].endswith("a.py:1")


def test_summary_of_fewer_than_two_snapshots_says_so() -> None:
    s = heap.summary([record(60, [])])
    assert s["growth"] == [] and s["snapshots"] == 1
    assert heap.text(s).splitlines()[-1].startswith("fewer than two heap snapshots")


def test_load_reads_the_snapshots_in_time_order_and_skips_broken_files(tmp_path: Path) -> None:
    (tmp_path / "heap-0001.json").write_text(json.dumps(record(600, [])))
    (tmp_path / "heap-0000.json").write_text(json.dumps(record(300, [])))
    (tmp_path / "heap-0002.json").write_text("{half")
    assert [r["elapsed_s"] for r in heap.load(tmp_path)] == [300, 600]


def test_short_frames_drop_the_directories() -> None:
    assert heap.short("/x/.venv/lib/python3.11/site-packages/faust/a.py:3") == "faust/a.py:3"
    assert heap.short("/work/wt/streams/worker/store.py:5") == "streams/worker/store.py:5"
    assert heap.short("<frozen abc>:1") == "<frozen abc>:1"


def test_the_soak_sets_the_worker_environment(tmp_path: Path) -> None:
    (tmp_path / "heap").mkdir()
    (tmp_path / "heap" / "heap-0000.json").write_text("{}")  # of an earlier run: removed
    env = heap_env(tmp_path / "heap", SoakConfig(heap_every=300.0, heap_frames=3))
    assert env == {heapprofile.DIR_ENV: str(tmp_path / "heap"),
                   heapprofile.EVERY_ENV: "300", heapprofile.FRAMES_ENV: "3"}
    assert not (tmp_path / "heap").exists()


def test_without_frames_a_snapshot_has_no_python_heap_and_no_sites(tmp_path: Path) -> None:
    if tracemalloc.is_tracing():
        pytest.skip("tracemalloc is on in this process")
    profiler = heapprofile.HeapProfiler(tmp_path, every=3600, frames=0)
    record = json.loads(profiler.write_one().read_text())
    assert record["frames"] == 0 and record["traced_bytes"] is None and record["sites"] == []
    assert record["rss"] > 0 and record["malloc"]["free"] >= 0
    [row] = heap.timeline([record])
    assert row["traced"] is None and row["native"] is None
    assert "       -" in heap.text(heap.summary([record])).splitlines()[2]


def test_a_shared_block_cache_is_counted_once() -> None:
    r = record(60, [])
    r["rocksdb"] = {"memtables": 10 * MIB, "block_cache": 3 * 32 * MIB, "table_readers": MIB,
                    "shared_block_cache": 32 * MIB, "shared_memtables": 10 * MIB}
    assert heap.rocksdb_total(r) == 43 * MIB
