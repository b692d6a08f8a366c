"""The end of a chaos run: outputs read back and judged against the reference, and the table."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

from streams.chaos.plan import FAULT_NAMES
from streams.chaos.recovery import ready_line
from streams.config import Settings
from streams.errors import CrosscheckError
from streams.export import json_line, read_topic
from streams.verify import Expected, check_commands, check_mismatches
from topology.topics import TopicId, Topology


def export_outputs(settings: Settings, topology: Topology, workdir: Path,
                   idle: float = 5.0) -> dict[TopicId, list[dict[str, Any]]]:
    """Read mismatches, commands (and those decided in shadow mode) and dead letters from the
    start (read_committed), write each to ``<workdir>/<topic>.jsonl`` as `crosscheck export`
    does, and return the records."""
    found: dict[TopicId, list[dict[str, Any]]] = {}
    for topic in (TopicId.MISMATCHES, TopicId.COMMANDS, TopicId.COMMANDS_SHADOW, TopicId.DLQ):
        errors: list[str] = []
        records: list[dict[str, Any]] = []
        with (workdir / f"{topic.value}.jsonl").open("w", encoding="utf-8") as out:
            for info, record, _msg in read_topic(settings, topology.name(topic), idle,
                                                 on_error=errors.append):
                out.write(json_line(topic, info, record) + "\n")
                records.append(record)
        if errors:
            raise CrosscheckError(f"reading {topology.name(topic)}: {errors[:3]}")
        found[topic] = records
    return found


def judge_outputs(got: dict[TopicId, list[dict[str, Any]]], expected: Expected,
                  bad_sent: dict[tuple[str, int, int], str]) -> dict[str, Any]:
    """Mismatches (OPEN and RESOLVED) and commands by stable id; dead letters by source
    (topic, partition, offset) against the bad records sent."""
    mismatches = got[TopicId.MISMATCHES]
    result: dict[str, Any] = {}
    for status in ("OPEN", "RESOLVED"):
        check = check_mismatches([m for m in mismatches if m["status"] == status],
                                 [m for m in expected.mismatches if m["status"] == status])
        result[f"mismatches_{status.lower()}"] = check.summary()
    result["commands"] = check_commands(got[TopicId.COMMANDS], expected.commands).summary()
    result["shadow_commands"] = check_commands(got.get(TopicId.COMMANDS_SHADOW, []),
                                               expected.shadow_commands).summary()
    letters = got[TopicId.DLQ]
    where = Counter((d["source_topic"], d["partition"], d["offset"]) for d in letters)
    reasons = Counter(_reason_kind(d["reason"]) for d in letters)
    misrouted = sum(1 for d in letters if d["reason"].startswith("misrouted"))
    result["dlq"] = {
        "expected": len(bad_sent), "got": len(letters),
        "lost": sum(1 for k in bad_sent if k not in where),
        "duplicated": sum(1 for k, n in where.items() if n > 1),
        "extra": sum(n for k, n in where.items() if k not in bad_sent),
        "misrouted": misrouted,
        "sent_by_kind": dict(sorted(Counter(bad_sent.values()).items())),
        "reasons": dict(reasons.most_common(12)),
    }
    return result


def _reason_kind(reason: str) -> str:
    """A dead letter's reason without the record-specific part (for counting)."""
    head = reason.split(":")[0]
    return head if len(head) < 60 else head[:57] + "..."


def verdict(outputs: dict[str, Any]) -> tuple[bool, list[str]]:
    """PASS when nothing is lost, duplicated, extra or changed and every bad record is in
    the DLQ exactly once; the reasons otherwise."""
    why: list[str] = []
    for name in ("mismatches_open", "mismatches_resolved", "commands", "shadow_commands"):
        c = outputs.get(name)
        if c is None:
            continue
        for field in ("lost", "duplicated", "extra", "changed"):
            if c[field]:
                why.append(f"{name.replace('_', ' ')}: {c[field]} {field}")
    d = outputs["dlq"]
    for field in ("lost", "duplicated", "extra", "misrouted"):
        if d[field]:
            why.append(f"dead letters: {d[field]} {field}")
    return not why, why


def _n(value: int) -> str:
    return f"{value:,}"


