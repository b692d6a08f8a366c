"""`crosscheck produce FILE` and `crosscheck export TOPIC`."""

from __future__ import annotations

import sys
import time

import click

from streams.cli.context import settings_of, topology_of
from streams.clients import check_reachable
from streams.export import export_topic
from streams.produce import LineError, produce_file


@click.command("produce")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--strict", is_flag=True, help="Produce nothing if any line is bad.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: for large files on a terminal).")
@click.pass_context
def produce(ctx: click.Context, file: str, strict: bool, progress: bool | None) -> None:
    """Publish a JSON Lines FILE of input events ('-' for stdin).

    Each line is {"topic": "payments", "event": {...}}. Events are keyed by order_id and
    partitioned with Java's murmur2. Bad lines are reported as FILE:LINE: reason; the good
    lines are produced (unless --strict) and the exit code is 1 if any line was bad.
    """
    s = settings_of(ctx)
    if file != "-" and not __import__("os").path.isfile(file):
        raise click.BadParameter(f"{file}: no such file", param_hint="FILE")
    check_reachable(s)

    def bad(exc: LineError) -> None:
        click.echo(str(exc), err=True)

    started = time.monotonic()
    report = produce_file(file, s, strict=strict, progress=progress, on_bad=bad)
    elapsed = max(time.monotonic() - started, 1e-9)
    for err in report.delivery_errors:
        click.echo(f"delivery failed: {err}", err=True)
    topics = ", ".join(f"{k}={v}" for k, v in sorted(report.by_topic.items()))
    if strict and report.bad:
        click.echo(f"{len(report.bad)} bad lines; nothing produced (--strict)", err=True)
    else:
        click.echo(f"produced {report.produced} events in {elapsed:.1f}s "
                   f"({report.produced / elapsed:,.0f}/s){': ' + topics if topics else ''}")
    if report.bad:
        click.echo(f"{len(report.bad)} bad lines", err=True)
    if report.bad or report.delivery_errors:
        sys.exit(1)


@click.command("export")
@click.argument("topic")
@click.option("--out", "out_path", required=True, type=click.Path(allow_dash=True),
              help="Output JSON Lines file, '-' for stdout.")
@click.option("--idle-timeout", type=float, default=5.0, show_default=True,
              help="Stop once no new record came for this many seconds.")
@click.pass_context
def export(ctx: click.Context, topic: str, out_path: str, idle_timeout: float) -> None:
    """Read TOPIC from the start (read_committed) and write it decoded as JSON Lines.

    TOPIC is a topic id (payments, mismatches, commands, dlq, ...) or a topic name.
    Input topics are written in the `produce` form, output records as themselves,
    with times as ISO-8601 UTC (milliseconds, Z).
    """
    s = settings_of(ctx)
    topology = topology_of(ctx)
    topic_id = topology.topic_id(topic)
    check_reachable(s)

    def warn(message: str) -> None:
        click.echo(f"skipped: {message}", err=True)

    if out_path == "-":
        count = export_topic(s, topic_id, topology.name(topic_id), sys.stdout, idle_timeout, warn)
    else:
        with open(out_path, "w", encoding="utf-8") as out:
            count = export_topic(s, topic_id, topology.name(topic_id), out, idle_timeout, warn)
    click.echo(f"exported {count} records of {topology.name(topic_id)}", err=True)


def register(cli: click.Group) -> None:
    """Add the commands of this module."""
    cli.add_command(produce)
    cli.add_command(export)
