"""`crosscheck watch`: a live terminal view of the output topics (no browser, no worker needed).

It reads crosscheck.mismatches, commands, alerts, metrics and dlq (read_committed, its own
throw-away consumer group, nothing committed) from their end, or from the beginning with
``--from-beginning``, and redraws every second until Ctrl-C: records per topic, business
events of the closed metrics windows, mismatches opened/resolved/open by type, commands by
type, dead letters, stalled inputs (from the SOURCE_* alerts), the latest window and the
latest alerts. On a terminal the screen is redrawn in place (plain ANSI); into a pipe or file
each frame is printed after the last.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Any

import click

from schemas.codec import Codec
from schemas.errors import DecodeError
from schemas.validation import format_time
from streams.cli.context import settings_of, topology_of
from streams.clients import check_reachable, confluent_config
from streams.config import Settings
from streams.errors import CrosscheckError
from streams.metrics.sources import SOURCE_RECOVERED, SOURCE_STALLED, describe_source
from streams.model import CommandType, MismatchType
from topology.topics import TopicId, Topology

#: the output topics watched, in display order
WATCHED = (TopicId.MISMATCHES, TopicId.COMMANDS, TopicId.ALERTS, TopicId.METRICS, TopicId.DLQ)
_SEVERITY_RANK = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3}

CLEAR = "\x1b[H\x1b[2J"
BOLD, DIM, RED, YELLOW, GREEN, RESET = "\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[33m", \
    "\x1b[32m", "\x1b[0m"


@dataclass
class OpenMismatch:
    """What the view keeps of an OPEN mismatch until it is RESOLVED."""

    type: str
    severity: str
    order_id: str
    decided_at: int


@dataclass
class WatchState:
    """Everything the view shows, folded from the records read so far."""

    from_beginning: bool = False
    records: Counter[str] = field(default_factory=Counter)
    opened: Counter[str] = field(default_factory=Counter)
    resolved: Counter[str] = field(default_factory=Counter)
    open: dict[str, OpenMismatch] = field(default_factory=dict)
    commands: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    last_dead: deque[str] = field(default_factory=lambda: deque(maxlen=3))
    alerts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=50))
    #: input topic -> its SOURCE_STALLED alert, until its SOURCE_RECOVERED
    stalled: dict[str, dict[str, Any]] = field(default_factory=dict)
    windows: int = 0
    business: Counter[str] = field(default_factory=Counter)
    gmv: Counter[str] = field(default_factory=Counter)
    last_window: dict[str, Any] | None = None
    undecodable: int = 0

    def apply(self, topic: TopicId, record: dict[str, Any]) -> None:
        """Fold one decoded record of a watched topic."""
        self.records[topic.value] += 1
        if topic is TopicId.MISMATCHES:
            mid, mtype = record["mismatch_id"], record["type"]
            if record["status"] == "OPEN":
                self.opened[mtype] += 1
                self.open[mid] = OpenMismatch(mtype, record["severity"], record["order_id"],
                                              record["decided_at"])
            else:
                self.resolved[mtype] += 1
                self.open.pop(mid, None)
        elif topic is TopicId.COMMANDS:
            self.commands[record["type"]] += 1
        elif topic is TopicId.ALERTS:
            self.alerts.append(record)
            source = record.get("source")
            if source is not None and record["kind"] == SOURCE_STALLED:
                self.stalled[source["topic"]] = record
            elif source is not None and record["kind"] == SOURCE_RECOVERED:
                self.stalled.pop(source["topic"], None)
        elif topic is TopicId.METRICS:
            self.windows += 1
            for name in ("orders_placed", "payments_succeeded", "payments_failed", "refunds",
                         "shipments_created"):
                self.business[name] += int(record.get(name) or 0)
            for currency, amount in (record.get("gmv") or {}).items():
                self.gmv[currency] += int(amount)
            if self.last_window is None or \
                    record["window_start"] >= self.last_window["window_start"]:
                self.last_window = record
        elif topic is TopicId.DLQ:
            self.dead_letters += 1
            self.last_dead.append(f"{record['source_topic']}[{record['partition']}]"
                                  f"@{record['offset']}: {record['reason']}")


class Style:
    """ANSI attributes, or nothing (plain output, NO_COLOR)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, *codes: str) -> str:
        if not self.enabled or not codes:
            return text
        return "".join(codes) + text + RESET


def _rate(succeeded: int, failed: int) -> str:
    attempts = succeeded + failed
    return f"{100 * succeeded / attempts:.1f}%" if attempts else "-"


