"""One human line per output of the worker, for `crosscheck worker --echo`."""

from __future__ import annotations

from typing import Any

from schemas.validation import format_time
from streams.metrics.sources import describe_source
from streams.metrics.windows import Partial
from streams.model import Command, DeadLetter, Mismatch


def describe(output: Mismatch | Command | DeadLetter | Partial) -> str:
    """One human line about an output (for `worker --echo`)."""
    if isinstance(output, Mismatch):
        when = format_time(output.resolved_at if output.resolved_at is not None
                           else output.decided_at)
        extra = f" by {output.resolved_by}" if output.resolved_by else ""
        command = f" -> command {output.command_id[:12]}" if output.command_id and \
            output.status.value == "OPEN" else ""
        return (f"{output.status.value:8} {output.severity.value:8} {output.type.value:28} "
                f"order={output.order_id} subject={output.subject_id} at {when}{extra}{command}")
    if isinstance(output, Command):
        money = f" {output.amount} {output.currency}" if output.amount is not None else ""
        stock = f" {output.quantity} x {output.sku}" if output.sku else ""
        kind = "SHADOW  " if output.shadow else "COMMAND "
        return (f"{kind} {output.type.value:17} target={output.target_id} "
                f"order={output.order_id}{money}{stock} id={output.command_id[:12]}")
    if isinstance(output, Partial):
        return f"METRICS  partition {output.partition}: {len(output.windows)} windows closed"
    return (f"DEAD     {output.source_topic}[{output.partition}]@{output.offset}: "
            f"{output.reason}")


def describe_alert(alert: dict[str, Any]) -> str:
    """One human line about an Alert record (times in epoch ms), e.g. ``ALERT    STORM ...``
    or ``ALERT    SOURCE_STALLED inventory partitions=0,2 last=2026-... stalled 10m``."""
    if alert.get("source") is not None:
        return f"ALERT    {alert['kind']} {describe_source(alert)}"
    return (f"ALERT    {alert['kind']:8} {alert['severity']:8} {alert['mismatch_type'] or '':28} "
            f"count={alert['count']} orders={','.join(alert['sample_order_ids'])}")
