"""Entry point of the `crosscheck` console script: the command group and error reporting."""

from __future__ import annotations

import sys

import click

from streams.errors import CrosscheckError


class CrosscheckGroup(click.Group):
    """Reports CrosscheckError as one line on stderr (exit 2) instead of a stack trace."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except CrosscheckError as exc:
            click.echo(f"crosscheck: error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=CrosscheckGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crosscheck")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """crosscheck: real-time consistency checks of order, payment, inventory and shipping events.

    Every command reads its settings from the environment (see the README's configuration
    table); with KAFKA_BOOTSTRAP_SERVERS unset they use the local broker.
    """
    ctx.ensure_object(dict)


def _register() -> None:
    from streams.cli import (
        bench_cmd,
        broker_cmd,
        cdc_cmd,
        chaos_cmd,
        ingest_cmd,
        io_cmd,
        replay_cmd,
        rules_cmd,
        sim_cmd,
        status_cmd,
        topics_cmd,
        watch_cmd,
        worker_cmd,
    )

    for module in (broker_cmd, topics_cmd, io_cmd, worker_cmd, status_cmd, sim_cmd, watch_cmd,
                   replay_cmd, bench_cmd, chaos_cmd, rules_cmd, ingest_cmd, cdc_cmd):
        module.register(cli)


def main() -> None:
    """Console-script entry point."""
    _register()
    cli()
