"""One chaos run: simulated traffic paced into the broker while the faults of the schedule hit
the workers, then the outputs exported and judged against the batch evaluator's.

The scenario is ``crosscheck simulate``'s (every simulator fault at ``fault_rate``), on
topics and a consumer group of the run's own; its expected output is what the simulator's
``--expected`` holds (``streams.batch``), written to ``expected.jsonl`` in the work
directory. The input is published at ``rate`` over the run, so every fault hits the workers
mid-stream. A broker restart first parks the publisher with everything sent acknowledged and
resumes it afterwards: the input's event time runs hundreds of times faster than the wall
clock here, and records published into an outage would otherwise arrive hours of event time
behind inputs the worker has meanwhile ticked idle (the contract's wall-clock idle timeout),
that is, late, legitimately changing decisions. In production event time runs at wall-clock
speed and an outage's backlog stays within the allowed lateness. A source outage is the
opposite on purpose: one input is held back longer than the idle timeout while the others
flow (``publisher``), which the contract has the worker wait for (the input is stalled,
not done), so its backlog must change nothing.
"""

from __future__ import annotations

import math
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from schemas.codec import Codec
from schemas.registry import registry_from
from schemas.validation import format_time
from streams.audit import output_line
from streams.bench.data import drop_topics
from streams.bench.worker import free_port
from streams.chaos.badinput import BadSender
from streams.chaos.monitor import Monitor, Offsets, health
from streams.chaos.plan import (
    BAD,
    BROKER,
    JOIN,
    KILL,
    KINDS,
    LEAVE,
    OUTAGE,
    ChaosConfig,
    Fault,
    check_outages,
    outage_topic,
    schedule,
)
from streams.chaos.publisher import ChaosPacer, Outage
from streams.chaos.recovery import ReadyTimes
from streams.chaos.report import export_outputs, judge_outputs, verdict
from streams.chaos.supervisor import Supervisor
from streams.clients import admin
from streams.clock import wall_ms
from streams.config import Settings
from streams.errors import CrosscheckError
from streams.simulate import FAULTS, SimConfig, expected_outputs, simulate
from streams.verify import expected_records
from streams.worker.lifecycle import data_dir_for
from topology.admin import create_topics
from topology.topics import Topology

Log = Callable[[str], None]


class BrokerControl(Protocol):
    """What the run needs of a broker it may restart: `streams.broker.LocalBroker` is one.
    Stopping must keep the broker's data; start returns once it answers."""

    def stop(self) -> object:
        """Stop the broker (its data stays)."""
        ...

    def start(self) -> object:
        """Start it again and wait until it answers."""
        ...


@dataclass
class Injected:
    """One fault as it happened."""

    kind: str
    at_s: float
    published: int
    detail: str
    #: False when it did not happen (a source outage that did not run its length)
    done: bool = True


@dataclass
class Run:
    """The moving parts of a run, for the fault actions."""

    config: ChaosConfig
    supervisor: Supervisor
    monitor: Monitor
    pacer: ChaosPacer
    bad: BadSender
    broker: BrokerControl | None
    log: Log
    broker_down: bool = False
    #: the time to ready after each SIGKILL
    ready: ReadyTimes = field(default_factory=ReadyTimes)

    def wait_ready(self, name: str, timeout: float = 60.0) -> str:
        """Wait until the slot's worker says it is ready (so that a SIGKILL hits it while it
        processes, not while it starts or recovers); says how long that took."""
        began = time.monotonic()
        slot = self.supervisor.slots[name]
        while time.monotonic() - began < timeout:
            starts = slot.starts  # before asking: a ready is of this start
            if health(slot.port) == "ready":
                self.ready.seen(name, time.monotonic(), starts)
                return f"ready after {time.monotonic() - began:.0f}s"
            self.supervisor.poll()
            time.sleep(0.5)
        return f"not ready after {timeout:.0f}s"

    def wait_alive(self, timeout: float = 90.0) -> list[str]:
        """The slots with a worker running that is not leaving, once there is one (a worker
        that exited, say at start-up while the broker was down, is being restarted)."""
        deadline = time.monotonic() + timeout
        while True:
            self.supervisor.poll()
            alive = sorted(s.name for s in self.supervisor.alive() if s.leaving is None)
            if alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.5)

    def fire(self, fault: Fault) -> str:
        """Inject one fault; returns what was done."""
        sup = self.supervisor
        if fault.kind == KILL:
            alive = self.wait_alive()
            if not alive:
                return "no worker running: nothing to kill"
            name = alive[min(int(fault.pick * len(alive)), len(alive) - 1)]
            waited = self.wait_ready(name)
            starts, killed_at = sup.slots[name].starts, time.monotonic()
            pid = sup.kill(name)
            if pid is not None:
                self.ready.killed(name, killed_at, starts)
            return f"SIGKILL {name} (pid {pid}, {waited})"
        if fault.kind == JOIN:
            sup.start("w2")
            return "w2 started"
        if fault.kind == LEAVE:
            sup.leave("w2")
            return "w2 asked to stop (SIGTERM)"
        if fault.kind == BAD:
            n = self.bad.burst(self.config.burst_size)
            return f"{n} bad records sent"
        assert fault.kind == BROKER and self.broker is not None
        began = time.monotonic()
        self.monitor.excuse(True)
        if not self.pacer.pause():
            self.log("the publisher did not park within 120 s; stopping the broker anyway")
        self.broker_down = True
        self.broker.stop()
        time.sleep(self.config.broker_down)
        self.broker.start()
        self.broker_down = False
        self.pacer.resume()
        self.monitor.excuse(False, grace=15.0)
        return f"broker down and back in {time.monotonic() - began:.1f}s"


