"""`crosscheck status`: inputs, watermarks and held commands from the meta changelog."""

from __future__ import annotations

from collections import Counter

import msgspec
from builders import T0

from schemas.validation import format_time
from streams.cli.status_cmd import render
from streams.config import RuleConfig
from streams.engine.held import Claim, HeldCommand
from streams.engine.state import PartitionMeta, encode_meta
from streams.model import Command, CommandType, MismatchType
from streams.names import HELD_PREFIX, META_KEY, STALLED_KEY
from streams.rules.catalog import RULE_OF, RULES
from streams.status import Lag, Status
from topology.topics import TopicId, Topology

TOPOLOGY = Topology(4, "t.")
NAMES = {t.value: TOPOLOGY.name(t) for t in (TopicId.ORDERS, TopicId.PAYMENTS,
                                            TopicId.INVENTORY, TopicId.SHIPPING)}
ENCODER = msgspec.msgpack.Encoder()


def _held(cid: str, mtype: MismatchType, due: int) -> tuple[bytes, bytes]:
    command = Command(cid, CommandType.REFUND_PAYMENT, f"o-{cid}", "p1", f"m-{cid}", 0)
    entry = HeldCommand(command, [Claim(f"m-{cid}", RULE_OF[mtype], due)], T0 + 50_000)
    return HELD_PREFIX + cid.encode(), ENCODER.encode(entry)


def _report() -> Status:
    status = Status("cc", "127.0.0.1:9092", lags=[Lag(NAMES["payments"], 0, 7, 9)])
    moving = PartitionMeta({"orders": T0 + 9, "payments": T0 + 3, "inventory": T0 + 5},
                           ["inventory", "payments"], T0 - 60_000, ["inventory"])
    ended = PartitionMeta({"orders": T0, "payments": T0, "inventory": T0, "shipping": T0},
                          ["inventory", "orders", "payments", "shipping"], T0 - 1)
    c1, c2, c3 = (_held("c1", MismatchType.PAID_NOT_SHIPPED, T0 + 2),
                  _held("c2", MismatchType.AMOUNT_MISMATCH, T0 + 1),
                  _held("c3", MismatchType.AMOUNT_MISMATCH, T0 + 3))
    status.read_meta([
        (0, META_KEY, encode_meta(PartitionMeta({"orders": T0}))),  # replaced below
        (0, b"window/123", b"not a meta value"),  # the metrics windows share the table
        (0, META_KEY, encode_meta(moving)),
        (0, STALLED_KEY, ENCODER.encode({"inventory": T0 + 40_000})),
        (0, *c1), (0, *c2), (2, *c3),
        (2, c3[0], None),  # issued or dropped since: a tombstone
        (1, META_KEY, encode_meta(ended)),
    ], NAMES, RuleConfig())
    status.open_by_type = Counter({"AMOUNT_MISMATCH": 2})
    return status


def test_inputs_states_from_the_stored_watermark_state() -> None:
    status = _report()
    assert status.watermarks == {0: T0 - 60_000, 1: T0 - 1}
    states = {(i.topic, i.partition): (i.state, i.progress, i.since) for i in status.inputs}
    assert states == {
        # quiet while orders advances: stalled; released past source_hold (since: stored)
        ("t.payments", 0): ("stalled", T0 + 3, None),
        ("t.inventory", 0): ("released", T0 + 5, T0 + 40_000),
        ("t.orders", 0): ("active", T0 + 9, None),
        ("t.shipping", 0): ("never seen", None, None),
        # every input quiet: the end of the traffic, nobody stalled
        **{(NAMES[n], 1): ("quiet", T0, None)
           for n in ("orders", "payments", "inventory", "shipping")},
    }


def test_held_commands_oldest_decision_first_with_what_they_wait_for() -> None:
    status = _report()
    assert [(h["partition"], h["command_id"]) for h in status.held] == [(0, "c2"), (0, "c1")]
    c2 = status.held[0]
    assert c2["waits_for"] == sorted(s.value for s in
                                     RULES[RULE_OF[MismatchType.AMOUNT_MISMATCH]].reads)
    assert c2["decided_at"] == T0 + 1 and c2["order_id"] == "o-c2"


def test_json_has_inputs_and_held_commands() -> None:
    doc = _report().as_json()
    payments = next(i for i in doc["inputs"] if (i["topic"], i["partition"]) ==
                    ("t.payments", 0))
    assert payments == {"topic": "t.payments", "partition": 0,
                        "progress": format_time(T0 + 3), "progress_ms": T0 + 3, "lag": 2,
                        "state": "stalled", "since": None}
    released = next(i for i in doc["inputs"] if i["state"] == "released")
    assert released["since"] == format_time(T0 + 40_000) and released["lag"] is None
    held = doc["held_commands"]
    assert held["count"] == 2
    assert held["commands"][0]["decided_at"] == format_time(T0 + 1)
    assert held["commands"][0]["held_at"] == format_time(T0 + 50_000)
    assert doc["watermarks"] == {"0": format_time(T0 - 60_000), "1": format_time(T0 - 1)}
    assert doc["idle_inputs"] == {"0": ["inventory", "payments"],
                                  "1": ["inventory", "orders", "payments", "shipping"]}
    assert doc["open_mismatches"] == 2


def test_text_lists_inputs_and_held_commands() -> None:
    text = "\n".join(render(_report()))
    assert "t.payments                          0  " + format_time(T0 + 3) + "  stalled" \
        in text
    assert "released    " + format_time(T0 + 40_000) in text
    assert "never seen" in text
    assert "open mismatches: 2 (AMOUNT_MISMATCH=2)" in text
    assert "held commands: 2 " in text
    assert "o-c2" in text and "o-c1" in text
    empty = render(Status("cc", "b"))
    assert "held commands: 0" in empty and "open mismatches: 0" in empty
