"""What a replay feeds and keeps: the window, the output selection, names."""

from __future__ import annotations

import dataclasses

import pytest
from builders import RULES

from schemas.validation import format_time
from streams.errors import CrosscheckError
from streams.model import Command, CommandType, Mismatch, MismatchType, Severity, Status
from streams.records import command_record, mismatch_record
from streams.replay import ReplayWindow, default_name, default_warmup, select_records
from streams.replay.setup import check_name

START, END = 1_000_000, 2_000_000
WINDOW = ReplayWindow(START, END, warmup=50_000, lateness=1_000)


def mismatch(mid: str, decided: int, status: Status = Status.OPEN,
             resolved: int | None = None, command: str | None = None) -> Mismatch:
    return Mismatch(mid, MismatchType.RESERVATION_WITHOUT_PAYMENT, status, f"o-{mid}",
                    f"r-{mid}", Severity.HIGH, decided, 7, ("e1",), command, {}, resolved,
                    "e2" if resolved is not None else None)


def command(cid: str, mid: str) -> Command:
    return Command(cid, CommandType.RELEASE_STOCK, f"o-{mid}", f"r-{mid}", mid, 7)


def test_default_warmup_is_the_longest_horizon_plus_the_lateness() -> None:
    rules = dataclasses.replace(RULES, callback_timeout=4_000)
    assert default_warmup(rules) == rules.shipment_timeout + rules.allowed_lateness
    assert default_warmup(rules) == rules.horizon + rules.allowed_lateness
    longer = dataclasses.replace(RULES, callback_timeout=60_000)  # (PAYMENT_NOT_APPLIED's)
    assert default_warmup(longer) == 60_000 + RULES.allowed_lateness


def test_window_bounds() -> None:
    assert WINDOW.read_from == START - 50_000
    assert WINDOW.stop_after == END + 1_000
    assert WINDOW.feeds(START - 50_000) and WINDOW.feeds(END)
    assert not WINDOW.feeds(START - 50_001) and not WINDOW.feeds(END + 1)
    assert WINDOW.decided_in(START) and WINDOW.decided_in(END - 1)
    assert not WINDOW.decided_in(START - 1) and not WINDOW.decided_in(END)
    with pytest.raises(ValueError):
        ReplayWindow(END, START, 0, 0)
    with pytest.raises(ValueError):
        ReplayWindow(START, END, -1, 0)


def test_select_keeps_decisions_in_range_and_the_commands_they_issued() -> None:
    inside = mismatch("a", START, command="c-a")
    before = mismatch("b", START - 1, command="c-b")
    at_end = mismatch("c", END, command="c-c")
    shared = mismatch("d", START + 5, command="c-b")  # its command was issued before
    outputs = [before, command("c-b", "b"), inside, command("c-a", "a"), at_end,
               command("c-c", "c"), shared]
    assert WINDOW.select(outputs) == [inside, command("c-a", "a"), shared]


def test_select_keeps_resolutions_of_decisions_in_range_resolved_before_the_end() -> None:
    resolved = mismatch("a", START + 10, Status.RESOLVED, resolved=END - 1)
    too_late = mismatch("b", START + 10, Status.RESOLVED, resolved=END)
    of_older = mismatch("c", START - 10, Status.RESOLVED, resolved=START + 10)
    assert WINDOW.select([resolved, too_late, of_older]) == [resolved]


def test_select_records_agrees_with_select_for_epoch_and_iso_times() -> None:
    outputs = [mismatch("a", START, command="c-a"), command("c-a", "a"),
               mismatch("b", START - 1, command="c-b"), command("c-b", "b"),
               mismatch("a", START, Status.RESOLVED, resolved=START + 3, command="c-a"),
               mismatch("e", START + 1, Status.RESOLVED, resolved=END + 3)]
    kept = WINDOW.select(outputs)
    mismatches = [mismatch_record(o) for o in outputs if isinstance(o, Mismatch)]
    commands = [command_record(o) for o in outputs if isinstance(o, Command)]
    want_m = [mismatch_record(o) for o in kept if isinstance(o, Mismatch)]
    want_c = [command_record(o) for o in kept if isinstance(o, Command)]
    assert select_records(WINDOW, mismatches, commands) == (want_m, want_c)

    def iso(r: dict[str, object]) -> dict[str, object]:
        return {k: format_time(v) if k.endswith("_at") and isinstance(v, int) else v
                for k, v in r.items()}
    got_m, got_c = select_records(WINDOW, [iso(m) for m in mismatches],
                                  [iso(c) for c in commands])
    assert [m["mismatch_id"] for m in got_m] == [m["mismatch_id"] for m in want_m]
    assert [c["command_id"] for c in got_c] == [c["command_id"] for c in want_c]


def test_names() -> None:
    window = ReplayWindow(1_795_255_200_000, 1_795_262_400_500, 0, 0)
    assert default_name(window) == "20261121T100000Z-20261121T120000500Z"
    assert check_name(default_name(window))
    for bad in ("", "a b", "x/y", "é"):
        with pytest.raises(CrosscheckError):
            check_name(bad)