def run_chaos(settings: Settings, config: ChaosConfig, log: Log = lambda _: None,
              broker: BrokerControl | None = None) -> dict[str, Any]:
    """Run the scenario with the faults; return the results (see ``report.table``).

    Broker restarts happen only with ``broker``; without it they are skipped and the
    results say so.
    """
    check_outages(config, settings.rules)
    started, began = wall_ms(), time.monotonic()
    tag = uuid.uuid4().hex[:8]
    ss = replace(settings, topic_prefix=f"{settings.topic_prefix}chaos-{tag}.",
                 app_id=f"{settings.app_id}-chaos-{tag}", processing_guarantee="exactly_once")
    topology = Topology(ss.partitions, ss.topic_prefix, ss.topic_overrides)
    workdir = config.workdir or settings.home / "chaos" / tag
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"generating {config.orders:,} orders (seed {config.seed}) and their expected output")
    traffic = simulate(SimConfig(orders=config.orders, seed=config.seed, rules=ss.rules,
                                 faults=dict.fromkeys(FAULTS, config.fault_rate)))
    reference = expected_outputs(traffic.events, ss.rules, ss.partitions)
    with (workdir / "expected.jsonl").open("w", encoding="utf-8") as out:
        out.writelines(output_line(o, wall_clock=False) + "\n" for o in reference)
    expected = expected_records(reference)
    total = len(traffic.events)
    faults = schedule(config, broker_faults=broker is not None, events=total)
    skipped = None if broker is not None else (
        "KAFKA_BOOTSTRAP_SERVERS is set: the broker is not this run's to restart"
        if not settings.uses_local_broker else "no broker control given")
    create_topics(admin(ss), topology)
    supervisor = Supervisor(ss, workdir, ["--batch-size", str(config.batch_size)], log=log)
    for name in ("w1", "w2"):
        supervisor.add(name, free_port())
    ready = ReadyTimes()
    monitor = Monitor(Offsets(ss, topology, ss.app_id), supervisor, config.stuck_after, log,
                      samples_path=workdir / "monitor.jsonl", ready=ready)
    bad = BadSender(ss, topology, Codec(registry_from(ss.schema_registry_url,
                                                      ss.schema_registry_auth)), config.seed)
    outages = [Outage(outage_topic(f.pick), math.ceil(f.at * total), config.outage_length)
               for f in faults if f.kind == OUTAGE]
    pacer = ChaosPacer(ss, traffic.events, config.rate, outages, lambda detail: log(
        f"{supervisor.elapsed():7.1f}s  {pacer.sent / total:4.0%} published  {OUTAGE:15} "
        f"{detail}"))
    run = Run(config, supervisor, monitor, pacer, bad, broker, log, ready=ready)
    injected: list[Injected] = []
    finished = False
    seconds = total / config.rate
    log(f"{total:,} events at {config.rate:g}/s (~{seconds:.0f} s); "
        f"{len(faults)} faults; topics {ss.topic_prefix}*; logs in {workdir}")
    try:
        supervisor.start("w1")
        monitor.start()
        pacer.start()
        for fault in faults:
            if fault.kind == OUTAGE:  # the publisher holds the input back itself
                continue
            while pacer.is_alive() and pacer.sent < fault.at * total:
                supervisor.poll()
                time.sleep(0.2)
            detail = run.fire(fault)
            injected.append(Injected(fault.kind, supervisor.elapsed(), pacer.sent, detail))
            log(f"{supervisor.elapsed():7.1f}s  {pacer.sent / total:4.0%} published  "
                f"{fault.kind:15} {detail}")
        while pacer.is_alive():
            supervisor.poll()
            time.sleep(0.2)
        injected = sorted(injected + [_outage_injected(o, supervisor.began) for o in outages],
                          key=lambda i: i.at_s)
        if pacer.error:
            raise CrosscheckError(pacer.error)
        log(f"{supervisor.elapsed():7.1f}s  all {total:,} events published; waiting for the "
            "workers to judge everything")
        finished = wait_until_judged(supervisor, monitor.offsets, ss.rules.idle_timeout / 1000,
                                     config.finish_timeout, log)
        codes = supervisor.stop_all()
        log(f"{supervisor.elapsed():7.1f}s  workers stopped: exit codes {codes}")
    finally:
        supervisor.stop_all()
        monitor.stop()
        if run.broker_down and broker is not None:
            broker.start()
    log("exporting mismatches, commands and dead letters (read_committed)")
    got = export_outputs(ss, topology, workdir)
    outputs = judge_outputs(got, expected, bad.sent)
    ok, why = verdict(outputs)
    if not config.keep:
        for slot in supervisor.slots.values():
            shutil.rmtree(data_dir_for(ss, slot.port), ignore_errors=True)
        dropped = drop_topics(settings, [ss.topic_prefix, ss.app_id])
        log(f"dropped {len(dropped)} topics of the run")
    return {
        "version": 1, "started_at": format_time(started),
        "seconds": round(time.monotonic() - began, 1), "workdir": str(workdir),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "scenario": {"orders": config.orders, "events": len(traffic.events),
                     "seed": config.seed, "partitions": ss.partitions, "rate": config.rate,
                     "topic_prefix": ss.topic_prefix, "app_id": ss.app_id},
        "faults": _fault_counts(faults, injected, config, broker is not None),
        "broker_restarts_skipped": skipped,
        "source_outages": {"length_s": config.outage_length,
                           "idle_timeout_s": ss.rules.idle_timeout / 1000,
                           "outages": [_outage_doc(o, supervisor.began) for o in outages]},
        "timeline": [asdict(i) for i in injected],
        "exits": supervisor.exits_doc(),
        "restarts": _restarts(supervisor),
        "ready_after_kill": ready.doc(),
        "bad_records": {"sent": len(bad.sent), "by_kind": dict(sorted(bad.by_kind.items()))},
        "outputs": outputs,
        "stuck": _stuck(supervisor, monitor),
        "finished": finished,
        "verdict": {"ok": ok and finished, "why": why if finished else [*why, "not finished"]},
    }


