"""`crosscheck replay` on the real broker: equal to the live worker, warm-up, stop and resume.

The determinism scenario is the simulator's traffic with two adjustments, both about the
live engine rather than the replay. The engine evicts an order's history once its watermark
passes the order's last due decision plus the allowed lateness; a later event of the order
starts a fresh history, and whether it does can depend on how the worker happened to
interleave its inputs (an input that is slow to go idle holds the watermark back). The
simulator's orders go on for days (deliveries, returns), so with the default thresholds a
few of their late events land on either side of that line. With a 12 h allowed lateness
and each order cut to its first 20 h, every order stays one history in the live worker, and
its output is a function of the events alone; that is the premise of comparing it with a
replay. The replay's default warm-up is then 24 h + 12 h, so ranges late in the scenario do
skip the beginning of the input.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from schemas.validation import parse_event_json, parse_event_time
from streams.batch import evaluate
from streams.bench.procs import Child, crosscheck_argv, env_for
from streams.bench.worker import free_port
from streams.clients import confluent_config
from streams.config import RuleConfig, Settings
from streams.model import Command, Mismatch
from streams.produce import EventPublisher, ParsedLine
from streams.records import command_record, event_from_record, mismatch_record, source_of
from streams.replay import Replay, ReplayOptions, ReplayWindow, default_warmup, select_records
from streams.replay.offsets import committed_offsets
from streams.replay.sinks import COMMANDS_FILE, MISMATCHES_FILE
from streams.simulate import FAULTS, SimConfig, simulate
from tests.integration.topic_read import read_records
from topology.partitioner import partition_for
from topology.topics import INPUTS, TopicId, Topology

pytestmark = pytest.mark.integration

HOUR, MINUTE, SECOND = 3_600_000, 60_000, 1_000
Record = tuple[TopicId, dict[str, Any]]

#: the live worker and the replays of the determinism test (see the module docstring)
LONG_LATENESS = RuleConfig(allowed_lateness=12 * HOUR, idle_timeout=2 * SECOND)
SIM_START = 1_795_219_200_000  # 2026-11-21T00:00:00Z
ORDER_CUT = 20 * HOUR


# -- scenarios ------------------------------------------------------------------------------


def sim_records(orders: int, seed: int, rules: RuleConfig) -> list[Record]:
    """Simulated traffic over 96 h (every fault at 3 %), each order cut to its first 20 h."""
    traffic = simulate(SimConfig(orders=orders, seed=seed, start=SIM_START, span=96 * HOUR,
                                 faults=dict.fromkeys(FAULTS, 0.03), rules=rules))
    first: dict[str, int] = {}
    for _, r in traffic.events:
        first[r["order_id"]] = min(first.get(r["order_id"], r["event_time"]), r["event_time"])
    return [(t, r) for t, r in traffic.events
            if r["event_time"] - first[r["order_id"]] <= ORDER_CUT]


def publish(settings: Settings, records: list[Record]) -> None:
    """Publish input records keyed by order_id (murmur2), in order."""
    publisher = EventPublisher(settings)
    for topic, record in records:
        publisher.publish(ParsedLine(topic, record["order_id"], record))
    publisher.flush()
    assert not publisher.errors, publisher.errors


def normalized(mismatches: list[dict[str, Any]], commands: list[dict[str, Any]]
               ) -> tuple[list[bytes], list[bytes]]:
    """Records without their wall-clock fields, sorted (times as epoch ms or ISO text)."""
    def norm(records: list[dict[str, Any]], drop: str) -> list[bytes]:
        return sorted(orjson.dumps({k: v for k, v in r.items() if k != drop},
                                   option=orjson.OPT_SORT_KEYS) for r in records)
    return norm(mismatches, "detected_at"), norm(commands, "issued_at")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON Lines file."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def records_of(outputs: list[Mismatch | Command]) -> tuple[list[dict[str, Any]],
                                                          list[dict[str, Any]]]:
    """Avro-form records of engine outputs, mismatches and commands apart."""
    return ([mismatch_record(o) for o in outputs if isinstance(o, Mismatch)],
            [command_record(o) for o in outputs if isinstance(o, Command)])


def as_epoch(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON-exported records with their times back in epoch ms (to compare with Avro ones)."""
    return [{k: parse_event_time(v) if k.endswith("_at") and isinstance(v, str) else v
             for k, v in r.items()} for r in records]


