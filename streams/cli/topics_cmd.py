"""`crosscheck topics create|check`."""

from __future__ import annotations

import sys

import click

from streams.cli.context import settings_of, topology_of
from streams.clients import admin
from topology.admin import check_topics, create_topics
from topology.topics import Topology


@click.group("topics")
def topics() -> None:
    """Create or check the topics of the contract."""


@topics.command("create")
@click.option("--partitions", type=click.IntRange(1, 1024), default=None,
              help="Partition count of new topics (default: CROSSCHECK_PARTITIONS, 4).")
@click.pass_context
def create(ctx: click.Context, partitions: int | None) -> None:
    """Create every topic that does not exist yet (idempotent), then check them."""
    s = settings_of(ctx)
    topology = Topology(partitions or s.partitions, s.topic_prefix, s.topic_overrides)
    client = admin(s)
    created = create_topics(client, topology)
    for name in created:
        click.echo(f"created {name}")
    report = check_topics(client, topology)
    click.echo(f"{len(created)} created, {len(report.partitions) - len(created)} already there")
    for problem in report.problems:
        click.echo(f"problem: {problem}", err=True)
    if not report.ok:
        sys.exit(1)


@topics.command("check")
@click.pass_context
def check(ctx: click.Context) -> None:
    """Verify that the input topics exist and are co-partitioned (exit 1 if not)."""
    s = settings_of(ctx)
    report = check_topics(admin(s), topology_of(ctx))
    for name, count in report.partitions.items():
        click.echo(f"{name:40} {'missing' if count is None else count}")
    for problem in report.problems:
        click.echo(f"problem: {problem}", err=True)
    if not report.ok:
        sys.exit(1)
    click.echo("ok: input topics are co-partitioned")


def register(cli: click.Group) -> None:
    """Add the commands of this module."""
    cli.add_command(topics)
