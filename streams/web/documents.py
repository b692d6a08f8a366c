"""The JSON documents of the worker's web endpoints, built from plain data (no Faust here).

Times are ISO-8601 UTC with milliseconds and ``Z`` (as `crosscheck export` writes them);
field names of mismatches, windows and alerts are the contract's (section 5).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas.catalog import schema
from schemas.validation import format_time
from streams.config import RuleConfig
from streams.engine.partition import DECIDE, pending_work, view_of
from streams.engine.state import OrderState
from streams.export import to_json_record
from streams.model import Event, Source, event_of
from streams.rules.catalog import RULES
from streams.web.inputs import held_doc, inputs_doc
from streams.web.probe import PartitionLag, Probe
from streams.web.recent import RecentMismatches, mismatch_json

_WINDOW = schema("MetricsWindow")
_ALERT = schema("Alert")


def iso(ms: int | None) -> str | None:
    """Epoch ms -> ISO-8601 (None stays None)."""
    return None if ms is None else format_time(ms)


# -- /health ----------------------------------------------------------------------------


def lag_doc(lags: Iterable[PartitionLag]) -> dict[str, Any]:
    """Input lag: the sum over the topic-partitions where it is known, and each of them."""
    rows = [{"topic": pl.topic, "partition": pl.partition, "end": pl.end,
             "position": pl.position, "lag": pl.lag} for pl in lags]
    known = [r["lag"] for r in rows if r["lag"] is not None]
    return {"records": sum(known), "complete": len(known) == len(rows), "partitions": rows}


def rule_watermarks_doc(groups: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each partition's rule groups: the inputs their watermark is over, the rules, and
    the watermark (ISO and ms)."""
    return [{"partition": p, "inputs": g["inputs"], "rules": g["rules"],
             "watermark": iso(g["watermark"]), "watermark_ms": g["watermark"]}
            for p, part in sorted(groups.items()) for g in part]


def watermarks_doc(watermarks: dict[int, int | None], now: int) -> list[dict[str, Any]]:
    """Each partition's watermark and its age (wall clock now - watermark), in seconds."""
    return [{"partition": p, "watermark": iso(wm), "watermark_ms": wm,
             "age_seconds": None if wm is None else round((now - wm) / 1000, 3)}
            for p, wm in sorted(watermarks.items())]


def health_doc(probe: Probe, now: int) -> dict[str, Any]:
    """The /health document (the HTTP status is 200 when ready, else 503): readiness, lag,
    watermarks, each input topic-partition's progress and state, and the held commands."""
    ready, status = probe.ready()
    return {
        "ready": ready,
        "status": status,
        "worker_id": probe.worker_id,
        "app_id": probe.app_id,
        "url": probe.url,
        "now": iso(now),
        "uptime_seconds": round((now - probe.started_at) / 1000, 3),
        "records_processed": probe.records,
        "batches": probe.batch_count,
        "last_batch_seconds": probe.batches.last_seconds,
        "partitions": probe.partitions(),
        "standbys": probe.standbys(),
        "input_lag": lag_doc(probe.lag()),
        "watermarks": watermarks_doc(probe.watermarks(), now),
        "rule_watermarks": rule_watermarks_doc(probe.rule_watermarks()),
        "inputs": inputs_doc(probe.inputs(), now),
        "held_commands": held_doc(probe.held_commands(), now),
    }


def summary_doc(probe: Probe, now: int) -> dict[str, Any]:
    """Counters of this worker for the dashboard (what /metrics has, as JSON)."""
    c = probe.counters
    ready, status = probe.ready()
    return {
        "worker_id": probe.worker_id,
        "app_id": probe.app_id,
        "url": probe.url,
        "ready": ready,
        "status": status,
        "now": iso(now),
        "records_processed": probe.records,
        "events": dict(sorted(c.events.items())),
        "dead_letters": c.dead_letters,
        "duplicates_ignored": c.duplicates_ignored,
        "mismatches_opened": dict(sorted(c.mismatches.items())),
        "mismatches_resolved": c.resolved,
        "commands": dict(sorted(c.commands.items())),
        "shadow_commands": dict(sorted(c.shadow_commands.items())),
        "held_issued": c.held_issued,
        "held_dropped": c.held_dropped,
        "decisions_excused": dict(sorted(c.excused.items())),
        "inputs_reactivated": c.reactivated,
        "partitions": probe.partitions(),
        "watermarks": watermarks_doc(probe.watermarks(), now),
        "rule_watermarks": rule_watermarks_doc(probe.rule_watermarks()),
        "inputs": inputs_doc(probe.inputs(), now),
        "held_commands": held_doc(probe.held_commands(), now),
        "recent_mismatches": probe.recent.counts(),
    }


