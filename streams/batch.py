"""Batch evaluation of the rules over a finite set of events (tests, replay checks, audit).

An implementation of the time semantics independent of the streaming engine: it shares the
rule catalog (``derive_decisions``, ``decide``, ``holds``, ids, severities) but not
PartitionEngine or its store. Per order, all events are known up front (deduplicated by
event_id, first occurrence kept):

* the final watermark W of the order's partition (``partition_for(order_id, partitions)``) is
  ``until`` when given, else the largest event_time of that partition's events minus
  ``allowed_lateness``: what the streaming engine reaches once all its sources go idle;
* every derived decision with D <= W is made in (D, rule, key) order against a ledger: a
  mismatch_id is opened at most once, a command_id issued at most once;
* an opened, resolvable mismatch is RESOLVED at the first event time T of the order with
  decided_at < T <= W at which its condition no longer holds (resolved_by = the smallest
  event_id at T).

* a command is issued only on confirmed input, as the streaming engine's held commands
  (``streams.engine.held``): when every input its rule reads has progressed past D (that
  input's largest event_time on the partition minus ``allowed_lateness``). A command that is
  not confirmed at the end of the data is held, not issued; a later mismatch calling for the
  same command_id that is confirmed issues it. With ``until`` the data is complete up to
  it (as a replay's forced end): every command up to it is confirmed.

There is no eviction and there are no late events. Output order: by time (D for OPEN and
commands, T for RESOLVED), then order_id, then decisions before resolutions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec

from streams.clock import wall_ms
from streams.config import RuleConfig
from streams.engine.held import is_confirmed
from streams.model import Command, Event, Mismatch, Status
from streams.rulebook import CommandMode, ledger_key
from streams.rules.catalog import (
    RULES,
    command_of,
    command_record,
    decide,
    derive_decisions,
    holds,
    issue,
    severity_of,
)
from streams.rules.catalog import open_record as _open_record
from streams.rules.entities import OrderView
from topology.partitioner import partition_for

Output = Mismatch | Command
_Key = tuple[int, str, int, int, int, str, int]


def evaluate_order(
    order_id: str,
    events: Iterable[Event],
    rules: RuleConfig,
    final_watermark: int,
    clock: Callable[[], int] = wall_ms,
    progress: dict[str, int] | None = None,
) -> list[tuple[_Key, Output]]:
    """Mismatches and commands of one order up to ``final_watermark``, with their sort keys.
    ``progress``: each input's largest event_time on the order's partition (the commands
    it does not confirm are held); None: every command is confirmed."""
    view = OrderView(order_id, events)
    results: list[tuple[_Key, Output]] = []
    opened: set[str] = set()
    issued: set[str] = set()
    decisions = sorted(d for d in derive_decisions(view, rules) if d.due <= final_watermark)
    for seq, decision in enumerate(decisions):
        for finding in sorted(decide(decision, view, rules), key=lambda f: f.subject_id):
            mid = finding.mismatch_id
            if mid in opened:
                continue
            opened.add(mid)
            now = clock()
            cid = command_of(finding, rules)
            mismatch = _open_record(finding, cid, now, severity_of(finding, rules))
            key: _Key = (decision.due, order_id, 0, seq, 0, finding.subject_id, 0)
            results.append((key, mismatch))
            mode = issue(finding, rules, issued) if cid is not None else None
            shadow = mode is CommandMode.SHADOW
            command = command_record(finding, now, shadow) if mode is not None else None
            if command is not None and progress is not None and not is_confirmed(
                    progress, finding.rule, decision.due, rules.allowed_lateness):
                command = None  # held: its inputs have not confirmed D
            if command is not None:
                issued.add(ledger_key(command.command_id, shadow))
                results.append(((*key[:-1], 1), command))
            if not RULES[finding.rule].resolvable:
                continue
            for at in view.event_times():
                if not finding.decided_at < at <= final_watermark:
                    continue
                if holds(
                    finding.rule, finding.subject_id, finding.key, finding.trigger_time, view, at
                ):
                    continue
                first = view.first_event_at(at)
                resolved = msgspec.structs.replace(
                    mismatch,
                    status=Status.RESOLVED,
                    detected_at=clock(),
                    resolved_at=at,
                    resolved_by=first.event_id if first else None,
                )
                res_key: _Key = (
                    at,
                    order_id,
                    1,
                    finding.decided_at,
                    finding.rule,
                    finding.subject_id,
                    0,
                )
                results.append((res_key, resolved))
                break
    return results


def watermarks_of(progress: dict[int, dict[str, int]], rules: RuleConfig,
                  until: int | None = None) -> dict[int, int]:
    """Partition number -> the final watermark the batch evaluates up to, from the inputs'
    progress (``input_progress``): the largest event time of each partition minus the
    lateness, or ``until``."""
    if until is not None:
        return dict.fromkeys(progress, until)
    return {part: max(of.values()) - rules.allowed_lateness for part, of in progress.items()}


def input_progress(events: Iterable[Event], partitions: int = 1
                   ) -> dict[int, dict[str, int]]:
    """Partition number -> each input's progress there (its largest event_time)."""
    progress: dict[int, dict[str, int]] = {}
    for event in events:
        of = progress.setdefault(partition_for(event.order_id, partitions), {})
        name = event.source.value
        if event.event_time > of.get(name, event.event_time - 1):
            of[name] = event.event_time
    return progress


def evaluate(
    events: Iterable[Event],
    rules: RuleConfig,
    *,
    partitions: int = 1,
    until: int | None = None,
    clock: Callable[[], int] = wall_ms,
) -> list[Output]:
    """Every mismatch (OPEN and RESOLVED) and command the rules yield for ``events``."""
    all_events = list(events)
    by_order: dict[str, list[Event]] = {}
    for event in all_events:
        by_order.setdefault(event.order_id, []).append(event)
    progress = input_progress(all_events, partitions)
    watermarks = watermarks_of(progress, rules, until)
    # with `until`, the caller says the data is complete up to it: nothing is held
    keyed: list[tuple[_Key, Output]] = []
    for order_id in sorted(by_order):
        part = partition_for(order_id, partitions)
        keyed.extend(evaluate_order(order_id, by_order[order_id], rules, watermarks[part],
                                    clock, None if until is not None else progress[part]))
    keyed.sort(key=lambda pair: pair[0])
    return [output for _, output in keyed]