def _money(gmv: dict[str, int] | Counter[str]) -> str:
    return ", ".join(f"{amount} {cur}" for cur, amount in sorted(gmv.items())) or "0"


def _clip(line: str, width: int) -> str:
    return line if len(line) <= width else line[: max(width - 1, 0)] + "…"


def render(state: WatchState, header: str, now_ms: int, width: int = 100,
           style: Style | None = None, alert_rows: int = 8) -> list[str]:
    """The lines of one frame."""
    st = style or Style(False)
    lines = [st(header, BOLD), f"at {format_time(now_ms)}"
             + ("" if state.from_beginning else "  (since watch started; --from-beginning "
                "for everything)")]
    lines.append("")
    lines.append(st("records read", BOLD) + "  " + "  ".join(
        f"{t.value} {state.records.get(t.value, 0)}" for t in WATCHED)
        + (f"  undecodable {state.undecodable}" if state.undecodable else ""))
    b = state.business
    lines.append(st("events", BOLD) + f" (closed windows: {state.windows})  "
                 f"orders placed {b['orders_placed']}  payments ok {b['payments_succeeded']}"
                 f"  failed {b['payments_failed']}  "
                 f"success {_rate(b['payments_succeeded'], b['payments_failed'])}  "
                 f"refunds {b['refunds']}  shipments {b['shipments_created']}  "
                 f"GMV {_money(state.gmv)}")
    lines.append("")
    open_by_type = Counter(m.type for m in state.open.values())
    lines.append(st(f"{'MISMATCHES':30} {'opened':>8} {'resolved':>9} {'open':>7}", BOLD))
    for mt in MismatchType:
        t = mt.value
        o, r, n = state.opened.get(t, 0), state.resolved.get(t, 0), open_by_type.get(t, 0)
        row = f"{t:30} {o:>8} {r:>9} {n:>7}"
        lines.append(st(row, RED) if n else (row if o or r else st(row, DIM)))
    total_open = len(state.open)
    lines.append(st(f"{'total':30} {sum(state.opened.values()):>8} "
                    f"{sum(state.resolved.values()):>9} {total_open:>7}", BOLD))
    lines.append("")
    lines.append(st("commands", BOLD) + "  " + "  ".join(
        f"{ct.value} {state.commands.get(ct.value, 0)}" for ct in CommandType)
        + f"  total {sum(state.commands.values())}")
    dead = st(str(state.dead_letters), RED) if state.dead_letters else "0"
    lines.append(st("dead letters", BOLD) + f"  {dead}")
    if state.stalled:
        lines.append(st("stalled inputs", BOLD) + "  " + st("  ".join(
            f"{topic} (partitions {','.join(map(str, a['source']['partitions']))}, since "
            f"{format_time(a['window_start'])})" for topic, a in sorted(state.stalled.items())),
            RED))
    lines.extend(f"  {d}" for d in reversed(state.last_dead))
    w = state.last_window
    if w is not None:
        rate = w.get("payment_success_rate")
        lines.append(st("latest window", BOLD) + f"  {format_time(w['window_start'])}: "
                     f"orders {w['orders_placed']}, payments {w['payments_succeeded']} ok / "
                     f"{w['payments_failed']} failed"
                     f" ({'-' if rate is None else f'{100 * rate:.1f}%'}), "
                     f"GMV {_money(w.get('gmv') or {})}, "
                     f"mismatches {sum((w.get('mismatches_opened') or {}).values())}, "
                     f"resolved {w['mismatches_resolved']}")
    else:
        lines.append(st("latest window", BOLD) + "  none yet")
    lines.append("")
    lines.append(st(f"LATEST ALERTS ({len(state.alerts)} kept)", BOLD))
    if not state.alerts:
        lines.append(st("  none", DIM))
    for a in list(state.alerts)[::-1][:alert_rows]:
        colour = (RED,) if _SEVERITY_RANK.get(a["severity"], 9) == 0 else (YELLOW,)
        if a.get("source") is not None:  # SOURCE_STALLED / SOURCE_RECOVERED, at alert time
            colour = (GREEN,) if a["kind"] == SOURCE_RECOVERED else colour
            lines.append(st(f"  {format_time(a['window_end'])}  {a['kind']} {a['severity']:8} "
                            f"{describe_source(a)}", *colour))
            continue
        orders = ",".join(a.get("sample_order_ids") or [])
        lines.append(st(f"  {format_time(a['window_start'])}  {a['kind']:8} {a['severity']:8} "
                        f"{a['mismatch_type'] or '':28} x{a['count']:<5} orders {orders}",
                        *colour))
    return [_clip(line, width) if not st.enabled else line for line in lines]


