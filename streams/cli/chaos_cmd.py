"""`crosscheck chaos`: a fault matrix over a simulated scenario with known expected output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from streams.cli.context import local_broker, settings_of
from streams.cli.rule_options import apply_rule_options, rule_options
from streams.cli.signals import exit_on_sigterm
from streams.clients import check_reachable
from streams.durations import parse_duration_ms
from streams.errors import ConfigError


@click.command("chaos")
@click.option("--orders", type=click.IntRange(10), default=20_000, show_default=True,
              help="Simulated orders (about 10 events each).")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Seed of the scenario and of the fault schedule.")
@click.option("--rate", type=click.FloatRange(min=1), default=500.0, show_default=True,
              metavar="EVENTS_PER_S", help="Events published per second (the input is paced "
                                           "over the run, so faults hit the workers mid-stream).")
@click.option("--kills", type=click.IntRange(0), default=10, show_default=True,
              help="SIGKILLs of a worker (the supervisor restarts it).")
@click.option("--rebalances", type=click.IntRange(0), default=4, show_default=True,
              help="Rebalances: a second worker joins, later leaves (each counts one; "
                   "rounded up to pairs).")
@click.option("--broker-restarts", type=click.IntRange(0), default=2, show_default=True,
              help="Broker stops and restarts, data kept (local broker only).")
@click.option("--bad-bursts", type=click.IntRange(0), default=4, show_default=True,
              help="Bursts of bad input records (not Avro, truncated, wrong schema id, "
                   "failing validation).")
@click.option("--burst-size", type=click.IntRange(1), default=40, show_default=True,
              help="Bad records per burst.")
@click.option("--broker-down", default="3s", show_default=True, metavar="DURATION",
              help="How long the broker stays down in a restart.")
@click.option("--source-outages", type=click.IntRange(0), default=1, show_default=True,
              help="Source outages: one input (inventory, payments or shipping mostly, "
                   "orders sometimes) is not published for --outage-length while the others "
                   "go on, then its backlog is sent at once.")
@click.option("--outage-length", default="20s", show_default=True, metavar="DURATION",
              help="Publishing time a source outage lasts; must exceed the workers' "
                   "--idle-timeout.")
@click.option("--stuck-after", default="30s", show_default=True, metavar="DURATION",
              help="A partition with input waiting whose committed offset stands still this "
                   "long while every worker says it is ready counts as stuck.")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=2000,
              show_default=True, help="The workers' --batch-size.")
@click.option("--finish-timeout", default="30m", show_default=True, metavar="DURATION",
              help="How long to wait, after the last event is published, for the workers to "
                   "judge everything.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("chaos-results.json"), show_default=True,
              help="Where the results are written (JSON).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Logs, exported outputs and expected.jsonl of the run "
                   "[default: $CROSSCHECK_HOME/chaos/<tag>].")
@click.option("--keep", is_flag=True, help="Keep the run's topics and worker state.")
@rule_options
@click.pass_context
def chaos(ctx: click.Context, /, orders: int, seed: int, rate: float, kills: int,
          rebalances: int, broker_restarts: int, bad_bursts: int, burst_size: int,
          broker_down: str, source_outages: int, outage_length: str, stuck_after: str,
          batch_size: int, finish_timeout: str, out_path: Path, workdir: Path | None,
          keep: bool, **rules: Any) -> None:
    """Judge a simulated scenario with known output under injected faults (not a test).

    Simulated traffic (every simulator fault) is published at --rate to topics of the
    run's own while exactly-once workers consume it, and faults from a schedule drawn from
    --seed hit them: SIGKILL of a worker, a second worker joining and leaving, a stop and
    restart of the local broker (skipped with KAFKA_BOOTSTRAP_SERVERS), bursts of bad
    records, and source outages (one input held back longer than the idle timeout while the
    others flow, then its backlog sent at once). A supervisor restarts every worker that
    exits (SIGKILL, exit 75 of the stall guard, a crash), and the run records whether a
    worker was ever stuck. At the end the mismatches, commands and dead letters are
    exported (read_committed) and compared with the batch evaluator's expected output by
    stable id. Prints one table, writes --out; exits 0 only if nothing is lost, duplicated,
    extra or changed and every bad record is in the DLQ once.
    """
    from streams.chaos import ChaosConfig, run_chaos, table
    from streams.chaos.plan import check_outages

    settings = apply_rule_options(settings_of(ctx), rules)
    try:
        config = ChaosConfig(
            orders=orders, seed=seed, rate=rate, kills=kills, rebalances=rebalances,
            broker_restarts=broker_restarts, bad_bursts=bad_bursts, burst_size=burst_size,
            broker_down=parse_duration_ms(broker_down, "--broker-down") / 1000,
            source_outages=source_outages,
            outage_length=parse_duration_ms(outage_length, "--outage-length") / 1000,
            stuck_after=parse_duration_ms(stuck_after, "--stuck-after") / 1000,
            batch_size=batch_size,
            finish_timeout=parse_duration_ms(finish_timeout, "--finish-timeout") / 1000,
            keep=keep, workdir=workdir)
        check_outages(config, settings.rules)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    check_reachable(settings)
    broker = local_broker(settings) if settings.uses_local_broker else None
    if broker is None and broker_restarts:
        click.echo("chaos: KAFKA_BOOTSTRAP_SERVERS is set: broker restarts are skipped "
                   "(only the local broker can be restarted)", err=True)
    exit_on_sigterm()
    results = run_chaos(settings, config, lambda m: click.echo(f"chaos: {m}", err=True), broker)
    out_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    click.echo(table(results))
    click.echo(f"results written to {out_path}", err=True)
    sys.exit(0 if results["verdict"]["ok"] else 1)


def register(cli: click.Group) -> None:
    """Add the commands of this module."""
    cli.add_command(chaos)