def wait_until_judged(supervisor: Supervisor, offsets: Offsets, idle_timeout: float,
                      timeout: float, log: Log) -> bool:
    """Wait (restarting workers that exit) until every input and tick record is committed,
    every busy partition has had ticks, and nothing moved (offsets, outputs) for longer
    than the idle timeout: the inputs have gone idle and the final decisions are out."""
    quiet = idle_timeout + 10.0
    deadline = time.monotonic() + timeout
    last: Any = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        supervisor.poll()
        try:
            tps = offsets.inputs + offsets.ticks
            snap = (offsets.committed(tps), offsets.ends(tps), offsets.ends(offsets.outputs))
        except Exception:  # the coordinator may be loading after a restart
            time.sleep(1)
            continue
        committed, ends, _ = snap
        busy = {p for t, p in offsets.inputs if ends[(t, p)]}
        done = all(committed[tp] >= ends[tp] for tp in tps) and \
            all(ends[(t, p)] > 0 for t, p in offsets.ticks if p in busy)
        now = time.monotonic()
        if not done or snap != last:
            last, since = snap, now
        elif now - since >= quiet:
            return True
        time.sleep(1)
    lag = sum(ends[tp] - committed[tp] for tp in ends if tp in committed) if last else None
    log(f"the workers did not finish within {timeout:.0f}s (lag {lag})")
    return False


def _outage_injected(outage: Outage, began: float) -> Injected:
    """A source outage as it happened (or did not), for the timeline."""
    at_s = round((outage.began if outage.began is not None else time.monotonic()) - began, 1)
    return Injected(OUTAGE, at_s, outage.start, outage.describe(), outage.done)


def _outage_doc(outage: Outage, began: float) -> dict[str, Any]:
    """A source outage for the results."""
    return {"topic": str(outage.topic), "from_record": outage.start,
            "at_s": None if outage.began is None else round(outage.began - began, 1),
            "held_s": outage.held_s, "records_held": outage.held,
            "other_inputs_ended_first": outage.ran_out, "done": outage.done}


def _fault_counts(faults: list[Fault], injected: list[Injected], config: ChaosConfig,
                  broker: bool) -> dict[str, dict[str, int]]:
    planned = Counter(f.kind for f in faults)
    done = Counter(i.kind for i in injected if i.done and not i.detail.startswith("no worker"))
    counts = {k: {"planned": planned[k], "injected": done[k]} for k in KINDS}
    if not broker:
        counts[BROKER]["planned"] = 0
    return counts


def _restarts(supervisor: Supervisor) -> dict[str, int]:
    by_cause = supervisor.restarts
    return {"total": sum(by_cause.values()), "killed": by_cause["killed"],
            "stalled": by_cause["stalled"], "refused": by_cause["refused"],
            "crashed": by_cause["crashed"],
            "starts": sum(s.starts for s in supervisor.slots.values())}


def _stuck(supervisor: Supervisor, monitor: Monitor) -> dict[str, Any]:
    stalls = [e.at_s for e in supervisor.exits if e.cause == "stalled"]
    doc = monitor.doc()
    return {"stuck": bool(stalls or doc["episodes"]), "exits_75": len(stalls),
            "exit_75_at_s": stalls, "monitor": doc}
