"""Per-rule watermarks: a rule decides on the inputs it reads, not on a quiet one it does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from builders import CLOCK_MS, T0, commands, inv, mismatches, pay, placed, ship
from builders import RULES as EVICTING
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import native
from streams.engine import MemoryStore, PartitionEngine
from streams.engine import watermark as wm
from streams.engine.state import PartitionMeta
from streams.model import Source
from streams.rulebook import RuleSetting
from streams.rules.catalog import DECIDED_ON
from streams.rules.catalog import RULES as CATALOG

ROOT = Path(__file__).resolve().parents[2]
RULES = replace(EVICTING, state_retention=10**9)
L = RULES.allowed_lateness


def test_rules_that_can_call_for_one_command_decide_on_the_same_inputs() -> None:
    """A rule's watermark is over what it reads, and what the rules that can call for a
    command of the same type read: the contract's "reads" column, widened so that a
    command two rules call for goes out with the earliest decision, as in batch."""
    for number, spec in CATALOG.items():
        assert spec.reads <= DECIDED_ON[number]
        for other in CATALOG.values():
            if spec.command is not None and other.command is spec.command:
                assert other.reads <= DECIDED_ON[number]
    names = {spec.type.value: sorted(s.value for s in DECIDED_ON[n])
             for n, spec in CATALOG.items()}
    # refunds: with CANCELLED_BUT_CHARGED's orders, not shipping
    assert names["DUPLICATE_PAYMENT"] == ["inventory", "orders", "payments"]
    assert names["AMOUNT_MISMATCH"] == ["orders", "payments"]
    assert names["TCC_EMPTY_ROLLBACK"] == ["inventory"]
    assert names["PAID_WITHOUT_PAYMENT"] == ["orders", "payments"]


def test_a_quiet_shipping_service_does_not_delay_a_duplicate_refund() -> None:
    """Shipping never spoke on this partition: the partition's watermark waits for it, but
    DUPLICATE_PAYMENT (payments and inventory) is decided and refunded as its own inputs
    pass D; SHIPPED_WITHOUT_PAYMENT, which reads shipping, is not decided."""
    engine = PartitionEngine(RULES, MemoryStore(), lambda: CLOCK_MS)
    out = []
    for event in (pay("SUCCEEDED", T0, "p1"), pay("SUCCEEDED", T0 + 10, "p2"),
                  inv("RESERVED", T0 + 20), inv("RELEASED", T0 + 5 * L, "r9", order="o9"),
                  pay("FAILED", T0 + 5 * L, "p9", order="o9"),
                  placed(T0 + 5 * L, order="o8")):
        out += engine.on_event(event)
    assert engine.watermark is None  # shipping holds the partition's watermark
    assert [m.type for m in mismatches(out)] == ["DUPLICATE_PAYMENT"]
    assert [(c.type, c.target_id) for c in commands(out)] == [("REFUND_PAYMENT", "p2")]
    # the same decision when the partition's watermark passes it: not again
    out = engine.on_event(ship("CANCELLED", T0 + 5 * L, order="o7"))
    assert mismatches(out) == [] and commands(out) == []


def test_without_the_order_rules_a_quiet_orders_topic_does_not_delay_a_refund() -> None:
    """A shop without the orders topic switches off the rules that read it: DUPLICATE_PAYMENT
    decides on payments and inventory again (with them on, it waits for the orders too)."""
    off = tuple(RuleSetting(t, enabled=False) for t in sorted(
        ("AMOUNT_MISMATCH", "PAID_NOT_SHIPPED", "PAYMENT_NOT_APPLIED", "CANCELLED_BUT_CHARGED",
         "CANCELLED_BUT_RESERVED", "CANCELLED_BUT_SHIPPED", "PAID_WITHOUT_PAYMENT")))
    events = (pay("SUCCEEDED", T0, "p1"), pay("SUCCEEDED", T0 + 10, "p2"),
              inv("RESERVED", T0 + 20), inv("RELEASED", T0 + 5 * L, "r9", order="o9"),
              pay("FAILED", T0 + 5 * L, "p9", order="o9"),
              ship("CANCELLED", T0 + 5 * L, order="o7"))
    for rules, decided in ((replace(RULES, per_rule=off), True), (RULES, False)):
        engine = PartitionEngine(rules, MemoryStore(), lambda: CLOCK_MS)
        out = [o for event in events for o in engine.on_event(event)]
        assert engine.watermark is None  # the orders topic never spoke
        assert [c.target_id for c in commands(out)] == (["p2"] if decided else [])


def test_a_rule_waits_for_an_input_it_reads() -> None:
    engine = PartitionEngine(RULES, MemoryStore(), lambda: CLOCK_MS)
    out = []
    for event in (pay("SUCCEEDED", T0, "p1"), placed(T0 + 10 * L, order="o8"),
                  pay("FAILED", T0 + 10 * L, "p9", order="o9"),
                  ship("CANCELLED", T0 + 10 * L, order="o7")):
        out += engine.on_event(event)
    assert out == []  # PAYMENT_WITHOUT_RESERVATION reads inventory, never seen: it waits
    out = engine.set_released(Source.INVENTORY, True)  # stalled past source_hold
    assert [m.type for m in mismatches(out)] == ["PAYMENT_WITHOUT_RESERVATION"]


@st.composite
def metas(draw: st.DrawFn) -> PartitionMeta:
    names = [s.value for s in Source]
    seen = draw(st.lists(st.sampled_from(names), unique=True))
    meta = PartitionMeta(max_time={n: draw(st.integers(0, 10_000)) for n in seen},
                         idle=sorted(draw(st.lists(st.sampled_from(names), unique=True))))
    meta.released = sorted(n for n in meta.idle if draw(st.booleans()))
    candidate = wm.candidate(meta, L)
    meta.watermark = draw(st.one_of(st.none(), st.just(candidate)))
    return meta


@settings(max_examples=300, deadline=None)
@given(metas(), st.sampled_from(sorted(DECIDED_ON)))
def test_a_rule_watermark_never_passes_an_input_it_waits_for(meta: PartitionMeta,
                                                             rule: int) -> None:
    reads = DECIDED_ON[rule]
    mark = wm.rule_candidate(meta, reads, L)
    if meta.watermark is not None:
        assert mark is not None and mark >= meta.watermark  # never behind the partition's
    if wm.all_quiet(meta.idle) or mark is None or mark == meta.watermark:
        return
    for source in reads:  # not released: held at its progress, or (never seen) entirely
        if source.value not in meta.released:
            progress = meta.max_time.get(source.value)
            assert progress is not None and mark <= progress - L


#: a child process: an engine over simulator traffic in which inventory stalls (released),
#: shipping is quiet, and inventory's backlog comes later; a canonical form of every output
STALLED_RUN = """
import hashlib, json
from streams.bench.data import generate
from streams.config import RuleConfig, load_settings
from streams.engine import MemoryStore, PartitionEngine, core
from streams.engine.confirming import Confirming
from streams.inputs import decode_input
from schemas.codec import Codec
from streams.model import Source
from streams.rulebook import RuleSetting
from topology.partitioner import partition_for
from topology.topics import BY_ID, TopicId
codec = Codec()
rules = RuleConfig()
engines = []
for _ in range(2):
    store = MemoryStore()
    engines.append(Confirming(PartitionEngine(rules, store, lambda: 1), rules, store, lambda: 1))
