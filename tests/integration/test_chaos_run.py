"""A short `crosscheck chaos` run on the session's broker: exact outputs under every fault kind."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from streams.broker import LocalBroker
from streams.chaos import ChaosConfig, run_chaos, table
from streams.chaos.plan import BAD, BROKER, JOIN, KILL, LEAVE, OUTAGE
from streams.config import Settings

pytestmark = pytest.mark.integration


def test_a_short_chaos_run_loses_duplicates_and_invents_nothing(
        settings: Settings, local_broker: LocalBroker | None, tmp_path: Path) -> None:
    """Two SIGKILLs, a second worker joining and leaving, a broker stop and restart (local
    broker only), two bursts of bad records and a source outage (one input held back 8 s,
    longer than the workers' 5 s idle timeout, while the others flow), while 500 orders are
    published: every expected mismatch and command is exported exactly once, nothing else
    is, and every bad record is in the dead-letter topic once."""
    ss = replace(settings, rules=replace(settings.rules, idle_timeout=5_000))
    config = ChaosConfig(orders=500, seed=3, rate=250.0, kills=2, rebalances=2,
                         broker_restarts=1, bad_bursts=2, burst_size=12, source_outages=1,
                         outage_length=8.0, stuck_after=60.0, batch_size=500,
                         finish_timeout=300.0, workdir=tmp_path / "chaos")
    lines: list[str] = []
    results = run_chaos(ss, config, lines.append, local_broker)
    report = table(results)
    print("\n".join(lines), report, sep="\n")

    faults = results["faults"]
    assert faults[KILL]["injected"] == 2 and faults[JOIN]["injected"] == 1
    assert faults[LEAVE]["injected"] == 1 and faults[BAD]["injected"] == 2
    assert faults.get(BROKER, {"injected": 0})["injected"] == (1 if local_broker else 0)
    assert faults[OUTAGE] == {"planned": 1, "injected": 1}, results["timeline"]
    [outage] = results["source_outages"]["outages"]
    assert outage["held_s"] >= 8.0 > results["source_outages"]["idle_timeout_s"]
    assert outage["records_held"] > 100 and not outage["other_inputs_ended_first"], outage
    assert results["restarts"]["killed"] == 2, results["exits"]
    ready = results["ready_after_kill"]  # each killed worker was restarted and got ready
    assert ready["kills"] == 2 and ready["not_ready"] == 0 and len(ready["seconds"]) == 2, ready
    assert 0 < ready["median_s"] <= ready["max_s"] == max(ready["seconds"]) < 120, ready
    assert f"time to ready after a SIGKILL: median {ready['median_s']:.0f} s" in report
    assert results["finished"], report

    out = results["outputs"]
    for name in ("mismatches_open", "mismatches_resolved", "commands", "dlq"):
        c = out[name]
        assert (c["lost"], c["duplicated"], c["extra"]) == (0, 0, 0), (name, c, report)
        assert c["got"] == c["expected"], (name, c)
    assert out["mismatches_open"]["changed"] == 0, report
    assert out["mismatches_open"]["expected"] > 20 and out["commands"]["expected"] > 10
    assert out["dlq"]["expected"] == results["bad_records"]["sent"] == 24
    assert results["verdict"] == {"ok": True, "why": []}, report
