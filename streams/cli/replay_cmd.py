"""`crosscheck replay --from T --to T`: backfill a past time range into separate outputs."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import click

from schemas.errors import ValidationError
from schemas.validation import format_time, parse_event_time
from streams import native
from streams.cli.context import settings_of
from streams.cli.rule_options import apply_rule_options, describe_rules, rule_options
from streams.durations import format_duration_ms, parse_duration_ms
from streams.engine import core as engine_core
from streams.gctune import tune_gc
from streams.replay import (
    ProgressReport,
    Replay,
    ReplayOptions,
    ReplayResult,
    ReplayWindow,
    default_name,
    default_warmup,
)

#: exit code of a replay that stopped before the end (Ctrl-C, SIGTERM): run it again to resume
STOPPED = 3


def _time(value: str, option: str) -> int:
    text = value.strip()
    try:
        return parse_event_time(int(text) if text.isdigit() else text, option)
    except ValidationError as exc:
        raise click.BadParameter(str(exc).removeprefix(f"{option}: "), param_hint=option) from None


class _Printer:
    """Progress lines on stderr: records read per partition, watermark, outputs so far."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, report: ProgressReport) -> None:
        parts, counts = report.partitions, report.counts
        read, total = sum(p.read for p in parts), sum(p.total for p in parts)
        rate = report.records_this_run / max(report.seconds, 1e-3)
        marks = [p.watermark for p in parts if p.watermark is not None]
        wm = format_time(min(marks)) if marks else "-"
        per = " ".join(f"p{p.partition}={'done' if p.done else _pct(p.read, p.total)}"
                       for p in parts)
        click.echo(f"replay {self.name}: {_pct(read, total)} {read:,}/{total:,} records "
                   f"({rate:,.0f}/s) | {per} | watermark {wm} | {counts.mismatches} opened, "
                   f"{counts.resolved} resolved, {counts.commands} commands", err=True)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "100%"


@click.command("replay")
@click.option("--from", "start", required=True, metavar="TIME",
              help="Start of the range (ISO-8601 with a zone, or epoch ms): decisions with "
                   "decision time >= TIME are written.")
@click.option("--to", "end", required=True, metavar="TIME",
              help="End of the range (exclusive); also the final watermark.")
@click.option("--warmup", default=None, metavar="DURATION",
              help="How much input before --from is read to rebuild the state "
                   "[default: longest rule horizon + allowed lateness].")
@click.option("--name", default=None,
              help="Name of the replay: its consumer group (<app id>-replay-NAME), its state "
                   "under $CROSSCHECK_HOME/replay/NAME [default: the range].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write DIR/mismatches.jsonl and DIR/commands.jsonl instead of the "
                   "crosscheck.backfill.* topics.")
@click.option("--emit-commands", is_flag=True,
              help="Also send the commands to the live command topic (their ids are those of "
                   "the live worker, so a command it already issued is not executed again).")
@click.option("--resume", is_flag=True,
              help="Require a checkpoint of this name to continue from (a replay with the "
                   "same name and range resumes anyway).")
@click.option("--restart", is_flag=True, help="Forget the checkpoint of this name; start over.")
@click.option("--checkpoint-every", type=click.FloatRange(0.1), default=10.0, show_default=True,
              metavar="SECONDS", help="Checkpoint (state, positions, outputs) this often.")
@click.option("--progress-every", type=click.FloatRange(0.1), default=5.0, show_default=True,
              metavar="SECONDS", help="Print a progress line this often.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON line.")
@click.option("--stop-after", type=click.IntRange(1), default=None, hidden=True,
              help="Stop as on Ctrl-C after reading N records (for testing resume).")
