"""`crosscheck bench`: throughput, decision latency and memory against the raw-consumer ceiling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from streams.cli.context import settings_of
from streams.cli.rule_options import apply_rule_options, rule_options
from streams.cli.signals import exit_on_sigterm
from streams.clients import check_reachable
from streams.durations import parse_duration_ms
from streams.errors import ConfigError


@click.command("bench")
@click.option("--events", type=click.IntRange(100), default=1_000_000, show_default=True,
              help="How many simulated events to pre-load.")
@click.option("--seed", type=int, default=1, show_default=True, help="Simulator seed.")
@click.option("--latency-events", type=click.IntRange(0), default=100_000, show_default=True,
              help="Events published at a steady rate for the decision-latency phase "
                   "(0: skip it).")
@click.option("--latency-rate", type=click.FloatRange(0), default=5_000.0, show_default=True,
              metavar="EVENTS_PER_S", help="Rate of the latency phase.")
@click.option("--open-orders", type=click.IntRange(0), default=1_000_000, show_default=True,
              help="Orders, all still undecided, that one exactly-once worker is loaded with "
                   "for its RSS and RocksDB size (0: skip the phase).")
@click.option("--recovery-session-timeout", "session_timeouts", multiple=True,
              type=click.FloatRange(1, 300), metavar="SECONDS",
              help="After the open-orders phase, its worker is SIGKILLed and restarted with "
                   "its state kept and deleted (a static group member), with its state kept "
                   "(a dynamic member), and taken over by a second worker, under each of "
                   "these group session timeouts (repeat the option) [default: 6 (the "
                   "worker's) and 15].")
@click.option("--no-recovery", is_flag=True, help="Skip the recovery phase.")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=2000,
              show_default=True, help="The workers' --batch-size.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("bench-results.json"), show_default=True,
              help="Where the results are written (JSON).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Logs and state of the run [default: $CROSSCHECK_HOME/bench/<tag>].")
@click.option("--keep", is_flag=True,
              help="Keep the run's topics, worker state and replay output.")
@rule_options
@click.pass_context
def bench(ctx: click.Context, /, events: int, seed: int, latency_events: int,
          latency_rate: float, open_orders: int, session_timeouts: tuple[float, ...],
          no_recovery: bool, batch_size: int, out_path: Path, workdir: Path | None,
          keep: bool, **rules: Any) -> None:
    """Benchmark the worker and the replay against the raw-consumer ceiling (not a test).

    Pre-loads --events simulated events on topics of the run's own, then measures in the
    same run on the same broker: (a) the ceiling, a bare confluent-kafka consumer reading
    and Avro-decoding the records; (b) `crosscheck worker` from start to zero lag, with
    exactly-once and with at-least-once; (c) the decision latency, from the watermark
    passing a decision time to the mismatch being readable (p50/p99); (d) each worker's
    peak RSS and RocksDB size, and its changelogs' bytes on the broker's disk (local
    broker only); (e) `crosscheck replay` throughput over the whole range; (f) a worker's
    peak RSS, RocksDB size and changelog bytes holding --open-orders undecided orders;
    (g) recovery: seconds from a SIGKILL of that worker to ready with its local state kept,
    with it deleted (and the bulk restore's records/s), as a static and as a dynamic group
    member, and to a second worker of the group deciding the killed one's partitions.
    Prints a table and one JSON line, and writes the results to --out.
    """
    from streams.bench import BenchConfig, run_bench, table

    settings = apply_rule_options(settings_of(ctx), rules)
    check_reachable(settings)
    recovery = {"recovery_session_timeouts": ()} if no_recovery else (
        {"recovery_session_timeouts": session_timeouts} if session_timeouts else {})
    config = BenchConfig(events=events, seed=seed, latency_events=latency_events,
                         latency_rate=latency_rate, open_orders=open_orders,
                         batch_size=batch_size, keep=keep, workdir=workdir, **recovery)

    def log(message: str) -> None:
        """A progress line on stderr."""
        click.echo(f"bench: {message}", err=True)

    exit_on_sigterm()
    results = run_bench(settings, config, log)
    out_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    click.echo(table(results))
    click.echo(json.dumps(results, separators=(",", ":")))
    log(f"results written to {out_path}")


@click.command("soak")
@click.option("--duration", default="10m", show_default=True, metavar="DURATION",
              help="Wall-clock time of publishing.")
@click.option("--rate", type=click.FloatRange(min=1), default=1000.0, show_default=True,
              metavar="EVENTS_PER_S", help="Events published per second.")
@click.option("--span", default="30d", show_default=True, metavar="DURATION",
              help="Event time the orders arrive over: longer than the state retention "
                   "(7d), so that state is dropped several times over during the run.")
@click.option("--sample-every", default="10s", show_default=True, metavar="DURATION",
              help="Time between samples.")
@click.option("--seed", type=int, default=1, show_default=True, help="Simulator seed.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("soak-results.json"), show_default=True,
              help="Where the samples and verdict are written (JSON).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Logs of the run [default: $CROSSCHECK_HOME/soak/<tag>].")
@click.option("--keep", is_flag=True, help="Keep the run's topics and worker state.")
@click.option("--heap-profile", "heap_every", default=None, metavar="DURATION",
              help="Heap snapshots of the worker this often (tracemalloc, malloc, RocksDB); "
                   "prints the Python heap vs RSS over time and the allocation sites that "
                   "grew from the middle of the run to its end. Costs worker CPU.")
@click.option("--heap-frames", type=click.IntRange(0, 25), default=2, show_default=True,
              help="tracemalloc frames kept per allocation (0: no tracemalloc, only RSS, "
                   "malloc and RocksDB figures; tracing slows the worker several times).")
@rule_options
@click.pass_context
def soak(ctx: click.Context, /, duration: str, rate: float, span: str, sample_every: str,
         seed: int, out_path: Path, workdir: Path | None, keep: bool, heap_every: str | None,
         heap_frames: int, **rules: Any) -> None:
    """Show the worker's RocksDB size staying flat on a long live run (not a test).

    Publishes simulated traffic whose event time runs far faster than the wall clock
    (--span of orders in --duration) at --rate to topics of the run's own, while one
    exactly-once worker consumes it. Every --sample-every it notes the worker's RocksDB
    directory size, RSS, committed records, lowest watermark and the orders live at
    that watermark; then prints the samples and the ratio of the largest size in the last
    third of the run to the middle third (past one retention period): near 1 means flat.
    """
    from streams.bench.soak import SoakConfig, run_soak, table

    settings = apply_rule_options(settings_of(ctx), rules)
    try:
        config = SoakConfig(
            seconds=parse_duration_ms(duration, "--duration") / 1000, rate=rate,
            span=parse_duration_ms(span, "--span"),
            sample_every=parse_duration_ms(sample_every, "--sample-every") / 1000,
            seed=seed, keep=keep, workdir=workdir,
            heap_every=(parse_duration_ms(heap_every, "--heap-profile") / 1000
                        if heap_every else None),
            heap_frames=heap_frames)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    check_reachable(settings)
    exit_on_sigterm()
    results = run_soak(settings, config, lambda m: click.echo(f"soak: {m}", err=True))
    out_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    click.echo(table(results))
    click.echo(f"results written to {out_path}", err=True)


def register(cli: click.Group) -> None:
    """Add the commands of this module."""
    cli.add_command(bench)
    cli.add_command(soak)
