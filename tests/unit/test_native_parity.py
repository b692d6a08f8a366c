"""The native engine gives the Python engine's outputs and stored bytes, record for record."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from streams import native

ROOT = Path(__file__).resolve().parents[2]

#: run in a child process: the engine over simulator traffic, printing which engine ran, a
#: canonical form of every output and the stored state of every order (4 partitions, fixed
#: clock). The native engine is given the records' bytes (``on_record``,
#: the worker's one-call path), the Python engine their decoded Events
ENGINE_RUN = """
import hashlib, json
from schemas.codec import Codec
from streams.bench.data import generate
from streams.config import RuleConfig, load_settings
from streams.engine import MemoryStore, PartitionEngine, core
from streams.inputs import decode_input
from streams.model import Source
from topology.partitioner import partition_for
from topology.topics import BY_ID
from streams.model import Severity
from streams.rulebook import CommandMode, RuleSetting
codec = Codec()
RULES = {rules}
stores = [MemoryStore() for _ in range(4)]
engines = [PartitionEngine(RULES, s, lambda: 1_800_000_000_000) for s in stores]
fast = [core.record_engine(e) for e in engines]
digest, count, one_call = hashlib.sha256(), 0, 0
states = hashlib.sha256()
for i, (topic, record) in enumerate(generate(20000, 3, load_settings({}))):
    value = codec.encode(BY_ID[topic].value_schema, record)
    p = partition_for(record["order_id"], 4)
    done = fast[p] and fast[p].on_record(Source(topic.value), value,
                                         int.from_bytes(value[1:5], "big"), p, 4)
    if done:
        outputs = done[0]; one_call += 1
    else:
        outputs = engines[p].on_event(decode_input(codec, topic, value))
    for out in outputs:
        digest.update(repr(out).encode()); count += 1
    if i == 10000:  # halfway: the stored state of every order, byte for byte
        for s in stores:
            for oid in s.order_ids():
                states.update(oid.encode() + s.raw_order(oid))
for engine in engines:
    for out in engine.advance_to(2**62):
        digest.update(repr(out).encode()); count += 1
print(json.dumps({"engine": core.NAME, "outputs": count, "one_call": one_call,
                  "digest": digest.hexdigest(), "states": states.hexdigest()}))
"""


#: a rules file of every kind of setting: modes (shadow by default, one rule live, one off),
#: a rule off, a severity, a rule's own duration
MIXED = ("RuleConfig(commands=CommandMode.SHADOW, per_rule=("
         "RuleSetting('CANCELLED_BUT_RESERVED', commands=CommandMode.OFF), "
         "RuleSetting('DUPLICATE_PAYMENT', commands=CommandMode.LIVE), "
         "RuleSetting('PAYMENT_NOT_APPLIED', enabled=False), "
         "RuleSetting('PAYMENT_WITHOUT_RESERVATION', threshold=30_000), "
         "RuleSetting('TCC_HANGING', severity=Severity.CRITICAL)))")


def _engine_run(rules: str = "RuleConfig()", **env_set: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items()
           if k not in (native.PURE_ENV, native.PYTHON_ENGINE_ENV)}
    env.update(env_set)
    done = subprocess.run([sys.executable, "-c", ENGINE_RUN.replace("{rules}", rules)],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=True)
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_the_native_and_the_python_engine_give_the_same_outputs() -> None:
    python = _engine_run(**{native.PURE_ENV: "1"})
    default = _engine_run()  # the native engine (make test runs only where it is built)
    spec = importlib.util.find_spec(native.MODULE)
    built = spec is not None and spec.origin is not None and not native.stale(Path(spec.origin))
    assert python["engine"] == "python"
    assert default["engine"] == ("native" if built else "python")
    assert int(python["outputs"]) > 100  # type: ignore[call-overload]
    assert python["one_call"] == 0
    assert default["one_call"] == (20_000 if default["engine"] == "native" else 0)
    assert (default["outputs"], default["digest"], default["states"]) == (
        python["outputs"], python["digest"], python["states"])


def test_the_engines_agree_under_a_rules_file() -> None:
    python = _engine_run(MIXED, **{native.PURE_ENV: "1"})
    default = _engine_run(MIXED)
    assert int(python["outputs"]) > 100  # type: ignore[call-overload]
    assert (default["outputs"], default["digest"], default["states"]) == (
        python["outputs"], python["digest"], python["states"])
    assert python["digest"] != _engine_run(**{native.PURE_ENV: "1"})["digest"]
