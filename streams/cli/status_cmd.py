"""`crosscheck status [--json]`: lag, inputs, watermarks, open mismatches, held commands."""

from __future__ import annotations

import json

import click

from schemas.validation import format_time
from streams.cli.context import settings_of, topology_of
from streams.clients import check_reachable
from streams.status import Status, collect

#: held commands listed in the text output (``--json`` lists them all)
HELD_SHOWN = 20


def _time(ms: int | None) -> str:
    return "-" if ms is None else format_time(ms)


def render(report: Status) -> list[str]:
    """The report as text lines (tables)."""
    lines = [f"group {report.group} on {report.bootstrap}",
             f"{'topic':32} {'part':>4} {'committed':>10} {'end':>10} {'lag':>8}"]
    for lag in report.lags:
        committed = "-" if lag.committed is None else str(lag.committed)
        lines.append(f"{lag.topic:32} {lag.partition:>4} {committed:>10} {lag.end:>10} "
                     f"{lag.lag:>8}")
    lines.append(f"total lag: {report.total_lag}")
    lines.append(f"{'partition':>9}  {'watermark':24}  idle inputs")
    for p, wm in sorted(report.watermarks.items()):
        lines.append(f"{p:>9}  {_time(wm):24}  {', '.join(report.idle.get(p, [])) or '-'}")
    if not report.watermarks:
        lines.append("        (no watermark yet: no worker has judged anything)")
    if report.rule_watermarks:
        lines.append(f"{'partition':>9}  {'rule watermark':24}  over the inputs (rules)")
        for p, groups in sorted(report.rule_watermarks.items()):
            for g in groups:
                lines.append(f"{p:>9}  {_time(g['watermark']):24}  "
                             f"{'+'.join(g['inputs'])} ({len(g['rules'])} rules)")
    if report.inputs:
        lines.append(f"{'input':32} {'part':>4}  {'progress':24}  {'state':10}  stalled since")
        for i in report.inputs:
            lines.append(f"{i.topic:32} {i.partition:>4}  {_time(i.progress):24}  "
                         f"{i.state:10}  {'' if i.since is None else format_time(i.since)}"
                         .rstrip())
    by_type = ", ".join(f"{t}={n}" for t, n in sorted(report.open_by_type.items()))
    suffix = f" ({by_type})" if by_type else ""
    lines.append(f"open mismatches: {report.open_mismatches}{suffix}")
    lines.append(f"held commands: {len(report.held)}"
                 + (" (decided, not sent until every input they wait for confirms them)"
                    if report.held else ""))
    if report.held:
        lines.append(f"{'part':>4}  {'decided at':24}  {'type':18}  {'order':20}  waits for")
        for h in report.held[:HELD_SHOWN]:
            lines.append(f"{h['partition']:>4}  {_time(h['decided_at']):24}  {h['type']:18}  "
                         f"{h['order_id']:20}  {', '.join(h['waits_for'])}")
        if len(report.held) > HELD_SHOWN:
            lines.append(f"      ... and {len(report.held) - HELD_SHOWN} more (--json lists "
                         "them all)")
    return lines


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of tables.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Consumer lag per input topic-partition, each input's progress and state (active,
    quiet, stalled, released, never seen), watermark per partition, open mismatches and the
    held commands with the inputs they wait for.

    Reads the worker group's committed offsets (CROSSCHECK_APP_ID), its watermark table's
    changelog and the mismatches topic; the workers need not be running.
    """
    s = settings_of(ctx)
    check_reachable(s)
    report = collect(s, topology_of(ctx))
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
        return
    for line in render(report):
        click.echo(line)


def register(cli: click.Group) -> None:
    """Add the commands of this module."""
    cli.add_command(status)