def replay(settings: Settings, window: ReplayWindow, out: Path | None, name: str,
           **options: Any) -> Any:
    """Run a replay in-process."""
    return Replay(settings, ReplayOptions(window, name, out, **options)).run()


# -- the live worker ------------------------------------------------------------------------


def run_live_worker(settings: Settings, topology: Topology, log: Path,
                    timeout: float = 240.0, quiet: float = 8.0) -> None:
    """Run `crosscheck worker` until every input and tick is committed and its outputs have
    not changed for ``quiet`` seconds (by then idle inputs let the final decisions come)."""
    consumer = Consumer(confluent_config(settings, **{"group.id": settings.app_id,
                                                      "enable.auto.commit": False}))
    inputs = [TopicPartition(topology.name(t), p) for t in INPUTS
              for p in range(topology.partitions)]
    ticks = [TopicPartition(topology.name(TopicId.TICKS), p) for p in range(topology.partitions)]
    outputs = [TopicPartition(topology.name(t), p) for t in (TopicId.MISMATCHES, TopicId.COMMANDS)
               for p in range(topology.partitions)]

    def ends(tps: list[TopicPartition]) -> list[int]:
        return [consumer.get_watermark_offsets(tp, timeout=15, cached=False)[1] for tp in tps]

    worker = Child(["worker", "--web-port", str(free_port())], settings, log)
    try:
        with worker:
            began = time.monotonic()
            last: Any = None
            since = began
            while True:
                assert worker.alive(), worker.log_tail()
                committed = [max(o, 0) for o in committed_offsets(consumer, inputs + ticks)]
                snapshot = (committed, ends(inputs + ticks), ends(outputs))
                caught_up = committed == snapshot[1] and any(snapshot[1][len(inputs):])
                now = time.monotonic()
                if not caught_up or snapshot != last:
                    last, since = snapshot, now
                elif now - since >= quiet:
                    return
                assert now - began < timeout, f"worker did not finish\n{worker.log_tail()}"
                time.sleep(0.5)
    finally:
        consumer.close()


def read_live(settings: Settings, topology: Topology) -> tuple[list[dict[str, Any]],
                                                               list[dict[str, Any]]]:
    """The live worker's mismatches and commands (read_committed)."""
    return (read_records(settings, topology.name(TopicId.MISMATCHES)),
            read_records(settings, topology.name(TopicId.COMMANDS)))


# -- tests ----------------------------------------------------------------------------------


