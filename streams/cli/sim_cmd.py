"""`crosscheck simulate` (traffic with injected faults) and `crosscheck audit FILE`."""

from __future__ import annotations

import contextlib
import os
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import IO, Any, TypeVar

import click

from schemas.catalog import schema
from schemas.errors import ValidationError
from schemas.validation import format_time, parse_event_time
from streams.cli.context import settings_of, topology_of
from streams.cli.rule_options import apply_rule_options, rule_options
from streams.config import Settings
from streams.durations import parse_duration_ms
from streams.errors import ConfigError
from streams.export import json_line
from streams.simulate.faults import FAULTS
from topology.topics import BY_ID, TopicId

T = TypeVar("T")

_FAULT_HELP = "\n".join(
    ["\b", "Faults (--faults NAME=RATE,...; 'all=RATE' sets every one), each tripping its rule:"]
    + [line for name, fault in FAULTS.items() for line in (
        f"  {name:18} {fault.type.value}",
        *textwrap.wrap(fault.injects, 76, initial_indent=" " * 6, subsequent_indent=" " * 6))]
)


def _time_option(value: str, option: str) -> int:
    text = value.strip()
    try:
        return parse_event_time(int(text) if text.isdigit() else text, option)
    except ValidationError as exc:
        raise click.BadParameter(str(exc).removeprefix(f"{option}: "),
                                 param_hint=option) from None


def _wants_progress(enabled: bool | None, large: bool) -> bool:
    """Progress output when forced, or by default for large jobs on a terminal."""
    return enabled if enabled is not None else large and sys.stderr.isatty()


def _progress(items: Iterable[T], total: int, enabled: bool, unit: str,
              step: int = 1000) -> Iterator[T]:
    if not enabled:
        yield from items
        return
    from tqdm import tqdm

    with tqdm(total=total, unit=unit, file=sys.stderr, mininterval=0.5) as bar:
        done = 0
        for i, item in enumerate(items, start=1):
            yield item
            if i % step == 0:
                bar.update(i - done)
                done = i
        bar.update(total - done)


def _paced(items: Iterable[T], rate: float) -> Iterator[T]:
    """The items, no faster than ``rate`` per second (0: as fast as possible)."""
    if rate <= 0:
        yield from items
        return
    started = time.monotonic()
    for i, item in enumerate(items):
        delay = started + i / rate - time.monotonic()
        if delay > 0.001:
            time.sleep(delay)
        yield item


def _expected_path(out: str | None) -> str:
    if not out or out == "-":
        return "simulate-expected.jsonl"
    for suffix in (".jsonl", ".json"):
        if out.endswith(suffix):
            return out[: -len(suffix)] + ".expected.jsonl"
    return out + ".expected.jsonl"


def _open(path: str) -> contextlib.AbstractContextManager[IO[str]]:
    """The file to write (stdout for '-', left open)."""
    if path == "-":
        return contextlib.nullcontext(sys.stdout)
    return open(path, "w", encoding="utf-8", newline="\n")


@click.command("simulate", epilog=_FAULT_HELP)
@click.option("--orders", type=click.IntRange(1), default=1000, show_default=True,
              help="How many orders.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Random seed: the same seed and options give identical output.")
@click.option("--start", default=None, metavar="TIME",
              help="Event time of the traffic's start, ISO-8601 or epoch ms "
                   "[default: 2026-11-21T00:00:00.000Z].")
@click.option("--span", default="36h", show_default=True, metavar="DURATION",
              help="Orders arrive over this much event time (their parcels, deliveries and "
                   "returns follow for days).")
@click.option("--faults", "faults_spec", default="", metavar="NAME=RATE,...",
              help="Probability per order of each fault, e.g. never_paid=0.01,"
                   "double_charge=0.2% (names below; an order gets at most one).")
@click.option("--redeliveries", type=click.FloatRange(0, 1), default=0.01, show_default=True,
              help="Share of the events delivered twice (same event_id).")
@click.option("--max-skew", default="1500ms", show_default=True, metavar="DURATION",
              help="Largest clock skew of a service (each service has a fixed one).")
@click.option("--out", "out_path", default=None, type=click.Path(allow_dash=True),
              help="Write the events to this JSON Lines file ('-': stdout) in the `produce` "
                   "form, in publish order, instead of publishing them.")
@click.option("--to-db", "to_db", is_flag=True,
              help="Write the traffic as inserts and status updates of the example shop's "
                   "tables, in event-time order, to CROSSCHECK_CDC_DATABASE or the local "
                   "`crosscheck cdc` database, instead of publishing it.")
@click.option("--expected", "expected_path", default=None, type=click.Path(),
              help="Where the expected mismatches and commands go [default: OUT with "
                   ".expected.jsonl, or simulate-expected.jsonl when publishing].")
