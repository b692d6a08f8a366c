"""`crosscheck status [--json]`: lag, watermarks and open mismatches of the worker group."""

from __future__ import annotations

import json

import click

from schemas.validation import format_time
from streams.cli.main import settings_of
from streams.cli.topics_cmd import topology_of
from streams.clients import check_reachable
from streams.status import collect


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of tables.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Consumer lag per input topic-partition, watermark per partition, open mismatches.

    Reads the worker group's committed offsets (CROSSCHECK_APP_ID), its watermark table's
    changelog and the mismatches topic; the workers need not be running.
    """
    s = settings_of(ctx)
    check_reachable(s)
    report = collect(s, topology_of(ctx))
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
        return
    click.echo(f"group {report.group} on {report.bootstrap}")
    click.echo(f"{'topic':32} {'part':>4} {'committed':>10} {'end':>10} {'lag':>8}")
    for lag in report.lags:
        committed = "-" if lag.committed is None else str(lag.committed)
        click.echo(f"{lag.topic:32} {lag.partition:>4} {committed:>10} {lag.end:>10} "
                   f"{lag.lag:>8}")
    click.echo(f"total lag: {report.total_lag}")
    click.echo(f"{'partition':>9}  {'watermark':24}  idle inputs")
    for p, wm in sorted(report.watermarks.items()):
        shown = "-" if wm is None else format_time(wm)
        click.echo(f"{p:>9}  {shown:24}  {', '.join(report.idle.get(p, [])) or '-'}")
    if not report.watermarks:
        click.echo("        (no watermark yet: no worker has judged anything)")
    by_type = ", ".join(f"{t}={n}" for t, n in sorted(report.open_by_type.items()))
    suffix = f" ({by_type})" if by_type else ""
    click.echo(f"open mismatches: {report.open_mismatches}{suffix}")


def register(cli: click.Group) -> None:
    """Add the commands of this module."""
    cli.add_command(status)