def test_replay_equals_the_live_worker_for_several_ranges(
        settings: Settings, topology: Topology, tmp_path: Path) -> None:
    """Mismatches and commands decided in [from, to): live worker == replay, range by range,
    including ranges that cut orders in half and ranges that skip the start of the input."""
    s = dataclasses.replace(settings, rules=LONG_LATENESS)
    records = sim_records(1500, seed=21, rules=s.rules)
    publish(s, records)
    run_live_worker(s, topology, tmp_path / "worker.log")
    live_m, live_c = read_live(s, topology)
    assert live_m and live_c
    assert len({m["mismatch_id"] for m in live_m if m["status"] == "OPEN"}) == \
        sum(1 for m in live_m if m["status"] == "OPEN")

    warmup = default_warmup(s.rules)
    read: dict[int, int] = {}  # range -> input records older than its warm-up
    first: dict[str, int] = {}  # order_id -> its first event time
    for _, r in records:
        first[r["order_id"]] = min(first.get(r["order_id"], r["event_time"]), r["event_time"])
    # busy hours of the simulated days: a range from the start, a short one, cuts at odd times
    ranges = [(9 * HOUR, 13 * HOUR), (36 * HOUR + 20 * MINUTE, 38 * HOUR),
              (62 * HOUR, 62 * HOUR + 45 * MINUTE), (84 * HOUR + 17 * MINUTE, 90 * HOUR)]
    for n, (a, b) in enumerate(ranges):
        window = ReplayWindow(SIM_START + a, SIM_START + b, warmup, s.rules.allowed_lateness)
        out = tmp_path / f"range-{n}"
        result = replay(s, window, out, f"range-{n}")
        assert result.done
        got_m, got_c = read_jsonl(out / MISMATCHES_FILE), read_jsonl(out / COMMANDS_FILE)
        want_m, want_c = select_records(window, live_m, live_c)
        assert want_m, f"range {n} has no decision to compare"
        assert normalized(as_epoch(got_m), as_epoch(got_c)) == normalized(want_m, want_c), \
            f"range {n}: replay {len(got_m)}/{len(got_c)} vs live {len(want_m)}/{len(want_c)}"
        # orders cut in half: begun before --from, decided in the range
        cut = {m["order_id"] for m in want_m if first[m["order_id"]] < window.start}
        assert cut, f"range {n} cuts no order in half"
        # the start offsets skip the input older than the warm-up (minus the lateness margin)
        target = window.read_from - window.lateness
        newer = sum(1 for _, r in records if r["event_time"] >= target)
        assert result.counts.records <= newer, (n, result.counts.records, newer)
        read[n] = len(records) - newer
    assert read[2] > 0 and read[3] > len(records) // 4, read

    # --emit-commands: the replay's commands land on the live command topic with the live ids
    window = ReplayWindow(SIM_START + ranges[3][0], SIM_START + ranges[3][1], warmup,
                          s.rules.allowed_lateness)
    result = replay(s, window, None, "emit", emit_commands=True)
    after = read_records(s, topology.name(TopicId.COMMANDS))
    assert len(after) == len(live_c) + result.counts.commands > len(live_c)
    assert {c["command_id"] for c in after} == {c["command_id"] for c in live_c}
    backfill = read_records(s, topology.name(TopicId.BACKFILL_COMMANDS))
    assert normalized([], backfill)[1] == normalized([], select_records(window, live_m,
                                                                        live_c)[1])[1]


def _explicit(order: str, t: int, topic: TopicId, kind: str, **fields: Any) -> Record:
    event = {"event_id": f"{order}-{kind}-{t}", "order_id": order, "type": kind,
             "event_time": t, **fields}
    return topic, parse_event_json(topic, orjson.dumps(event))


def warmup_records(t0: int, partitions: int) -> list[Record]:
    """Two faulty orders that start before --from (t0 + 90 s) and are decided after it, and
    healthy orders on every partition every 10 s from t0 - 10 min to t0 + 20 min."""
    out: list[Record] = []
    o = TopicId.ORDERS, TopicId.PAYMENTS, TopicId.INVENTORY, TopicId.SHIPPING
    placed = {"user_id": "u", "currency": "CNY", "total_amount": 100,
              "items": [{"sku": "A", "quantity": 1, "unit_price": 100}]}
    pay = {"payment_id": "", "amount": 100, "currency": "CNY"}
    out += [_explicit("late-a", t0, o[0], "PLACED", **placed),
            _explicit("late-a", t0 + SECOND, o[2], "RESERVED", reservation_id="ra", sku="A",
                      quantity=1)]
    out += [_explicit("late-b", t0 + 10 * SECOND, o[0], "PLACED", **placed),
            _explicit("late-b", t0 + 11 * SECOND, o[2], "RESERVED", reservation_id="rb",
                      sku="A", quantity=1),
            _explicit("late-b", t0 + 12 * SECOND, o[1], "SUCCEEDED", **{**pay,
                      "payment_id": "pb"}),
            _explicit("late-b", t0 + 13 * SECOND, o[2], "CONFIRMED", reservation_id="rb",
                      sku="A", quantity=1)]
    n = 0
    for t in range(t0 - 10 * MINUTE, t0 + 20 * MINUTE, 10 * SECOND):
        for p in range(partitions):
            while partition_for(order := f"clock-{n}", partitions) != p:
                n += 1
            n += 1
            rid, pid, sid = f"{order}-r", f"{order}-p", f"{order}-s"
            out += [_explicit(order, t, o[0], "PLACED", **placed),
                    _explicit(order, t + 100, o[2], "RESERVED", reservation_id=rid, sku="A",
                              quantity=1),
                    _explicit(order, t + 200, o[1], "SUCCEEDED", **{**pay, "payment_id": pid}),
                    _explicit(order, t + 300, o[2], "CONFIRMED", reservation_id=rid, sku="A",
                              quantity=1),
                    _explicit(order, t + 400, o[3], "CREATED", shipment_id=sid,
                              items=[{"sku": "A", "quantity": 1}])]
    return sorted(out, key=lambda r: r[1]["event_time"])


