"""The benchmark's results: the machine they come from, and the printed table."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

from streams.bench.latency import WARMUP_MS
from streams.bench.stages import breakdown
from streams.bench.worker_log import milestones
from streams.config import Settings
from streams.engine import core


def machine(settings: Settings) -> dict[str, Any]:
    """Where the figures come from: CPUs, memory, OS, Python, broker."""
    model = ""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
        model = found.group(1).strip() if found else ""
    except OSError:
        pass
    memory = None
    try:
        found = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(),
                          re.MULTILINE)
        memory = round(int(found.group(1)) / 1024 / 1024, 1) if found else None
    except OSError:
        pass
    host = settings.bootstrap.split(",")[0].rsplit(":", 1)[0]
    try:
        from streams.broker_config import kafka_version

        kafka = kafka_version()
    except Exception:
        kafka = "unknown"
    return {
        "cpus": os.cpu_count(), "cpu_model": model, "memory_gb": memory,
        "os": platform.platform(), "python": platform.python_version(),
        "broker": settings.bootstrap, "broker_on_this_host": host in ("127.0.0.1", "localhost"),
        "kafka_version": kafka, "engine": core.NAME,
    }


def _mb(value: Any) -> str:
    return "-" if value is None else f"{value / 1024 / 1024:,.0f} MB"


def _rate(value: Any) -> str:
    return "-" if value is None else f"{value:,.0f}"


def table(results: dict[str, Any]) -> str:
    """The results as a text table (what `crosscheck bench` prints)."""
    m = results["machine"]
    ceiling = results.get("ceiling", {}).get("records_per_s")
    rows: list[tuple[str, ...]] = [("phase", "records/s", "of ceiling", "seconds", "peak RSS",
                                    "RocksDB", "changelogs")]

    def share(rate: float | None) -> str:
        """A rate as a share of the ceiling."""
        return f"{100 * rate / ceiling:.0f}%" if rate and ceiling else "-"

    if "ceiling" in results:
        c = results["ceiling"]
        rows.append(("ceiling: raw consumer + Avro decode", _rate(c["records_per_s"]), "100%",
                     f"{c['seconds']:.1f}", "-", "-", "-"))
    for key, label in (("exactly_once", "worker, exactly-once"),
                       ("at_least_once", "worker, at-least-once")):
        w = results.get("worker", {}).get(key)
        if w:
            rows.append((label, _rate(w["throughput"]), share(w["throughput"]),
                         f"{w['seconds_to_zero_lag']:.1f} (start-up {w['startup_seconds']:.1f})",
                         _mb(w["peak_rss_bytes"]), _mb(w["rocksdb_bytes"]),
                         _mb(w.get("changelog_bytes"))))
    r = results.get("replay")
    if r:
        rows.append(("replay (backfill, all events)", _rate(r["records_per_s"]),
                     share(r["records_per_s"]), f"{r['seconds']:.1f}", _mb(r["peak_rss_bytes"]),
                     _mb(r["state_bytes"]), "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"crosscheck bench: {results['events']:,} events, {results['partitions']} "
             f"partitions; {m['cpus']} CPUs ({m['cpu_model'] or 'unknown'}), "
             f"{m['memory_gb']} GB, Kafka {m['kafka_version']} at {m['broker']}"
             + (" (same host)" if m["broker_on_this_host"] else "")
             + (f"; {m['engine']} engine" if m.get("engine") else "")]
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[j]) if j == 0 else cell.rjust(widths[j])
                               for j, cell in enumerate(row)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    for key, label in (("exactly_once", "exactly-once"), ("at_least_once", "at-least-once")):
        w = results.get("worker", {}).get(key)
        if w:
            consuming = w["seconds_to_zero_lag"] - w["startup_seconds"]
            cells = breakdown(w.get("stage_seconds") or {}, w.get("records", 0), consuming)
            lines.append(f"{label} worker, {cells}")
    lat = results.get("latency")
    if lat:
        def ms(v: Any) -> str:
            """Milliseconds, or '-'."""
            return "-" if v is None else f"{v:,.0f} ms"
        lines.append(f"decision latency (watermark passes D -> mismatch readable, exactly-once, "
                     f"{lat['rate']:,.0f} events/s): p50 {ms(lat['p50_ms'])}, p99 "
                     f"{ms(lat['p99_ms'])}, max {ms(lat['max_ms'])} over {lat['mismatches']:,} "
                     "mismatches" + (
                         f"; steady state (decided {WARMUP_MS / 1000:g} s or more after the "
                         f"start): p50 {ms(lat['steady_p50_ms'])}, p99 "
                         f"{ms(lat['steady_p99_ms'])} over {lat['steady_mismatches']:,}"
                         if "steady_p99_ms" in lat else ""))
    o = results.get("open_orders")
    if o:
        rss = o["peak_rss_bytes"]
        verdict = "-" if rss is None else (
            "within" if rss <= o["rss_target_bytes"] else "over")
        lines.append(f"open orders: {o['orders']:,} undecided orders held by one exactly-once "
                     f"worker: peak RSS {_mb(rss)} ({verdict} the "
                     f"{o['rss_target_bytes'] / 1e6:,.0f} MB target), RocksDB "
                     f"{_mb(o['rocksdb_bytes'])}, changelogs {_mb(o.get('changelog_bytes'))}; "
                     f"loaded at {_rate(o['throughput'])} events/s"
                     + (f"; NOT all open: {o['mismatch_offsets']} offsets in the mismatches "
                        "topic" if o.get("mismatch_offsets") else ""))
    if results.get("recovery"):
        lines += recovery_lines(results["recovery"])
    p = results.get("preload")
    if p:
        lines.append(f"pre-load: {p['events']:,} events published in {p['seconds']:.1f}s "
                     f"({p['events_per_s']:,.0f}/s); total {results.get('total_seconds', 0):.0f}s")
    return "\n".join(lines)


def _secs(value: Any) -> str:
    return "never" if value is None else f"{value:.1f} s"


def _verdict(value: Any, target: float, at_most: bool = True) -> str:
    if value is None:
        return "not met"
    return "met" if (value <= target if at_most else value >= target) else "not met"


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows as left-aligned columns, a rule under the first."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def recovery_lines(doc: dict[str, Any]) -> list[str]:
    """The recovery phase's table: each scenario under each session timeout, its seconds
    from the SIGKILL, what was restored, and the targets."""
    t = doc["targets"]
    ready, rate, takeover = t["ready_s"], t["restore_records_per_s"], t["takeover_s"]
    rows: list[tuple[str, ...]] = [("after a SIGKILL", "session", "to ready",
                                    "new orders committed", "bulk restore (worker's lines)",
                                    "changelog offsets (own count)", "targets")]
    notes = []
    for r in doc["rounds"]:
        session = f"{r['session_timeout_s']:g} s"
        notes.append(f"session timeout {session}: ready at zero lag "
                     f"{r['clean_start_s']:.1f} s after a start from a clean stop")
        for key, label in (("kept", "kill -9, state kept, static member"),
                           ("deleted", "kill -9, state deleted, static member"),
                           ("dynamic", "kill -9, state kept, dynamic member")):
            x = r.get(key)
            if x is None:
                continue
            restored = "-" if not x["restored_records"] else (
                f"{x['restored_records']:,} records in {x['restore_seconds']:.1f} s "
                f"({_rate(x['restore_rate'])}/s)")
            offsets = "-" if x["state"] == "kept" or x["offsets_rate"] is None else (
                f"{x['changelog_offsets']:,} ({_rate(x.get('window_rate'))}/s in the restore "
                f"window, {_rate(x['offsets_rate'])}/s to ready)")
            verdict = (f"ready <= {ready:g} s: {_verdict(x['ready_s'], ready)}"
                       if x["state"] == "kept" else
                       f">= {rate:,.0f} records/s: "
                       f"{_verdict(x['restore_rate'], rate, at_most=False)}")
            rows.append((label, session, _secs(x["ready_s"]), _secs(x["committed_s"]),
                         restored, offsets, verdict))
            notes.append(f"{label}, session timeout {session}, after the SIGKILL: "
                         f"{milestones(x.get('timeline') or {})}")
        k = r["takeover"]
        restored = "-" if not k["restored_records"] else (
            f"{k['restored_records']:,} records in {k['restore_seconds']:.1f} s "
            f"({_rate(k['restored_records'] / max(k['restore_seconds'], 1e-3))}/s)")
        rows.append((f"standby takeover (partitions {', '.join(map(str, k['partitions']))})",
                     session, _secs(k["holds_s"]), _secs(k["committed_s"]), restored, "-",
                     f"new orders committed <= {takeover:g} s: "
                     f"{_verdict(k['committed_s'], takeover)}"))
        standbys = k.get("survivor_standbys") or "none"
        notes.append(f"standby takeover, session timeout {session}, after the SIGKILL: "
                     f"{milestones(k.get('timeline') or {})}; the survivor kept standbys of "
                     f"orders partitions {standbys} before it")
    standby = doc.get("standby_replicas")
    header = (f"recovery: {doc['orders']:,} open orders, {doc['new_orders']} new orders "
              "published after each SIGKILL"
              + (f"; CROSSCHECK_STANDBY_REPLICAS={standby}" if standby is not None else ""))
    return [header, *_columns(rows), *notes]