@rule_options
@click.pass_context
def replay(ctx: click.Context, /, start: str, end: str, warmup: str | None, name: str | None,
           out_dir: Path | None, emit_commands: bool, resume: bool, restart: bool,
           checkpoint_every: float, progress_every: float, quiet: bool, as_json: bool,
           stop_after: int | None, **rules: Any) -> None:
    """Re-run the rules over the inputs' history between --from and --to (backfill).

    The state is rebuilt from scratch in a consumer group and a local store of its own; the
    live worker's state and outputs are neither read nor written, except that
    --emit-commands adds the commands to the live command topic. Reading starts --warmup
    before --from (start offsets found by timestamp, checked by event time) so orders begun
    before --from are judged with their history; --to is the final watermark, so every
    decision due by then is made. Written: mismatches with --from <= decided_at < --to
    (OPEN, and RESOLVED ones resolved before --to) and the commands they issued. Use the
    live worker's rule thresholds.

    A decision is the live worker's when the events it rests on lie within the warm-up
    before it; for orders active longer than that, give a longer --warmup.

    Ctrl-C stops at a checkpoint (exit code 3); the same command resumes where it stopped.
    """
    settings = apply_rule_options(settings_of(ctx), rules)
    begin, finish = _time(start, "--from"), _time(end, "--to")
    if finish <= begin:
        raise click.BadParameter("must be after --from", param_hint="--to")
    warm = (parse_duration_ms(warmup, "--warmup") if warmup is not None
            else default_warmup(settings.rules))
    window = ReplayWindow(begin, finish, warm, settings.rules.allowed_lateness)
    options = ReplayOptions(window, name or default_name(window), out_dir, emit_commands,
                            restart, resume, checkpoint_every, stop_after=stop_after)
    if not quiet:
        click.echo(f"replay {options.name}: [{format_time(begin)}, {format_time(finish)}), "
                   f"warm-up {format_duration_ms(warm)} (reading from "
                   f"{format_time(window.read_from)}); rules: {describe_rules(settings)}",
                   err=True)
    if fallback := native.notice():
        click.echo(fallback, err=True)
    job = Replay(settings, options, None if quiet else _Printer(options.name), progress_every)

    def stop(signum: int, frame: FrameType | None) -> None:
        """Ask the replay to stop at its next checkpoint."""
        click.echo(f"\nreplay {options.name}: stopping at the next checkpoint "
                   "(Ctrl-C again to abort without one)", err=True)
        job.request_stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    tune_gc()
    try:
        result = job.run()
    finally:
        ignore_stop_signals()
    _report(result, as_json)
    if not result.done:
        sys.exit(STOPPED)


def ignore_stop_signals() -> None:
    """Once the run is over, ignore SIGINT and SIGTERM for the rest of the process's life.

    What the run wrote is durable by then, so a Ctrl-C that lands while the report prints or
    the interpreter shuts down changes nothing, and must not turn a finished replay (exit 0)
    or a stopped one (exit 3) into a death by SIGINT. Ignoring is the one way that holds to
    the end: CPython puts back the default action (death) of every signal with a Python
    handler when it shuts down, and librdkafka's threads, where blocking a signal in the
    main thread does not reach, can receive it. Only SIGKILL ends the last few milliseconds.
    """
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def _report(result: ReplayResult, as_json: bool) -> None:
    c = result.counts
    for warning in result.warnings:
        click.echo(f"replay {result.name}: warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps({
            "name": result.name, "group": result.group, "done": result.done,
            "already_done": result.already_done, "resumed": result.resumed,
            "output": result.output, "state_dir": str(result.state_dir),
            "records": c.records, "events": c.events, "skipped": c.skipped,
            "mismatches": c.mismatches, "resolved": c.resolved, "commands": c.commands,
            "commands_held": result.held, "records_this_run": result.records_this_run,
            "seconds": round(result.seconds, 3), "engine": engine_core.NAME,
            "warnings": result.warnings,
        }))
        return
    if result.already_done:
        click.echo(f"replay {result.name} is already complete ({c.mismatches} opened, "
                   f"{c.resolved} resolved, {c.commands} commands in {result.output}); "
                   "use --restart to run it again", err=True)
        return
    rate = result.records_this_run / max(result.seconds, 1e-3)
    state = "done" if result.done else "stopped (run the same command again to resume)"
    click.echo(f"replay {result.name} {state}: {c.records:,} records read, {c.events:,} events "
               f"judged, {c.skipped} skipped; {c.mismatches} mismatches opened, {c.resolved} "
               f"resolved, {c.commands} commands -> {result.output} "
               f"({result.seconds:.1f}s, {rate:,.0f} records/s)"
               + (f"; {result.held} commands held: their inputs do not reach the decision "
                  "time in these records" if result.held else ""), err=True)


def register(cli: click.Group) -> None:
    """Add the commands of this module."""
    cli.add_command(replay)