SHORT = RuleConfig(allowed_lateness=20 * SECOND, payment_timeout=2 * MINUTE,
                   reservation_timeout=MINUTE, shipment_timeout=5 * MINUTE,
                   payment_grace=MINUTE, release_timeout=2 * MINUTE, tcc_grace=30 * SECOND)
T0 = 1_795_255_200_000  # 2026-11-21T10:00:00Z


def test_warmup_judges_orders_begun_before_from(settings: Settings, topology: Topology,
                                                tmp_path: Path) -> None:
    """An order reserved before --from and decided after it is found with the default
    warm-up, exactly as the batch evaluator finds it; without a warm-up it is missed."""
    s = dataclasses.replace(settings, rules=SHORT)
    records = warmup_records(T0, topology.partitions)
    publish(s, records)
    window = ReplayWindow(T0 + 90 * SECOND, T0 + 10 * MINUTE, default_warmup(SHORT),
                          SHORT.allowed_lateness)
    result = replay(s, window, tmp_path / "warm", "warm")
    assert result.done
    got = normalized(as_epoch(read_jsonl(tmp_path / "warm" / MISMATCHES_FILE)),
                     as_epoch(read_jsonl(tmp_path / "warm" / COMMANDS_FILE)))
    events = [event_from_record(source_of(t), r) for t, r in records]
    expected = evaluate(events, SHORT, partitions=topology.partitions, until=window.end,
                        clock=lambda: 0)
    assert got == normalized(*select_records(window, *records_of(expected)))
    types = {(orjson.loads(m)["order_id"], orjson.loads(m)["type"]) for m in got[0]}
    assert ("late-a", "RESERVATION_WITHOUT_PAYMENT") in types
    assert ("late-b", "PAID_NOT_SHIPPED") in types

    cold = dataclasses.replace(window, warmup=0)
    replay(s, cold, tmp_path / "cold", "cold")
    missed = {m["order_id"] for m in read_jsonl(tmp_path / "cold" / MISMATCHES_FILE)}
    assert not missed & {"late-a", "late-b"}


def _cli(settings: Settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*crosscheck_argv(), *args], env=env_for(settings), text=True,
                          capture_output=True, timeout=timeout, check=False)


