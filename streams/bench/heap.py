"""The soak's heap profile read back: Python heap vs RSS over time, and the sites that grew.

The worker writes one ``heap-NNNN.json`` per snapshot (``streams.worker.heapprofile``). Here
they become a timeline (RSS, its anonymous part, the Python heap tracemalloc traces, what
glibc's malloc holds in use and free, what RocksDB reports) and a diff of the allocation
sites between the snapshot nearest the middle of the run and the last one, largest growth
first. Growth of RSS without growth of the traced heap is native (RocksDB, librdkafka,
malloc fragmentation); the malloc and RocksDB columns say which.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIB = 2**20


def load(directory: Path) -> list[dict[str, Any]]:
    """The snapshots of a directory, in the order they were taken (unreadable ones skipped)."""
    records = []
    for path in sorted(directory.glob("heap-*.json")):
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return sorted(records, key=lambda r: float(r.get("elapsed_s", 0)))


def rocksdb_total(record: dict[str, Any]) -> int:
    """Bytes RocksDB reports (memtables + block caches + table readers) in a snapshot.

    When the stores share one block cache, each reports all of it: the shared figure counts.
    """
    r = record.get("rocksdb") or {}
    caches = r.get("shared_block_cache", r.get("block_cache", 0))
    return int(r.get("memtables", 0)) + int(caches) + int(r.get("table_readers", 0))


def timeline(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per snapshot: elapsed, rss, anon, traced, malloc in use/free, rocksdb (bytes).

    ``native`` = anonymous memory minus the traced Python heap: what tracemalloc cannot see
    (RocksDB, librdkafka, the interpreter's free pools and malloc's free lists).
    ``beyond_malloc`` = anonymous memory minus what glibc's malloc got from the kernel
    (its arenas and mmapped chunks): mostly the interpreter's own object arenas, which
    Python maps itself, so a Python-heap figure even without tracemalloc.
    """
    rows = []
    for r in records:
        m = r.get("malloc") or {}
        anon = r.get("anon", r.get("rss"))
        traced = r.get("traced_bytes")
        rows.append({"elapsed_s": r.get("elapsed_s"), "rss": r.get("rss"), "anon": anon,
                     "traced": traced,
                     "native": None if anon is None or traced is None
                     else int(anon) - int(traced),
                     "malloc_in_use": m.get("in_use"), "malloc_free": m.get("free"),
                     "beyond_malloc": None if anon is None or "arena" not in m
                     else int(anon) - int(m["arena"]) - int(m.get("mmapped", 0)),
                     "rocksdb": rocksdb_total(r)})
    return rows


@dataclass(frozen=True)
class SiteGrowth:
    """How one allocation site (its traceback, innermost frame first) changed."""

    frames: tuple[str, ...]
    size_diff: int
    count_diff: int
    size_after: int


def growth(before: dict[str, Any], after: dict[str, Any], top: int = 15) -> list[SiteGrowth]:
    """The ``top`` sites whose traced bytes grew most from ``before`` to ``after``."""

    def sites(record: dict[str, Any]) -> dict[tuple[str, ...], tuple[int, int]]:
        out: dict[tuple[str, ...], tuple[int, int]] = {}
        for frames, size, count in record.get("sites", []):
            key = tuple(frames)
            old = out.get(key, (0, 0))
            out[key] = (old[0] + int(size), old[1] + int(count))
        return out

    a, b = sites(before), sites(after)
    diffs = [SiteGrowth(key, b.get(key, (0, 0))[0] - a.get(key, (0, 0))[0],
                        b.get(key, (0, 0))[1] - a.get(key, (0, 0))[1], b.get(key, (0, 0))[0])
             for key in a.keys() | b.keys()]
    diffs.sort(key=lambda g: g.size_diff, reverse=True)
    return [g for g in diffs[:top] if g.size_diff > 0]


