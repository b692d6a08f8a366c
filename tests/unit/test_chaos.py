"""`crosscheck chaos` without a broker: the schedule, source outages, bad records, the table."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from builders import BlobStore

from schemas.codec import Codec
from streams.chaos.badinput import KINDS, make_bad
from streams.chaos.monitor import health_word
from streams.chaos.plan import (
    BAD,
    BROKER,
    JOIN,
    KILL,
    LEAVE,
    OUTAGE,
    ChaosConfig,
    check_outages,
    outage_topic,
    schedule,
)
from streams.chaos.publisher import ChaosPacer, Holdback, Outage
from streams.chaos.report import judge_outputs, table, verdict
from streams.chaos.runner import Injected, _fault_counts
from streams.chaos.supervisor import Supervisor
from streams.config import RuleConfig, load_settings
from streams.errors import ConfigError
from streams.model import DeadLetter
from streams.produce import ParsedLine
from streams.verify import Expected
from streams.web.documents import health_doc
from streams.worker.runtime import Runtime
from streams.worker.runtime_types import Record
from streams.worker.ticker import STALL_EXIT_CODE
from topology.partitioner import partition_for
from topology.topics import TopicId, Topology

TOPO = Topology(4, "x.", {})


def test_the_schedule_has_every_fault_once_in_a_seeded_order_and_rebalances_alternate() -> None:
    config = ChaosConfig(kills=10, rebalances=4, broker_restarts=2, bad_bursts=4)
    faults = schedule(config)
    assert Counter(f.kind for f in faults) == {KILL: 10, JOIN: 2, LEAVE: 2, BROKER: 2, BAD: 4,
                                               OUTAGE: 1}
    assert [f.kind for f in faults if f.kind in (JOIN, LEAVE)] == [JOIN, LEAVE, JOIN, LEAVE]
    ats = [f.at for f in faults]
    assert ats == sorted(ats) and ats[0] >= 0.04 and ats[-1] <= 0.94
    assert schedule(config) == faults
    assert schedule(ChaosConfig(seed=2)) != faults
    assert BROKER not in {f.kind for f in schedule(config, broker_faults=False)}
    assert Counter(f.kind for f in schedule(ChaosConfig(rebalances=3)))[LEAVE] == 2


def test_every_bad_record_is_dead_lettered_on_its_home_partition_for_what_is_wrong() -> None:
    codec = Codec()
    rng = random.Random(5)
    store = BlobStore()
    runtime = Runtime(RuleConfig(), TOPO, codec, lambda p: store,
                      {t: 4 for t in TopicId}, 4, "w1", clock=lambda: 1000)
    reasons: Counter[str] = Counter()
    for n in range(400):
        kind = KINDS[n % len(KINDS)]
        order_id = f"CHAOS-BAD-1-{n:06d}"
        bad = make_bad(rng, codec, TOPO, kind, order_id, n)
        partition = partition_for(order_id, 4)
        emits = runtime.handle(Record(TOPO.name(bad.topic), partition, n,
                                      order_id.encode(), bad.value))
        assert len(emits) == 1 and emits[0].topic is TopicId.DLQ, (kind, bad.what)
        letter = emits[0].output
        assert isinstance(letter, DeadLetter) and letter.partition == partition
        assert not letter.reason.startswith("misrouted"), letter.reason
        reasons[kind] += 1
    assert reasons == dict.fromkeys(KINDS, 100)
    assert runtime.counters.dead_letters == 400 and not runtime.counters.events


def _mismatch(mid: str, status: str = "OPEN") -> dict[str, Any]:
    return {"mismatch_id": mid, "status": status, "detected_at": 1, "command_id": None}


def _letter(topic: str, partition: int, offset: int) -> dict[str, Any]:
    return {"source_topic": topic, "partition": partition, "offset": offset,
            "reason": "magic byte is 123, not 0: not Confluent wire format"}


def _results(outputs: dict[str, Any]) -> dict[str, Any]:
    ok, why = verdict(outputs)
    counts = {"planned": 1, "injected": 1}
    return {"scenario": {"orders": 10, "events": 100, "seed": 1, "partitions": 4, "rate": 50.0},
            "seconds": 12.0, "outputs": outputs, "broker_restarts_skipped": None,
            "faults": {k: counts for k in (KILL, JOIN, LEAVE, BROKER, BAD, OUTAGE)},
            "source_outages": {"length_s": 8.0, "idle_timeout_s": 5.0,
                               "outages": [{"topic": "payments"}]},
            "restarts": {"total": 1, "killed": 1, "stalled": 0, "crashed": 0},
            "stuck": {"stuck": False, "exits_75": 0, "exit_75_at_s": [],
                      "monitor": {"stuck_after_s": 30.0, "episodes": [],
                                  "longest_wait_s": 12.0, "longest_wait_at_s": 5.0}},
            "finished": True, "verdict": {"ok": ok, "why": why}}


def test_a_clean_run_passes_and_the_table_says_so() -> None:
    expected = Expected([_mismatch("a"), _mismatch("a", "RESOLVED")], [{"command_id": "c"}])
    got = {TopicId.MISMATCHES: [_mismatch("a"), _mismatch("a", "RESOLVED")],
           TopicId.COMMANDS: [{"command_id": "c", "issued_at": 5}],
           TopicId.DLQ: [_letter("x.payments", 1, 7)]}
    outputs = judge_outputs(got, expected, {("x.payments", 1, 7): "not_avro"})
    assert verdict(outputs) == (True, [])
    text = table(_results(outputs))
    assert "verdict: PASS (0 lost, 0 duplicated, 0 extra, 100 % of the bad records in the " \
           "DLQ: 1/1)" in text
    assert "stuck: no" in text
    assert "source outage (payments paused 8 s)             1         1" in text
    rows = {line[:28].strip(): line[28:].split() for line in text.splitlines()}
    assert rows["mismatches OPEN"] == ["1", "1", "0", "0", "0", "0"]
    assert rows["dead letters (bad records)"] == ["1", "1", "0", "0", "0", "-"]


def test_lost_duplicated_extra_and_missing_dead_letters_fail_the_run() -> None:
    expected = Expected([_mismatch("a"), _mismatch("b")], [{"command_id": "c"}])
    got = {TopicId.MISMATCHES: [_mismatch("a"), _mismatch("a"), _mismatch("z")],
           TopicId.COMMANDS: [],
           TopicId.DLQ: [_letter("x.orders", 0, 1), _letter("x.orders", 0, 1),
                         _letter("x.orders", 0, 9)]}
    sent = {("x.orders", 0, 1): "truncated", ("x.orders", 0, 2): "invalid"}
    outputs = judge_outputs(got, expected, sent)
    ok, why = verdict(outputs)
    assert not ok
    assert why == ["mismatches open: 1 lost", "mismatches open: 1 duplicated",
                   "mismatches open: 1 extra", "commands: 1 lost", "dead letters: 1 lost",
                   "dead letters: 1 duplicated", "dead letters: 1 extra"]
    text = table(_results(outputs))
    assert "verdict: FAIL (2 lost, 1 duplicated, 1 extra, 50 % of the bad records in the " \
           "DLQ: 1/2)" in text


def _health(ready: bool, word: str) -> dict[str, Any]:
    probe: Any = SimpleNamespace(
        ready=lambda: (ready, word), worker_id="w", app_id="a", url="u", started_at=0,
        records=0, batch_count=0, batches=SimpleNamespace(last_seconds=None),
        partitions=lambda: [], standbys=lambda: [], lag=lambda: [], watermarks=lambda: {},
        inputs=lambda: [],
        held_commands=lambda: {}, rule_watermarks=lambda: {})
    return health_doc(probe, 1_000)


def test_the_monitor_reads_a_ready_worker_as_ready_and_others_by_their_word() -> None:
    """A ready worker's /health says status "ok": the chaos monitor and the SIGKILL timing
    wait for "ready", so a worker that serves its partitions must read as that (it once
    did not: every kill waited 60 s and no stall could ever be detected)."""
    assert health_word(_health(True, "ok")) == "ready"
    for word in ("starting", "rebalancing", "recovering", "stopping"):
        assert health_word(_health(False, word)) == word
    assert health_word({}) == "down"


class _Ended:
    """A worker process that has exited with `code`."""

    def __init__(self, pid: int, code: int) -> None:
        self.pid, self.proc = pid, SimpleNamespace(returncode=code)

    def alive(self) -> bool:
        return False

    def log_tail(self, lines: int = 20) -> str:
        return "last lines"


def test_exits_are_classified_by_what_the_run_did_to_the_worker(tmp_path: Path) -> None:
    """Killed by the run, asked to leave (exit 0, or the SIGTERM itself when it came before
    the worker's handler was installed), exit 75, or a crash; only wanted slots restart."""
    sup = Supervisor(load_settings({}), tmp_path, [])
    cases = [("killed", -9, dict(killing=True)), ("left", 0, dict(leaving=1e12)),
             ("left", -15, dict(leaving=1e12)), ("crashed", 1, dict(leaving=1e12)),
             ("stalled", STALL_EXIT_CODE, {}), ("crashed", 1, {})]
    for n, (_cause, code, marks) in enumerate(cases):
        slot = sup.add(f"w{n}", 0)
        slot.child = cast(Any, _Ended(10 + n, code))
        slot.killing = 10 + n if marks.get("killing") else None
        slot.leaving = cast(Any, marks.get("leaving"))
    found = {e.slot: e.cause for e in sup.poll()}
    assert found == {f"w{n}": cause for n, (cause, _c, _m) in enumerate(cases)}
    assert not sup.restarts and not sup.alive()  # none was wanted: nothing restarted


def test_source_outages_fit_in_the_input_apart_and_leave_the_other_faults_where_they_were(
        ) -> None:
    """Each outage spans the share of the input published during its length, they do not
    overlap and end by 94 %; drawing them moves no other fault; too long ones are refused."""
    config = ChaosConfig(orders=500, seed=3, rate=250.0, kills=2, rebalances=2,
                         broker_restarts=1, bad_bursts=2, source_outages=3, outage_length=4.0)
    faults = schedule(config, events=5000)
    outages = [f for f in faults if f.kind == OUTAGE]
    span = 4.0 * 250 / 5000
    assert len(outages) == 3 and [f.at for f in faults] == sorted(f.at for f in faults)
    assert outages[0].at >= 0.04 and outages[-1].at + span <= 0.94 + 1e-4
    assert all(b.at - a.at >= span - 1e-4 for a, b in pairwise(outages))
    without = replace(config, source_outages=0)
    assert [f for f in faults if f.kind != OUTAGE] == schedule(without, events=5000)
    assert schedule(config, events=5000) == faults
    with pytest.raises(ConfigError, match="do not fit"):
        schedule(replace(config, outage_length=7.0), events=5000)  # 3 x 35 % of the input


def test_an_outage_holds_back_mostly_inventory_payments_or_shipping() -> None:
    assert [outage_topic(p) for p in (0.0, 0.29, 0.3, 0.59, 0.6, 0.89, 0.9, 0.999)] == [
        TopicId.INVENTORY, TopicId.INVENTORY, TopicId.PAYMENTS, TopicId.PAYMENTS,
        TopicId.SHIPPING, TopicId.SHIPPING, TopicId.ORDERS, TopicId.ORDERS]
    picks = Counter(outage_topic(f.pick) for seed in range(200)
                    for f in schedule(ChaosConfig(seed=seed)) if f.kind == OUTAGE)
    assert set(picks) == {TopicId.INVENTORY, TopicId.PAYMENTS, TopicId.SHIPPING,
                          TopicId.ORDERS}
    assert picks[TopicId.ORDERS] < min(picks[t] for t in picks if t is not TopicId.ORDERS)


def test_an_outage_must_outlast_the_idle_timeout() -> None:
    rules = RuleConfig(idle_timeout=10_000)
    check_outages(ChaosConfig(outage_length=20.0), rules)
    check_outages(ChaosConfig(source_outages=0, outage_length=1.0), rules)
    for length in (5.0, 10.0):
        with pytest.raises(ConfigError, match="must exceed the workers' idle timeout"):
            check_outages(ChaosConfig(outage_length=length), rules)


class _Clock:
    """A clock that only sleeping moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


class _Producer:
    """Records what is published and when (by the fake clock)."""

    def __init__(self, clock: _Clock) -> None:
        self.clock, self.errors = clock, cast(list[str], [])
        self.sent: list[tuple[float, TopicId, int]] = []
        self.flushes = 0

    def publish(self, line: ParsedLine) -> None:
        self.sent.append((self.clock.now, line.topic, line.record["n"]))

    def flush(self, timeout: float) -> None:
        self.flushes += 1


def _records(n: int) -> list[tuple[TopicId, dict[str, Any]]]:
    inputs = [TopicId.ORDERS, TopicId.PAYMENTS, TopicId.INVENTORY, TopicId.SHIPPING]
    return [(inputs[i % 4], {"order_id": f"O-{i // 4}", "n": i}) for i in range(n)]


def _pace(records: list[tuple[TopicId, dict[str, Any]]], outages: list[Outage],
          rate: float = 100.0) -> tuple[ChaosPacer, _Producer, list[str]]:
    clock, notes = _Clock(), cast(list[str], [])
    producer = _Producer(clock)
    pacer = ChaosPacer(load_settings({}), records, rate, outages, notes.append,
                       producer=lambda _s: producer, clock=clock, sleep=clock.sleep)
    pacer.run()
    assert pacer.error is None
    return pacer, producer, notes


def test_an_outage_holds_its_input_back_while_the_others_flow_then_sends_its_backlog() -> None:
    """Payments from record 200 on (pacing goes in steps of 16 records: from 1.92 s) wait
    5 s of publishing while orders, inventory and shipping go on at the paced rate; then
    every held payment is sent at once, in order, and pacing goes on. Held records count as
    published throughout."""
    records = _records(1000)
    outage = Outage(TopicId.PAYMENTS, 200, 5.0)
    pacer, producer, notes = _pace(records, [outage])
    assert pacer.sent == 1000
    assert sorted(n for _t, _topic, n in producer.sent) == list(range(1000))
    assert outage.done and outage.began == pytest.approx(1.92)
    assert outage.released == pytest.approx(7.04) and outage.held_s == pytest.approx(5.12)
    assert outage.began is not None and outage.released is not None
    backlog = list(range(201, 702, 4))  # the payments among records 200..703
    assert outage.held == len(backlog) == 126
    at = next(i for i, (_t, _topic, n) in enumerate(producer.sent) if n == 201)
    burst = producer.sent[at:at + len(backlog)]
    assert [n for _t, _topic, n in burst] == backlog  # at once, in the original order
    assert {t for t, _topic, _n in burst} == {outage.released}
    assert [n for _t, _topic, n in producer.sent[at - 3:at]] == [700, 702, 703]
    during = [t for t, topic, n in producer.sent if 200 <= n < 704 and topic is not
              TopicId.PAYMENTS]
    assert during == sorted(during) and during[-1] - during[0] > 4.9  # the others flowed
    began, released = outage.began, outage.released
    assert not [n for t, topic, n in producer.sent if topic is TopicId.PAYMENTS
                and began < t < released]
    assert producer.sent[-1][0] == pytest.approx(9.92)  # pacing went on: 992 / 100 per s
    assert notes == ["payments held back from record 200 for 5s of publishing",
                     "payments held back 5.1s from record 200; its backlog of 126 records "
                     "sent at once"]


def test_outages_run_one_at_a_time_and_one_still_holding_at_the_end_waits_its_length() -> None:
    records = _records(400)
    first, second = Outage(TopicId.INVENTORY, 100, 1.0), Outage(TopicId.SHIPPING, 150, 3.0)
    never = Outage(TopicId.ORDERS, 5000, 1.0)
    _pacer, producer, _notes = _pace(records, [second, never, first])
    assert first.done and second.done and not never.done
    assert not first.ran_out and second.ran_out  # input ends at 4 s, second began at 2 s
    assert second.began == pytest.approx(first.released or 0) and second.held_s >= 3.0
    assert producer.sent[-1][0] >= 5.0 and sorted(n for *_, n in producer.sent) == \
        list(range(400))
    assert never.describe() == "orders not held back: the input ended before record 5,000"


def test_time_parked_for_a_broker_restart_does_not_count_toward_an_outage() -> None:
    clock = _Clock()
    hold = Holdback([Outage(TopicId.PAYMENTS, 0, 2.0)], clock)
    assert hold.take(0, (TopicId.PAYMENTS, {"n": 0})) and hold.active is not None
    assert not hold.take(1, (TopicId.ORDERS, {"n": 1}))
    clock.sleep(1.5)
    hold.parked(1.0)
    clock.sleep(1.0)
    assert hold.due() is None and hold.remaining() == pytest.approx(0.5)
    clock.sleep(0.5)
    ended = hold.due()
    assert ended is not None and ended[0].held_s == 2.0 and ended[1] == [
        (TopicId.PAYMENTS, {"n": 0})]
    assert hold.active is None and not hold.take(2, (TopicId.PAYMENTS, {"n": 2}))


def test_an_outage_that_did_not_run_its_length_is_planned_but_not_injected() -> None:
    faults = schedule(ChaosConfig(kills=0, rebalances=0, broker_restarts=0, bad_bursts=0,
                                  source_outages=2, outage_length=2.0))
    injected = [Injected(OUTAGE, 3.0, 10, "payments held back 2.0s", True),
                Injected(OUTAGE, 9.0, 99, "orders not held back", False)]
    counts = _fault_counts(faults, injected, ChaosConfig(), broker=True)
    assert counts[OUTAGE] == {"planned": 2, "injected": 1}


def test_the_table_gives_the_time_to_ready_after_the_kills_when_measured() -> None:
    outputs = judge_outputs({TopicId.MISMATCHES: [], TopicId.COMMANDS: [], TopicId.DLQ: []},
                            Expected([], []), {})
    measured = {**_results(outputs), "ready_after_kill": {
        "kills": 3, "seconds": [10.0, 31.0, 19.0], "median_s": 19.0, "max_s": 31.0,
        "not_ready": 0}}
    assert "time to ready after a SIGKILL: median 19 s, max 31 s (3 kills: 10, 31, 19 s)" \
        in table(measured).splitlines()
    assert "time to ready" not in table(_results(outputs))  # results from before it
