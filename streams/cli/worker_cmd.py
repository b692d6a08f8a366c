"""`crosscheck worker`: the long-running stream worker."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import click

from streams import native
from streams.cli.context import settings_of
from streams.cli.rule_options import apply_rule_options, describe_rules, rule_options
from streams.config import parse_bind
from streams.errors import ConfigError


@click.command("worker")
@click.option("--web-port", type=int, default=None,
              help="Port of the worker's web server (CROSSCHECK_WORKER_PORT, 6066); every "
                   "worker on one host needs its own.")
@click.option("--web-bind", metavar="ADDRESS", default=None,
              help="IP address the web server listens on (CROSSCHECK_WORKER_BIND, 127.0.0.1: "
                   "this host only). 0.0.0.0 exposes the dashboard and /orders to the network, "
                   "without authentication.")
@click.option("--processing-guarantee", type=click.Choice(["exactly_once", "at_least_once"]),
              default=None, help="Overrides CROSSCHECK_PROCESSING_GUARANTEE.")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=2000, show_default=True,
              help="Most records judged per batch (state is written once per batch).")
@click.option("--consume", type=click.Choice(["batch", "stream"]), default="batch",
              envvar="CROSSCHECK_WORKER_CONSUME", show_default=True,
              help="How input records reach the rules: 'batch', in batches taken below "
                   "Faust's per-record stream (faster); 'stream', through Faust's stream (the "
                   "A/B baseline).")
@click.option("--commit-interval", type=click.FloatRange(0.01, 60), default=None,
              envvar="CROSSCHECK_COMMIT_INTERVAL", metavar="SECONDS",
              help="Seconds between commits of the consumed offsets [default: 0.1 under "
                   "exactly-once, 2.8 under at-least-once]. Under exactly-once outputs "
                   "become readable when their transaction commits, so this bounds the "
                   "decision latency.")
@click.option("--standby-replicas", type=click.IntRange(0, 8), default=1, show_default=True,
              envvar="CROSSCHECK_STANDBY_REPLICAS",
              help="Warm standby copies of each table partition kept by other workers of "
                   "the group (they take over a dead worker's partitions from a warm store); "
                   "no effect while one worker runs. 0 turns them off.")
@click.option("--group-instance-id", default=None, envvar="CROSSCHECK_GROUP_INSTANCE_ID",
              metavar="ID",
              help="Static group membership (Kafka's group.instance.id): a worker restarted "
                   "with the same id gets its partitions back at once, without waiting for "
                   "the group to drop the dead one; each worker of the group needs its own "
                   "id, and its partitions wait for the session timeout when it stops.")
@click.option("--loglevel", type=click.Choice(["crit", "error", "warn", "info", "debug"]),
              default="warn", show_default=True)
@click.option("--echo", is_flag=True,
              help="Print every mismatch, resolution, command and dead letter as it is emitted.")
@click.option("--alert-webhook", metavar="URL", default=None,
              help="Also POST every alert as JSON to this http(s) URL (best-effort: retried "
                   "with backoff from a bounded queue; the alerts topic stays the record).")
@rule_options
@click.pass_context
def worker(ctx: click.Context, /, web_port: int | None, web_bind: str | None,
           processing_guarantee: str | None,
           batch_size: int, consume: str, commit_interval: float | None, standby_replicas: int,
           group_instance_id: str | None, loglevel: str, echo: bool,
           alert_webhook: str | None, **rules: Any) -> None:
    """Run the stream worker until SIGTERM or Ctrl-C (many can run in one group).

    It joins orders, payments, inventory and shipping per order in Faust tables (RocksDB,
    with changelog topics), decides the fifteen rules in event time and writes mismatches,
    commands and dead letters. Missing topics are created first.
    """
    from streams.worker import heapprofile, memory

    memory.install()  # before any thread starts, so the arena limit covers them all
    profiler = heapprofile.install()  # before the imports below, so their heap is traced too
    from streams.engine import core as engine_core
    from streams.web import register_web
    from streams.worker import clean_stop, faust_guard
    from streams.worker.app import create_worker
    from streams.worker.faust_app import WorkerOptions
    from streams.worker.lifecycle import (
        check_port_free,
        create_changelogs,
        data_dir_for,
        discover_partitions,
        prepare_state_dir,
        run_faust,
    )
    faust_guard.ensure()  # an untested Faust is refused before the broker is touched
    if alert_webhook:  # checked before anything starts; the message never shows secrets
        from streams.worker.webhook import check_url
        try:
            check_url(alert_webhook)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--alert-webhook") from None
    s = apply_rule_options(settings_of(ctx), rules)
    if processing_guarantee:
        s = dataclasses.replace(s, processing_guarantee=processing_guarantee)
    port = web_port or s.worker_port
    try:
        bind = parse_bind(web_bind, "--web-bind") if web_bind else s.worker_bind
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--web-bind") from None
    check_port_free(port, bind)
    inputs, outputs = discover_partitions(s)
    data_dir = data_dir_for(s, port)
    if prepare_state_dir(data_dir, s.processing_guarantee == "exactly_once"):
        click.echo("previous run (an earlier state format) did not stop cleanly: local "
                   "state wiped, rebuilding it from the changelog topics", err=True)
    options = WorkerOptions(data_dir=data_dir, web_port=port, web_bind=bind,
                            input_partitions=inputs,
                            output_partitions=outputs, batch_max=batch_size, consume=consume,
                            commit_interval=commit_interval,
                            standby_replicas=standby_replicas,
                            group_instance_id=group_instance_id or None,
                            loglevel=loglevel,
                            echo=echo, alert_webhook=alert_webhook or None)
    w = create_worker(s, options)
    register_web(w.app, w)  # /, /health, /metrics, /orders/{id}, ... (streams/web)
    create_changelogs(s, w.app)
    if profiler is not None:
        profiler.databases = heapprofile.worker_databases(w)
    click.echo(f"crosscheck worker {w.runtime.worker_id}: group {s.app_id} on {s.bootstrap}, "
               f"{inputs} partitions, {s.processing_guarantee}, state in {data_dir}, "
               f"{engine_core.NAME} engine", err=True)
    if fallback := native.notice():
        click.echo(fallback, err=True)
    click.echo(f"rules: {describe_rules(s)}", err=True)
    def unsettled() -> str | None:
        if s.processing_guarantee != "exactly_once":
            return None  # the local state is kept whatever the marker says
        return clean_stop.unsettled(s, w.app.conf.id, w.judged)

    sys.exit(run_faust(w.app, loglevel, data_dir, unsettled))


def register(cli: click.Group) -> None:
    """Add the commands of this module."""
    cli.add_command(worker)