def middle_and_last(records: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The snapshot nearest the middle of the profiled time, and the last one."""
    last = records[-1]
    half = float(last.get("elapsed_s", 0)) / 2
    middle = min(records[:-1] or records, key=lambda r: abs(float(r.get("elapsed_s", 0)) - half))
    return middle, last


def summary(records: Sequence[dict[str, Any]], top: int = 15) -> dict[str, Any]:
    """Timeline and middle-to-end growth, as stored in soak-results.json."""
    if len(records) < 2:
        return {"snapshots": len(records), "timeline": timeline(records), "growth": []}
    middle, last = middle_and_last(records)
    rows_by_elapsed = {row["elapsed_s"]: row for row in timeline([middle, last])}
    mid_row, last_row = rows_by_elapsed[middle.get("elapsed_s")], rows_by_elapsed[
        last.get("elapsed_s")]
    deltas = {k: (None if mid_row[k] is None or last_row[k] is None
                  else int(last_row[k]) - int(mid_row[k]))
              for k in ("rss", "anon", "traced", "native", "malloc_in_use", "malloc_free",
                        "beyond_malloc", "rocksdb")}
    return {"snapshots": len(records), "frames": last.get("frames"),
            "timeline": timeline(records),
            "middle_elapsed_s": middle.get("elapsed_s"), "last_elapsed_s": last.get("elapsed_s"),
            "middle_to_last": deltas,
            "growth": [{"frames": list(g.frames), "size_diff": g.size_diff,
                        "count_diff": g.count_diff, "size_after": g.size_after}
                       for g in growth(middle, last, top)]}


def short(frame: str) -> str:
    """A frame without the directories before the package (site-packages, the checkout)."""
    for marker in ("site-packages/", "/streams/", "/lib/python3"):
        at = frame.rfind(marker)
        if at >= 0:
            return frame[at + len(marker):] if marker == "site-packages/" else frame[at + 1:]
    return frame


def _mib(value: Any, width: int = 8) -> str:
    return f"{'-':>{width}}" if value is None else f"{int(value) / MIB:{width}.1f}"


def text(heap: dict[str, Any]) -> str:
    """The heap summary as the lines the soak prints."""
    lines = ["heap profile (MiB; native = anonymous - traced Python heap; malloc: in use and "
             "free inside glibc's arenas; beyond = anonymous - malloc's arenas and mmaps):",
             f"{'elapsed':>8}  {'RSS':>8}  {'anon':>8}  {'py heap':>8}  {'native':>8}  "
             f"{'malloc':>8}  {'m. free':>8}  {'beyond':>8}  {'RocksDB':>8}"]
    for row in heap.get("timeline", []):
        lines.append(f"{float(row['elapsed_s'] or 0):7.0f}s  {_mib(row['rss'])}  "
                     f"{_mib(row['anon'])}  {_mib(row['traced'])}  {_mib(row['native'])}  "
                     f"{_mib(row['malloc_in_use'])}  {_mib(row['malloc_free'])}  "
                     f"{_mib(row.get('beyond_malloc'))}  {_mib(row['rocksdb'])}")
    deltas = heap.get("middle_to_last")
    if deltas:
        lines.append(f"from {heap['middle_elapsed_s']:.0f}s to {heap['last_elapsed_s']:.0f}s: "
                     + ", ".join(f"{k} {'-' if v is None else f'{v / MIB:+.1f}'}"
                                 for k, v in deltas.items()))
    if heap.get("growth"):
        lines.append("allocation sites that grew most in that time (innermost frame first):")
        for g in heap["growth"]:
            where = " <- ".join(map(short, g["frames"]))
            lines.append(f"  {g['size_diff'] / MIB:+8.2f} MiB {g['count_diff']:+10,} blocks  "
                         f"(now {g['size_after'] / MIB:.2f} MiB)  {where}")
    elif heap.get("snapshots", 0) < 2:
        lines.append("fewer than two heap snapshots: run longer or snapshot more often")
    return "\n".join(lines)
