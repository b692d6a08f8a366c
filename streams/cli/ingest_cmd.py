"""`crosscheck ingest`: the shop's own topics, mapped by a sources file onto the Avro inputs."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import click

from streams.cli.context import settings_of
from streams.clients import check_reachable
from streams.config import parse_bind
from streams.errors import ConfigError


@click.command("ingest")
@click.option("--sources", "sources_path", envvar="CROSSCHECK_SOURCES_FILE", required=True,
              metavar="FILE", help="The sources file (TOML; CROSSCHECK_SOURCES_FILE): per "
              "input its topic, format and field mappings (docs/sources.md).")
@click.option("--check", "check_only", is_flag=True,
              help="Check the sources file and the topics, then exit (0: ready to ingest).")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=2000, show_default=True,
              help="Most source records per transaction.")
@click.option("--repartition", is_flag=True,
              help="Accept source topics with another partition count than the inputs (each "
                   "event still goes to its order's partition; after a backlog an order's "
                   "events may then reach the worker later than the allowed lateness).")
@click.option("--instance", default="0", show_default=True, metavar="ID",
              help="Names this process's transactional id; each ingest process of one app "
                   "id needs its own.")
@click.option("--until-idle", type=click.FloatRange(0.1), default=None, metavar="SECONDS",
              help="Stop once every source partition has been at its end this long (a "
                   "one-off ingest of what is there); default: run until SIGTERM or Ctrl-C.")
@click.option("--report-every", type=click.FloatRange(0), default=10.0, show_default=True,
              metavar="SECONDS", help="Print the counters this often (0: only at the end).")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None, metavar="PORT",
              help="Serve the counters as Prometheus text on http://BIND:PORT/metrics.")
@click.option("--metrics-bind", default="127.0.0.1", show_default=True, metavar="ADDRESS",
              help="IP address the metrics server listens on.")
@click.pass_context
def ingest(ctx: click.Context, sources_path: str, check_only: bool, batch_size: int,
           repartition: bool, instance: str, until_idle: float | None, report_every: float,
           metrics_port: int | None, metrics_bind: str) -> None:
    """Map the shop's own topics onto the contract's Avro input topics, exactly once.

    Each record of a json or debezium input of the sources file becomes the contract's
    event, written keyed by its order id to its order's partition of the input's topic; a
    record that does not map goes to the dead-letter topic with the input, the mapping rule
    and the reason; tombstones, deletes and unchanged statuses are skipped and counted. The
    worker, replay and audit then read the input topics as always.
    """
    from streams.sources import load_sources
    from streams.sources.ingest import Ingest, IngestError
    from streams.sources.stats import serve_metrics

    s = settings_of(ctx)
    sources = load_sources(sources_path)
    try:
        bind = parse_bind(metrics_bind, "--metrics-bind")
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--metrics-bind") from None
    check_reachable(s)

    def warn(message: str) -> None:
        click.echo(f"warning: {message}", err=True)

    runner = Ingest(s, sources, batch_size=batch_size, repartition=repartition,
                    instance=instance, warn=warn)
    layout = runner.check()
    for spec in sources.mapped():
        click.echo(f"{spec.input.value:9} <- {spec.topic} ({spec.format.value}"
                   f"{', unwrapped' if spec.unwrap else ''}, "
                   f"{layout.sources[spec.topic]} partitions)", err=True)
    if check_only:
        click.echo(f"ok: {sources.name} maps {len(sources.mapped())} input(s) onto "
                   f"{layout.inputs} partitions")
        return
    runner.start(layout)
    click.echo(f"crosscheck ingest: group {runner.group} on {s.bootstrap}, transactional id "
               f"{runner.transactional_id}, into {layout.inputs} partitions", err=True)
    if metrics_port is not None:
        serve_metrics(runner.stats, metrics_port, bind)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        runner.run(stop, until_idle=until_idle, report_every=report_every or None,
                   on_report=lambda line: click.echo(f"ingest: {line}", err=True))
    except IngestError as exc:
        click.echo(f"crosscheck: error: {exc}", err=True)
        sys.exit(1)
    finally:
        runner.close()
    click.echo(f"ingest: {runner.stats.summary()}")


def register(cli: click.Group) -> None:
    """Add the commands of this module."""
    cli.add_command(ingest)
