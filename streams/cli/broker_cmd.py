"""`crosscheck broker start|stop|status`: the local single-node Kafka for development and tests."""

from __future__ import annotations

import sys

import click

from streams.cli.context import local_broker, settings_of


@click.group("broker")
def broker() -> None:
    """Run a local Apache Kafka (KRaft, one node) on 127.0.0.1."""


@broker.command("start")
@click.option("--timeout", type=float, default=180.0, show_default=True,
              help="Seconds to wait for the broker to answer.")
@click.pass_context
def start(ctx: click.Context, timeout: float) -> None:
    """Start the broker (first run: fetch its jars with Maven, format storage). Harmless twice."""
    s = settings_of(ctx)
    if not s.uses_local_broker:
        click.echo(f"KAFKA_BOOTSTRAP_SERVERS is set ({s.bootstrap}): "
                   "the local broker is not needed")
        return
    b = local_broker(s)
    if not b.jars_dir.exists():
        click.echo(f"fetching Kafka {b.version} jars from Maven Central into {b.jars_dir} ...",
                   err=True)
    result = b.start(timeout=timeout)
    if result.already_running:
        click.echo(f"already running (pid {result.pid}) at {result.bootstrap}")
    else:
        click.echo(f"started (pid {result.pid}) in {result.seconds:.1f}s at {result.bootstrap}")
    click.echo(result.bootstrap)


@broker.command("stop")
@click.pass_context
def stop(ctx: click.Context) -> None:
    """Stop the broker cleanly and wait for it to exit."""
    s = settings_of(ctx)
    if not s.uses_local_broker:
        click.echo(f"KAFKA_BOOTSTRAP_SERVERS is set ({s.bootstrap}): no local broker to stop")
        return
    if local_broker(s).stop():
        click.echo("stopped")
    else:
        click.echo("not running")


@broker.command("status")
@click.pass_context
def status(ctx: click.Context) -> None:
    """Say whether the broker is up (exit 1 if not)."""
    s = settings_of(ctx)
    if not s.uses_local_broker:
        click.echo(f"using KAFKA_BOOTSTRAP_SERVERS={s.bootstrap}")
        return
    st = local_broker(s).status()
    if st.running and st.answering:
        click.echo(f"running (pid {st.pid}) at {st.bootstrap}")
        return
    if st.running:
        click.echo(f"process {st.pid} is up but {st.bootstrap} does not answer yet")
    else:
        click.echo(f"not running ({st.bootstrap})")
    sys.exit(1)


def register(cli: click.Group) -> None:
    """Add the commands of this module."""
    cli.add_command(broker)