#: set by SIGINT/SIGTERM: the loop ends after the current consume() (at most 0.2 s). An
#: exception raised by the handler instead would interrupt librdkafka mid-call, after which
#: closing the consumer was seen to hang for over 30 s on a loaded machine.
_STOP = threading.Event()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _STOP.set()


def _consume(settings: Settings, topology: Topology, from_beginning: bool
             ) -> Generator[tuple[TopicId, Any] | None, None, None]:
    """Yield (topic, message) for every record, or None when nothing came for a moment."""
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

    consumer = Consumer(confluent_config(settings, **{
        "group.id": f"crosscheck-watch-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
    }))
    try:
        by_name = {topology.name(t): t for t in WATCHED}
        assignment = []
        for name in by_name:
            meta = consumer.list_topics(name, timeout=15).topics.get(name)
            if meta is None or meta.error is not None:
                raise CrosscheckError(f"topic {name} does not exist "
                                      "(run `crosscheck topics create`)")
            start = OFFSET_BEGINNING if from_beginning else OFFSET_END
            assignment += [TopicPartition(name, p, start) for p in sorted(meta.partitions)]
        consumer.assign(assignment)
        while not _STOP.is_set():
            batch = consumer.consume(num_messages=1000, timeout=0.2)
            if not batch:
                yield None
            for msg in batch:
                topic = by_name.get(msg.topic() or "")
                if msg.error() is None and topic is not None:
                    yield topic, msg
    finally:
        consumer.close()


def watch_loop(settings: Settings, topology: Topology, out: IO[str], *,
               from_beginning: bool, interval: float, ansi: bool, colour: bool,
               alert_rows: int, clock: Callable[[], float] = time.monotonic) -> WatchState:
    """Read and redraw until interrupted (KeyboardInterrupt or SIGTERM); returns the state."""
    state = WatchState(from_beginning=from_beginning)
    codec = Codec()
    header = (f"crosscheck watch — {settings.bootstrap} — topics "
              f"{', '.join(topology.name(t) for t in WATCHED)}")
    style = Style(colour)

    def draw() -> None:
        width = shutil.get_terminal_size((120, 40)).columns if ansi else 10_000
        lines = render(state, header, time.time_ns() // 1_000_000, width, style, alert_rows)
        if ansi:
            out.write(CLEAR + "\n".join(lines) + "\n")
        else:
            out.write("\n".join(lines) + "\n" + "-" * 80 + "\n")
        out.flush()

    next_draw = clock()
    stream = _consume(settings, topology, from_beginning)
    try:
        for item in stream:
            if item is not None:
                topic, msg = item
                try:
                    _info, record = codec.decode(msg.value())
                except DecodeError:
                    state.undecodable += 1
                else:
                    state.apply(topic, record)
            if clock() >= next_draw:
                draw()
                next_draw = clock() + interval
        draw()  # stopped by a signal
    except KeyboardInterrupt:
        draw()
    finally:
        stream.close()  # closes the consumer (leaves no group member behind)
    return state


@click.command("watch")
@click.option("--from-beginning", is_flag=True,
              help="Read the output topics from their start (default: only new records).")
@click.option("--interval", type=click.FloatRange(0.1, 60), default=1.0, show_default=True,
              help="Seconds between redraws.")
@click.option("--alerts", "alert_rows", type=click.IntRange(0, 50), default=8,
              show_default=True, help="How many of the latest alerts to show.")
@click.option("--plain", is_flag=True,
              help="No ANSI: print frame after frame (the default when stdout is not a "
                   "terminal).")
@click.pass_context
def watch(ctx: click.Context, from_beginning: bool, interval: float, alert_rows: int,
          plain: bool) -> None:
    """Live terminal view of mismatches, commands, alerts, metrics and dead letters.

    Reads the output topics (read_committed, nothing committed) and redraws every second
    until Ctrl-C. Counts are of the records read: from now on, or from the beginning of
    the topics with --from-beginning (then "open" is every mismatch not yet RESOLVED).
    """
    s = settings_of(ctx)
    check_reachable(s)
    tty = sys.stdout.isatty()
    ansi = tty and not plain
    colour = ansi and not os.environ.get("NO_COLOR")
    _STOP.clear()
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        watch_loop(s, topology_of(ctx), sys.stdout, from_beginning=from_beginning,
                   interval=interval, ansi=ansi, colour=colour, alert_rows=alert_rows)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def register(cli: click.Group) -> None:
    """Add the commands of this module."""
    cli.add_command(watch)