# -- /orders/{order_id} -------------------------------------------------------------------


def event_json(e: Event) -> dict[str, Any]:
    """An input event of the order's history, without the fields its source does not have."""
    body: dict[str, Any] = {
        "source": e.source.value, "event_id": e.event_id, "type": e.type,
        "event_time": format_time(e.event_time), "entity_id": e.entity_id,
    }
    for name in ("amount", "currency", "channel", "sku", "quantity", "user_id",
                 "total_amount"):
        value = getattr(e, name)
        if value is not None:
            body[name] = value
    if e.items:
        body["items"] = [{"sku": i.sku, "quantity": i.quantity,
                          **({"unit_price": i.unit_price} if i.unit_price is not None else {})}
                         for i in e.items]
    return body


def order_doc(state: OrderState, partition: int, recent: RecentMismatches,
              served_by: dict[str, Any], rules: RuleConfig, watermark: int | None
              ) -> dict[str, Any]:
    """The joined state of one order: its events, pending work and mismatch ledger.

    Pending work is derived (as the engine derives it) from the order's events and ledger and
    the partition's ``watermark``: the decisions and rechecks due above it.

    Mismatches come from the order's ledger in their current status. ``detected_at`` is the
    wall time this worker emitted the record, when it still remembers it (else null: the
    ledger keeps event times only).
    """
    mismatches = []
    for entry in sorted(state.ledger.values(), key=lambda x: (x.decided_at, x.mismatch_id)):
        body = mismatch_json(entry.record(state.order_id, 0))
        seen = recent.get(entry.mismatch_id)
        body["detected_at"] = seen["detected_at"] if seen else None
        body["frozen"] = entry.frozen
        mismatches.append(body)
    pending = [{"due": format_time(due), "kind": "DECIDE" if kind == DECIDE else "RECHECK",
                **({"rule": RULES[rule].type.value, "key": key}
                   if kind == DECIDE and rule in RULES else {})}
               for due, kind, rule, key in pending_work(state, rules, watermark)]
    view = view_of(state)
    events = sorted((event_of(step, source, entity, state.order_id)
                     for source in Source
                     for entity, log in view.entities(source).items() for step in log),
                    key=lambda e: (e.event_time, e.source.value, e.event_id))
    return {
        "order_id": state.order_id,
        "partition": partition,
        "served_by": served_by,
        "history_evicted": state.expire_at is None and not events,
        "events": [event_json(e) for e in events],
        "pending": pending,
        "mismatches": mismatches,
        "open_mismatches": sum(1 for m in mismatches if m["status"] == "OPEN"),
        "commands": list(state.commands),
    }


# -- /api/windows -------------------------------------------------------------------------


def window_json(w: dict[str, Any]) -> dict[str, Any]:
    """A MetricsWindow dict (epoch ms) as exported JSON."""
    return to_json_record(_WINDOW, w)


def alert_json(a: dict[str, Any]) -> dict[str, Any]:
    """An Alert dict (epoch ms) as exported JSON."""
    return to_json_record(_ALERT, a)


def windows_doc(windows: Iterable[dict[str, Any]], alerts: Iterable[dict[str, Any]],
                served_by: dict[str, Any], limit: int, alert_limit: int) -> dict[str, Any]:
    """The last `limit` final metrics windows (oldest first) and the last alerts (newest
    first), as kept by the worker that runs the metrics aggregator."""
    ws = list(windows)[-limit:] if limit > 0 else []
    al = list(alerts)[-alert_limit:][::-1] if alert_limit > 0 else []
    return {
        "served_by": served_by,
        "windows": [window_json(w) for w in ws],
        "alerts": [alert_json(a) for a in al],
    }
