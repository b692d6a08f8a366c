"""Heap profile of a running worker: periodic tracemalloc, malloc and RocksDB memory snapshots.

Off unless ``CROSSCHECK_HEAP_PROFILE`` names a directory (``crosscheck soak --heap-profile``
sets it). Then tracemalloc is started at worker start with a small frame depth
(``CROSSCHECK_HEAP_PROFILE_FRAMES``, default 2; 0: no tracemalloc, which slowed the
soak's worker about fourfold), and a
daemon thread writes ``heap-NNNN.json`` into the directory every
``CROSSCHECK_HEAP_PROFILE_EVERY`` seconds (default 300). Each file holds the Python heap as
tracemalloc sees it (total, and per allocation site the bytes and blocks, sites under 1 KiB
left out), the process's RSS and anonymous memory, glibc's ``mallinfo2`` (bytes in use and
free inside malloc's arenas), and what the worker's RocksDB instances report for their
memtables, block caches and table readers. RSS minus the traced heap is native memory plus
the interpreter's own; the malloc and RocksDB figures say which native part grows.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

DIR_ENV = "CROSSCHECK_HEAP_PROFILE"
EVERY_ENV = "CROSSCHECK_HEAP_PROFILE_EVERY"
FRAMES_ENV = "CROSSCHECK_HEAP_PROFILE_FRAMES"
#: allocation sites smaller than this are not written (they cannot explain a leak)
MIN_SITE_BYTES = 1024
#: RocksDB properties read from every open database (bytes)
ROCKSDB_PROPERTIES = {
    "memtables": "rocksdb.cur-size-all-mem-tables",
    "block_cache": "rocksdb.block-cache-usage",
    "block_cache_pinned": "rocksdb.block-cache-pinned-usage",
    "table_readers": "rocksdb.estimate-table-readers-mem",
}


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def malloc_info() -> dict[str, int] | None:
    """glibc's mallinfo2 over all arenas: in_use, free (held by malloc), mmapped; None off glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2
    info = fn()
    return {"in_use": int(info.uordblks) + int(info.hblkhd), "free": int(info.fordblks),
            "mmapped": int(info.hblkhd), "arena": int(info.arena)}


def proc_memory(pid: int | str = "self") -> dict[str, int]:
    """RSS and its anonymous part (bytes) from /proc/<pid>/smaps_rollup; {} if unreadable."""
    out: dict[str, int] = {}
    wanted = {"Rss:": "rss", "Anonymous:": "anon"}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] in wanted:
            out[wanted[parts[0]]] = int(parts[1]) * 1024
    return out


def rocksdb_memory(databases: Callable[[], Iterable[Any]]) -> dict[str, int]:
    """Sum of ROCKSDB_PROPERTIES over the RocksDB instances ``databases()`` lists."""
    totals = dict.fromkeys(ROCKSDB_PROPERTIES, 0)
    count = 0
    for db in list(databases()):
        count += 1
        for name, prop in ROCKSDB_PROPERTIES.items():
            with contextlib.suppress(Exception):  # closed while we looked
                totals[name] += int(db.property_int_value(prop) or 0)
    totals["databases"] = count
    from streams.worker import rocksdb_budget

    if rocksdb_budget.shared_cache.cache_info().currsize:  # the stores share one cache
        totals.update(rocksdb_budget.usage())
    return totals


def worker_databases(worker: Any) -> Callable[[], list[Any]]:
    """The open RocksDB instances of a Worker: each table partition's (the due index is in
    the orders table's)."""

    def databases() -> list[Any]:
        found: dict[int, Any] = {}
        for table in list(worker.app.tables.values()):
            for db in list(table.data._dbs.values()):  # Faust's RocksDB store, per partition
                found[id(db)] = db
        return list(found.values())

    return databases


def snapshot_record(started: float, frames: int,
                    databases: Callable[[], Iterable[Any]] = list) -> dict[str, Any]:
    """One heap-profile record (see the module docstring); tracemalloc must be tracing."""
    if not tracemalloc.is_tracing():  # frames 0: process, malloc and RocksDB figures only
        return {"elapsed_s": round(time.monotonic() - started, 1), "wall_s": time.time(),
                "frames": 0, "traced_bytes": None, **proc_memory(), "malloc": malloc_info(),
                "rocksdb": rocksdb_memory(databases), "sites": []}
    snap = tracemalloc.take_snapshot().filter_traces([
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    ])
    stats = snap.statistics("traceback")
    sites = [[[f"{f.filename}:{f.lineno}" for f in s.traceback], s.size, s.count]
             for s in stats if s.size >= MIN_SITE_BYTES]
    traced, peak = tracemalloc.get_traced_memory()
    del snap, stats
    return {"elapsed_s": round(time.monotonic() - started, 1), "wall_s": time.time(),
            "frames": frames, "traced_bytes": traced, "traced_peak_bytes": peak,
            "tracemalloc_overhead_bytes": tracemalloc.get_tracemalloc_memory(),
            **proc_memory(), "malloc": malloc_info(), "rocksdb": rocksdb_memory(databases),
            "sites": sites}


class HeapProfiler(threading.Thread):
    """Writes a snapshot_record to ``directory/heap-NNNN.json`` every ``every`` seconds."""

    def __init__(self, directory: Path, every: float, frames: int) -> None:
        super().__init__(name="crosscheck-heap-profile", daemon=True)
        self.directory, self.every, self.frames = directory, every, frames
        self.started = time.monotonic()
        self.written = 0
        self._stop_event = threading.Event()
        #: lists the RocksDB instances to report (set once the worker exists)
        self.databases: Callable[[], Iterable[Any]] = list

    def write_one(self) -> Path:
        """Take and write one snapshot now; returns its path."""
        record = snapshot_record(self.started, self.frames, self.databases)
        path = self.directory / f"heap-{self.written:04d}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, separators=(",", ":")), encoding="utf-8")
        tmp.replace(path)
        self.written += 1
        return path

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            try:
                self.write_one()
            except Exception as exc:  # a profile must never stop the worker
                print(f"crosscheck: heap profile failed: {exc!r}", file=sys.stderr, flush=True)

    def stop(self) -> None:
        """End the thread at its next wake-up."""
        self._stop_event.set()


def install(env: dict[str, str] | None = None) -> HeapProfiler | None:
    """Start tracemalloc and the profiler thread if the environment asks for it."""
    env = dict(os.environ) if env is None else env
    directory = env.get(DIR_ENV)
    if not directory:
        return None
    every = float(env.get(EVERY_ENV) or 300)
    frames = int(env.get(FRAMES_ENV) or 2)
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    if frames > 0 and not tracemalloc.is_tracing():
        tracemalloc.start(frames)
    profiler = HeapProfiler(path, every, frames)
    profiler.start()
    print(f"crosscheck: heap profile every {every:g}s ({frames} frames) into {path}",
          file=sys.stderr, flush=True)
    return profiler