@click.option("--partitions", type=click.IntRange(1, 1024), default=None,
              help="Partition count the expected output assumes (default: "
                   "CROSSCHECK_PARTITIONS, 4): it sets each partition's final watermark.")
@click.option("--rate", type=click.FloatRange(min=0), default=0.0, show_default=True,
              metavar="EVENTS_PER_S", help="Pace the publishing (0: as fast as possible).")
@click.option("--progress/--no-progress", default=None,
              help="Progress output (default: for large jobs, or paced publishing, on a "
                   "terminal).")
@rule_options
@click.pass_context
def simulate(ctx: click.Context, /, orders: int, seed: int, start: str | None, span: str,
             faults_spec: str, redeliveries: float, max_skew: str, out_path: str | None,
             to_db: bool, expected_path: str | None, partitions: int | None, rate: float,
             progress: bool | None, **rules: Any) -> None:
    """Generate realistic order traffic, with injected faults, and its expected output.

    Orders of one or more skus are PLACED; the inventory reserves each sku (TCC Try) and
    confirms it once paid; payments may be declined and retried, and the order service
    marks the order PAID seconds after a payment succeeds; some customers cancel
    (stock released, payment refunded), some return goods after delivery; parcels are
    shipped whole, split or partially, labels are voided and re-created. Each service's
    clock has a small fixed skew, topics interleave when published, some events are
    redelivered, and nothing is late. Healthy traffic trips no rule.

    The events are published to the input topics (settings from the environment),
    written to --out, or written as rows of the example shop's database (--to-db). The
    expected mismatches and commands, what a worker with the same thresholds (the duration
    options below) and partition count emits once its inputs go idle, are written to
    --expected without the wall-clock fields detected_at and issued_at.
    """
    from streams.audit import output_line, shadow_path, split_shadow, summary
    from streams.simulate import DEFAULT_START, SimConfig, expected_outputs, parse_faults
    from streams.simulate.generator import fault_orders, topic_counts
    from streams.simulate.generator import simulate as run

    s = apply_rule_options(settings_of(ctx), rules)
    try:
        config = SimConfig(
            orders=orders, seed=seed,
            start=DEFAULT_START if start is None else _time_option(start, "--start"),
            span=parse_duration_ms(span, "--span"), faults=parse_faults(faults_spec),
            redelivery_rate=redeliveries, max_skew=parse_duration_ms(max_skew, "--max-skew"),
            rules=s.rules)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if config.span < 1:
        raise click.BadParameter("must be positive", param_hint="--span")
    if rate and out_path is not None:
        raise click.UsageError("--rate paces publishing; it does not apply with --out")
    if to_db and out_path is not None:
        raise click.UsageError("--to-db and --out are two destinations: give one")
    show = _wants_progress(progress, orders >= 2_000 or (rate > 0 and out_path is None))
    if show:
        click.echo(f"generating {orders} orders ...", err=True)
    traffic = run(config)
    events = traffic.events
    parts = partitions or s.partitions
    if show:
        click.echo(f"computing the expected output of {len(events)} events ...", err=True)
    expected = expected_outputs(events, s.rules, parts)
    expected_file = expected_path or _expected_path(out_path)
    kept, shadow = split_shadow(expected)
    files = [(expected_file, kept)]
    if shadow or s.rules.shadowed:  # (the worker sends these to the shadow topic)
        files.append((shadow_path(expected_file, "simulate-expected.shadow.jsonl"), list(shadow)))
    for path, outputs in files:
        with _open(path) as out:
            for output in outputs:
                out.write(output_line(output, wall_clock=False))
                out.write("\n")

    times = [r["event_time"] for _, r in events]
    by_topic = ", ".join(f"{k}={v}" for k, v in sorted(topic_counts(events).items()))
    info = click.echo
    info(f"simulated {orders} orders (seed {seed}): {len(events)} events ({by_topic}), "
         f"{traffic.redeliveries} redelivered, event times {format_time(min(times))} .. "
         f"{format_time(max(times))}", err=True)
    injected = fault_orders(traffic)
    if injected:
        info("faults: " + ", ".join(f"{k}={len(v)}" for k, v in injected.items()), err=True)
    info(f"expected ({parts} partitions): {summary(expected)} -> "
         f"{' and '.join(path for path, _ in files)}", err=True)

    if out_path is not None:
        with _open(out_path) as out:
            for topic, record in _progress(events, len(events), show, "ev"):
                out.write(json_line(topic, schema(BY_ID[topic].value_schema), record))
                out.write("\n")
        if out_path != "-":
            info(f"wrote {len(events)} events to {out_path}", err=True)
        return
    if to_db:
        from streams.cdc.config import load_cdc_settings
        from streams.simulate.shopdb import db_order, write_events

        database = load_cdc_settings().database
        rows = db_order(events)
        written = write_events(database, _progress(_paced(rows, rate), len(rows), show, "row",
                                                   step=1 if rate else 1000))
        info(f"wrote {written.total} inserts and updates to {database.shown}: "
             f"{written.text()}", err=True)
        return
    _publish(s, events, rate, show)