digest, count = hashlib.sha256(), 0
def emit(outputs):
    global count
    for out in outputs:
        digest.update(repr(out).encode()); count += 1
records = list(generate(6000, 4, load_settings({})))
held = []
for i, (topic, record) in enumerate(records):
    if i == 1500:
        for e in engines:
            emit(e.set_idle(Source.SHIPPING, True))
            emit(e.set_released(Source.INVENTORY, True))
    if 1500 <= i < 4000 and topic is TopicId.INVENTORY:
        held.append((topic, record)); continue
    if i == 4000:
        for t, r in held:
            value = codec.encode(BY_ID[t].value_schema, r)
            emit(engines[partition_for(r["order_id"], 2)].on_event(decode_input(codec, t, value)))
    value = codec.encode(BY_ID[topic].value_schema, record)
    emit(engines[partition_for(record["order_id"], 2)].on_event(decode_input(codec, topic, value)))
for e in engines:
    for s in Source:
        emit(e.set_idle(s, True))
print(json.dumps({"engine": core.NAME, "outputs": count, "digest": digest.hexdigest()}))
"""


def _stalled_run(**env_set: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items()
           if k not in (native.PURE_ENV, native.PYTHON_ENGINE_ENV)}
    env.update(env_set)
    done = subprocess.run([sys.executable, "-c", STALLED_RUN], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_the_native_and_the_python_engine_agree_through_a_stall() -> None:
    """Early decisions, released and quiet inputs, held commands and a late backlog: the
    native engine emits what the Python engine emits, in the same order."""
    python = _stalled_run(**{native.PURE_ENV: "1"})
    default = _stalled_run()
    assert python["engine"] == "python"
    assert int(python["outputs"]) > 100  # type: ignore[call-overload]
    assert (default["outputs"], default["digest"]) == (python["outputs"], python["digest"])