def table(results: dict[str, Any]) -> str:
    """The run's one table, as text."""
    s, out = results["scenario"], results["outputs"]
    lines = [f"crosscheck chaos: {_n(s['orders'])} orders, {_n(s['events'])} events (seed "
             f"{s['seed']}), {s['partitions']} partitions, exactly-once, published at "
             f"{s['rate']:g}/s, {results['seconds']:.0f} s"]
    lines += ["", f"{'fault':40}  {'planned':>7}  {'injected':>8}"]
    for kind, f in results["faults"].items():
        label = FAULT_NAMES[kind]
        if kind == "bad_burst":
            label += f" ({_n(out['dlq']['expected'])} records)"
        if kind == "source_outage" and f["planned"]:
            label += _outage_label(results.get("source_outages") or {})
        lines.append(f"{label:40}  {f['planned']:>7}  {f['injected']:>8}")
    if results.get("broker_restarts_skipped"):
        lines.append(f"broker restarts skipped: {results['broker_restarts_skipped']}")
    r = results["restarts"]
    lines.append(f"worker restarts by the supervisor: {r['total']} ({r['killed']} after a "
                 f"SIGKILL, {r['stalled']} after exit 75, {r.get('refused', 0)} after exit 76 "
                 f"(a send refused), {r['crashed']} after a crash)")
    if "ready_after_kill" in results:  # not in results written before it was measured
        lines.append(ready_line(results["ready_after_kill"]))
    lines += ["", f"{'output':28}  {'expected':>8}  {'got':>8}  {'lost':>5}  "
                  f"{'duplicated':>10}  {'extra':>5}  {'changed':>7}"]
    rows = [("mismatches OPEN", out["mismatches_open"]),
            ("mismatches RESOLVED", out["mismatches_resolved"]),
            ("commands", out["commands"])]
    shadow = out.get("shadow_commands")
    if shadow and (shadow["expected"] or shadow["got"]):
        rows.append(("commands (shadow mode)", shadow))
    judged = len(rows)
    rows.append(("dead letters (bad records)", out["dlq"]))
    for name, c in rows:
        changed = _n(c["changed"]) if "changed" in c else "-"
        lines.append(f"{name:28}  {_n(c['expected']):>8}  {_n(c['got']):>8}  "
                     f"{_n(c['lost']):>5}  {_n(c['duplicated']):>10}  {_n(c['extra']):>5}  "
                     f"{changed:>7}")
    lines += ["", f"stuck: {_stuck_line(results['stuck'])}"]
    if not results["finished"]:
        lines.append("the workers did not finish (lag left) within the finish timeout")
    ok, why = results["verdict"]["ok"], results["verdict"]["why"]
    d = out["dlq"]
    found = d["expected"] - d["lost"]
    share = math.floor(1000 * found / d["expected"]) / 10 if d["expected"] else 100.0
    total = {f: sum(c[f] for _, c in rows[:judged]) for f in ("lost", "duplicated", "extra")}
    lines.append(f"verdict: {'PASS' if ok else 'FAIL'} ({total['lost']} lost, "
                 f"{total['duplicated']} duplicated, {total['extra']} extra, {share:g} % of "
                 f"the bad records in the DLQ: {found:,}/{d['expected']:,})"
                 + ("" if ok else f": {'; '.join(why)}"))
    return "\n".join(lines)


def _outage_label(doc: dict[str, Any]) -> str:
    """The inputs held back and the outage length, as in 'source outage (payments paused 20 s)'."""
    topics = list(dict.fromkeys(o["topic"] for o in doc.get("outages", [])))
    return f" ({', '.join(topics) or 'an input'} paused {doc.get('length_s', 0):g} s)"


def _stuck_line(stuck: dict[str, Any]) -> str:
    m = stuck["monitor"]
    longest = f"longest wait of a partition with input waiting {m['longest_wait_s']:.0f} s " \
              f"(at {m['longest_wait_at_s']:.0f} s; restarts and recovery included)"
    if not stuck["stuck"]:
        return (f"no (no exit 75; no partition stood still > {m['stuck_after_s']:.0f} s with "
                f"input waiting while every worker was ready; {longest})")
    parts = []
    if stuck["exits_75"]:
        parts.append(f"{stuck['exits_75']} exits with code 75 (at "
                     f"{', '.join(f'{t:.0f}' for t in stuck['exit_75_at_s'])} s)")
    for e in m["episodes"]:
        parts.append(f"{len(e['partitions'])} partitions still for {e['seconds']:.0f} s from "
                     f"{e['start_s']:.0f} s with {e['lag']} records waiting, workers "
                     f"{e['statuses']}{', task dumps in the worker logs' if e['dumped'] else ''}")
    return "yes: " + "; ".join(parts) + f"; {longest}"
