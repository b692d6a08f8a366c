"""`crosscheck cdc start|stop|status`: a local PostgreSQL and Kafka Connect with Debezium."""

from __future__ import annotations

import sys

import click

from streams.cdc.config import load_cdc_settings
from streams.cdc.plan import CapturePlan, plan_from_sources, shop_plan
from streams.cdc.stack import CdcStack
from streams.cli.context import local_broker, settings_of
from streams.config import Settings

_SOURCES = click.option(
    "--sources", "sources", default=None, metavar="FILE", envvar="CROSSCHECK_SOURCES_FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="Sources file: its debezium inputs say which tables to capture into which topics "
         "[default: CROSSCHECK_SOURCES_FILE, else the example shop's four tables].")


def plan_of(settings: Settings, sources: str | None) -> CapturePlan:
    """The connector of the sources file, or the example shop's."""
    return plan_from_sources(sources) if sources else shop_plan(settings.topic_prefix)


def cdc_stack(ctx: click.Context, sources: str | None) -> CdcStack:
    """The stack of the configured CROSSCHECK_HOME, ports and database."""
    settings = settings_of(ctx)
    return CdcStack(settings, load_cdc_settings(), plan_of(settings, sources))


@click.group("cdc")
def cdc() -> None:
    """Change-data-capture for development: PostgreSQL and Kafka Connect with Debezium.

    The local PostgreSQL (CROSSCHECK_PG_PORT, 15432) holds the example shop's tables
    (orders, payments, reservations, shipments); Connect (REST on CROSSCHECK_CONNECT_PORT,
    18083) streams their changes into Kafka, keyed by order_id. With CROSSCHECK_CDC_DATABASE
    set, Connect captures that existing database and no PostgreSQL is started.
    """


@cdc.command("start")
@_SOURCES
@click.option("--timeout", type=float, default=180.0, show_default=True,
              help="Seconds to wait for the connector to stream.")
@click.pass_context
def start(ctx: click.Context, sources: str | None, timeout: float) -> None:
    """Start PostgreSQL and Connect with the connector (harmless twice).

    The first run fetches Connect's and Debezium's jars with Maven, creates the database
    cluster and the example shop's tables. Kafka is KAFKA_BOOTSTRAP_SERVERS, or else the
    local broker, started here if it is not running (`crosscheck broker start`).
    """
    stack = cdc_stack(ctx, sources)
    settings = stack.settings
    if settings.uses_local_broker:
        broker = local_broker(settings)
        if not broker.jars_dir.exists():
            click.echo(f"fetching Kafka {broker.version} jars from Maven Central into "
                       f"{broker.jars_dir} ...", err=True)
        up = broker.start(timeout=timeout)
        click.echo(f"broker: {'already running' if up.already_running else 'started'} "
                   f"(pid {up.pid}) at {up.bootstrap}")
    connect = stack.connect
    if not connect.have_jars():
        click.echo(f"fetching Kafka Connect {connect.versions[0]} and Debezium "
                   f"{connect.versions[1]} jars from Maven Central into {connect.jars_dir} ...",
                   err=True)
    result = stack.start(timeout=timeout)
    if result.postgres is not None and stack.postgres is not None:
        was, pid = result.postgres
        click.echo(f"postgres: {'already running' if was else 'started'} (pid {pid}) at "
                   f"{stack.postgres.address}, data in {stack.postgres.data_dir()}")
    click.echo(f"database: {stack.database.shown}")
    started = result.connect
    what = ("restarted with the new configuration" if started.reconfigured else
            "already running" if started.already_running else "started")
    click.echo(f"connect: {what} (pid {started.pid}), REST at {connect.url}, connector "
               f"{stack.plan.name} streaming from slot {stack.slot}")
    for table, topic in stack.plan.topics.items():
        click.echo(f"  {table} -> {topic}")
    click.echo(f"ready in {result.seconds:.1f}s")


@cdc.command("stop")
@_SOURCES
@click.pass_context
def stop(ctx: click.Context, sources: str | None) -> None:
    """Stop Connect (it commits its offsets), then PostgreSQL, and wait for them to exit."""
    stack = cdc_stack(ctx, sources)
    connect, postgres = stack.stop()
    click.echo(f"connect: {'stopped' if connect else 'not running'}")
    if stack.postgres is not None:
        click.echo(f"postgres: {'stopped' if postgres else 'not running'}")


@cdc.command("status")
@_SOURCES
@click.pass_context
def status(ctx: click.Context, sources: str | None) -> None:
    """Say whether PostgreSQL, Connect and the connector run (exit 1 if not all do)."""
    stack = cdc_stack(ctx, sources)
    st = stack.status()
    ok = True
    if st.postgres is not None:
        pg = st.postgres
        ok &= pg.running and pg.answering
        state = ("running" if pg.answering else "up, not answering") if pg.running else \
            "not running"
        pid = f" (pid {pg.pid})" if pg.pid else ""
        click.echo(f"postgres: {state}{pid} at {pg.address}, data in {pg.data_dir}")
    click.echo(f"database: {st.database.shown}")
    conn = st.connect
    if conn.running:
        state = conn.connector.state if conn.connector else "UNKNOWN"
        tasks = ", ".join(conn.connector.tasks) if conn.connector else ""
        ok &= conn.connector is not None and conn.connector.running
        click.echo(f"connect: running (pid {conn.pid}), REST at {conn.url}; connector "
                   f"{stack.plan.name} {state}{f' (tasks {tasks})' if tasks else ''}")
        if conn.connector is not None and conn.connector.trace:
            click.echo("  " + conn.connector.trace.splitlines()[0])
    else:
        ok = False
        click.echo(f"connect: not running ({conn.url})")
    if st.slot is not None:
        slot = st.slot
        ok &= slot.active
        what = ("streaming" if slot.active else "not read") if slot.exists else "absent"
        lsn = f", confirmed up to {slot.confirmed_lsn}" if slot.confirmed_lsn else ""
        click.echo(f"slot: {slot.name} {what}{lsn}")
    if not ok:
        sys.exit(1)


def register(cli: click.Group) -> None:
    """Add the commands of this module."""
    cli.add_command(cdc)