def test_stop_and_resume_give_the_same_output(settings: Settings, topology: Topology,
                                              tmp_path: Path) -> None:
    """A replay stopped several times (at checkpoints, and by SIGINT) and resumed writes
    exactly what an uninterrupted one writes, to files and to the backfill topics."""
    s = dataclasses.replace(settings, rules=LONG_LATENESS)
    publish(s, sim_records(800, seed=5, rules=s.rules))
    rng = ["--from", "2026-11-22T06:00:00Z", "--to", "2026-11-23T18:00:00Z", "--quiet"]
    done = _cli(s, "replay", *rng, "--name", "whole", "--out", str(tmp_path / "whole"))
    assert done.returncode == 0, done.stderr
    reference = normalized(read_jsonl(tmp_path / "whole" / MISMATCHES_FILE),
                           read_jsonl(tmp_path / "whole" / COMMANDS_FILE))
    assert reference[0] and reference[1]

    # stopped at checkpoints after 500, 1000 and 3000 records read, then to the end
    for stop in ("500", "1000", "3000", None):
        more = ["--stop-after", stop] if stop else []
        run = _cli(s, "replay", *rng, "--name", "parts", "--out", str(tmp_path / "parts"),
                   "--checkpoint-every", "0.2", *more)
        assert run.returncode == (3 if stop else 0), run.stderr
    again = _cli(s, "replay", *rng, "--name", "parts", "--out", str(tmp_path / "parts"))
    assert again.returncode == 0 and "already complete" in again.stderr
    assert normalized(read_jsonl(tmp_path / "parts" / MISMATCHES_FILE),
                      read_jsonl(tmp_path / "parts" / COMMANDS_FILE)) == reference

    # SIGINT while running (exit 3 at a checkpoint, or 0 if it was already done), then resume
    child = Child(["replay", *rng[:-1], "--name", "sig", "--out", str(tmp_path / "sig"),
                   "--checkpoint-every", "0.1", "--progress-every", "0.1"], s,
                  tmp_path / "sig.log").start()
    try:
        deadline = time.monotonic() + 60
        while "records" not in child.log_tail() and child.alive():
            assert time.monotonic() < deadline, child.log_tail()
            time.sleep(0.05)
        if child.alive():
            child.proc.send_signal(signal.SIGINT)  # type: ignore[union-attr]
        assert child.proc.wait(60) in (0, 3), child.log_tail()  # type: ignore[union-attr]
    finally:
        child.stop()
    resumed = _cli(s, "replay", *rng, "--name", "sig", "--out", str(tmp_path / "sig"))
    assert resumed.returncode == 0, resumed.stderr
    assert normalized(read_jsonl(tmp_path / "sig" / MISMATCHES_FILE),
                      read_jsonl(tmp_path / "sig" / COMMANDS_FILE)) == reference

    # to the backfill topics, in transactions: stopped twice, resumed, nothing twice
    for stop in ("700", "2500", None):
        more = ["--stop-after", stop] if stop else []
        run = _cli(s, "replay", *rng, "--name", "kafka", "--checkpoint-every", "0.2", *more)
        assert run.returncode == (3 if stop else 0), run.stderr
    topics = [read_records(s, topology.name(t))
              for t in (TopicId.BACKFILL_MISMATCHES, TopicId.BACKFILL_COMMANDS)]
    assert normalized(*topics) == normalized(*[as_epoch(read_jsonl(tmp_path / "whole" / f))
                                               for f in (MISMATCHES_FILE, COMMANDS_FILE)])


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_crash_around_delivery_loses_and_repeats_nothing(
        settings: Settings, topology: Topology, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    """The process dies after a checkpoint saved its outputs as pending, before or after they
    were delivered: the next run delivers them exactly once, to files and to Kafka."""
    s = dataclasses.replace(settings, rules=LONG_LATENESS)
    publish(s, sim_records(500, seed=8, rules=s.rules))
    window = ReplayWindow(SIM_START + 30 * HOUR, SIM_START + 60 * HOUR,
                          default_warmup(s.rules), s.rules.allowed_lateness)
    replay(s, window, tmp_path / "ref", "ref")
    reference = normalized(as_epoch(read_jsonl(tmp_path / "ref" / MISMATCHES_FILE)),
                           as_epoch(read_jsonl(tmp_path / "ref" / COMMANDS_FILE)))
    assert reference[0]

    from streams.replay import runner

    real = runner.Replay._deliver

    def dying(self: Any, ck: Any, outputs: list[Any], *args: Any) -> None:
        if outputs and when == "before":
            raise KeyboardInterrupt("killed before delivering")
        real(self, ck, outputs, *args)
        if outputs:
            raise KeyboardInterrupt("killed after delivering")

    for out, name in ((tmp_path / "crash", "crash-file"), (None, "crash-kafka")):
        monkeypatch.setattr(runner.Replay, "_deliver", dying)
        with pytest.raises(KeyboardInterrupt):
            replay(s, window, out, name)
        monkeypatch.setattr(runner.Replay, "_deliver", real)
        assert replay(s, window, out, name).done
    files = normalized(as_epoch(read_jsonl(tmp_path / "crash" / MISMATCHES_FILE)),
                       as_epoch(read_jsonl(tmp_path / "crash" / COMMANDS_FILE)))
    assert files == reference
    topics = [read_records(s, topology.name(t))
              for t in (TopicId.BACKFILL_MISMATCHES, TopicId.BACKFILL_COMMANDS)]
    assert normalized(*topics) == reference
