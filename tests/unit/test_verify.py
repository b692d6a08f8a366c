"""Comparing outputs with the reference by stable ids: lost, duplicated, extra, changed."""

from __future__ import annotations

from typing import Any

from streams.verify import (
    check_commands,
    check_mismatches,
    duplicates,
    inconsistencies,
    multiset_diff,
)


def mismatch(mid: str, status: str = "OPEN", *, detected_at: int = 1,
             command_id: str | None = None, resolved_by: str | None = None) -> dict[str, Any]:
    return {"mismatch_id": mid, "status": status, "type": "DUPLICATE_PAYMENT",
            "order_id": "o1", "detected_at": detected_at, "command_id": command_id,
            "resolved_by": resolved_by}


def command(cid: str, *, issued_at: int = 1) -> dict[str, Any]:
    return {"command_id": cid, "type": "REFUND_PAYMENT", "issued_at": issued_at}


def test_equal_outputs_are_ok_whatever_their_wall_clock_fields() -> None:
    expected = [mismatch("a"), mismatch("a", "RESOLVED"), mismatch("b")]
    got = [mismatch("b", detected_at=9), mismatch("a", detected_at=7),
           mismatch("a", "RESOLVED", detected_at=8)]
    check = check_mismatches(got, expected)
    assert check.ok and (check.expected, check.got) == (3, 3)
    assert check_commands([command("c", issued_at=5)], [command("c")]).ok


def test_lost_duplicated_extra_and_changed_are_told_apart() -> None:
    expected = [mismatch("a"), mismatch("a", "RESOLVED"), mismatch("b"), mismatch("c")]
    got = [mismatch("a"), mismatch("a"), mismatch("b", resolved_by="x"), mismatch("d")]
    check = check_mismatches(got, expected)
    assert check.lost == [("a", "RESOLVED"), ("c", "OPEN")]
    assert check.duplicated == [("a", "OPEN")]
    assert check.extra == [("d", "OPEN")]
    assert check.changed == [("b", "OPEN")]
    assert not check.ok
    summary = check.summary()
    assert (summary["lost"], summary["duplicated"], summary["extra"], summary["changed"]) == \
        (2, 1, 1, 1)
    assert summary["examples"]["lost"] == [["a", "RESOLVED"], ["c", "OPEN"]]

    commands = check_commands([command("x"), command("x"), command("y")],
                              [command("x"), command("z")])
    assert (commands.lost, commands.duplicated, commands.extra) == (["z"], ["x"], ["y"])


def test_duplicates_and_inconsistencies_need_no_reference() -> None:
    mismatches = [mismatch("a", command_id="c1"), mismatch("a"), mismatch("b", "RESOLVED")]
    twice, again = duplicates(mismatches, [command("c2"), command("c2")])
    assert twice == [("a", "OPEN")] and again == ["c2"]
    orphans, dangling = inconsistencies(mismatches, [command("c2")])
    assert orphans == ["b"] and dangling == ["c1"]


def test_multiset_diff_reports_missing_and_extra_records() -> None:
    assert multiset_diff([{"a": 1}], [{"a": 1}], "x") == ""
    report = multiset_diff([{"a": 1}, {"a": 1}], [{"a": 1}, {"a": 2}], "things")
    assert report.splitlines()[0] == "things: 2 actual vs 2 expected; 1 missing, 1 extra"