def _publish(settings: Settings, events: list[tuple[TopicId, dict[str, Any]]], rate: float,
             progress: bool) -> None:
    from streams.clients import check_reachable
    from streams.produce import EventPublisher, ParsedLine

    check_reachable(settings)
    publisher = EventPublisher(settings)
    started = time.monotonic()
    counts: Counter[str] = Counter()
    interrupted = False
    try:
        for topic, record in _progress(_paced(events, rate), len(events), progress, "ev",
                                       step=1 if rate else 1000):
            publisher.publish(ParsedLine(topic, record["order_id"], record))
            counts[topic.value] += 1
    except KeyboardInterrupt:
        interrupted = True
    publisher.flush()
    elapsed = max(time.monotonic() - started, 1e-9)
    for err in publisher.errors:
        click.echo(f"delivery failed: {err}", err=True)
    done = sum(counts.values())
    topics = ", ".join(f"{publisher.topology.name(TopicId(t))}={n}"
                       for t, n in sorted(counts.items()))
    click.echo(f"published {done} events in {elapsed:.1f}s ({done / elapsed:,.0f}/s)"
               f"{': ' + topics if topics else ''}"
               f"{f'; interrupted, {len(events) - done} not published' if interrupted else ''}",
               err=True)
    if interrupted:
        sys.exit(130)
    if publisher.errors:
        sys.exit(1)


@click.command("audit")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--partitions", type=click.IntRange(1, 1024), default=None,
              help="Partition count the final watermarks are computed per "
                   "(default: CROSSCHECK_PARTITIONS, 4).")
@click.option("--until", default=None, metavar="TIME",
              help="Final watermark of every partition, ISO-8601 or epoch ms (default: per "
                   "partition, its max event time - allowed_lateness).")
@click.option("--out", "out_path", default="-", type=click.Path(allow_dash=True),
              help="Output JSON Lines file [default: stdout].")
@click.option("--shadow-out", default=None, type=click.Path(allow_dash=True),
              help="Where the commands decided in shadow mode go, written when a rule's "
                   "commands are in shadow mode [default: OUT with .shadow.jsonl; "
                   "audit.shadow.jsonl when OUT is stdout].")
@click.option("--no-wall-clock", is_flag=True,
              help="Omit detected_at and issued_at (wall clock), for diffable output.")
@rule_options
@click.pass_context
def audit(ctx: click.Context, /, file: str, partitions: int | None, until: str | None,
          out_path: str, shadow_out: str | None, no_wall_clock: bool, **rules: Any) -> None:
    """Run the rules in batch over a JSON Lines FILE of input events ('-': stdin).

    The nightly reconciliation: FILE is in the `produce` form ({"topic": ..., "event":
    {...}} per line). Every decision whose time is at most the final watermark is made, as
    a worker would, and the mismatches (OPEN and RESOLVED) and commands are written as JSON
    Lines with the contract's field names and ISO-8601 times; commands are the records with
    a target_id. Commands decided in shadow mode (rules file, CROSSCHECK_COMMANDS) go to
    --shadow-out instead, never to OUT. Bad lines are reported as FILE:LINE: reason and
    skipped; the exit code is then 1. A one-line summary goes to stderr.
    """
    from streams.audit import read_event_file, shadow_path, split_shadow, summary, write_outputs
    from streams.batch import evaluate

    s = apply_rule_options(settings_of(ctx), rules)
    if file != "-" and not os.path.isfile(file):
        raise click.BadParameter(f"{file}: no such file", param_hint="FILE")
    final = None if until is None else _time_option(until, "--until")

    def bad(exc: Exception) -> None:
        click.echo(str(exc), err=True)

    read = read_event_file(file, topology_of(ctx), on_bad=bad)
    outputs = evaluate(read.events, s.rules, partitions=partitions or s.partitions, until=final)
    kept, shadow = split_shadow(outputs)
    files = [(out_path, kept)]
    if shadow or s.rules.shadowed:
        files.append((shadow_out or shadow_path(out_path, "audit.shadow.jsonl"), list(shadow)))
    for path, chosen in files:
        with _open(path) as out:
            write_outputs(chosen, out, wall_clock=not no_wall_clock)
            out.flush()
    bad_note = f" ({len(read.bad)} bad lines)" if read.bad else ""
    shadow_note = f"; shadow commands -> {files[1][0]}" if len(files) > 1 else ""
    click.echo(f"audit: {len(read.events)} events{bad_note}: {summary(outputs)}{shadow_note}",
               err=True)
    if read.bad:
        sys.exit(1)


def register(cli: click.Group) -> None:
    """Add the commands of this module."""
    cli.add_command(simulate)
    cli.add_command(audit)
