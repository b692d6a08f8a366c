"""`crosscheck chaos` without a broker: the schedule, the bad records, the judging and table."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from builders import BlobStore

from schemas.codec import Codec
from streams.chaos.badinput import KINDS, make_bad
from streams.chaos.monitor import health_word
from streams.chaos.plan import BAD, BROKER, JOIN, KILL, LEAVE, ChaosConfig, schedule
from streams.chaos.report import judge_outputs, table, verdict
from streams.chaos.supervisor import Supervisor
from streams.config import RuleConfig, load_settings
from streams.model import DeadLetter
from streams.verify import Expected
from streams.web.documents import health_doc
from streams.worker.runtime import Record, Runtime
from streams.worker.ticker import STALL_EXIT_CODE
from topology.partitioner import partition_for
from topology.topics import TopicId, Topology

TOPO = Topology(4, "x.", {})


def test_the_schedule_has_every_fault_once_in_a_seeded_order_and_rebalances_alternate() -> None:
    config = ChaosConfig(kills=10, rebalances=4, broker_restarts=2, bad_bursts=4)
    faults = schedule(config)
    assert Counter(f.kind for f in faults) == {KILL: 10, JOIN: 2, LEAVE: 2, BROKER: 2, BAD: 4}
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
            "faults": {k: counts for k in (KILL, JOIN, LEAVE, BROKER, BAD)},
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
        partitions=lambda: [], lag=lambda: [], watermarks=lambda: {})
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
