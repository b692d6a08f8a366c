"""The optional compiled core: what runs, its staleness check, and the same outputs as Python."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams import compiled, native

#: run in a child process: the engine over simulator traffic, printing what it loaded, which
#: engine ran, a canonical form of every output and the stored state of every order
#: (4 partitions, fixed clock). The native engine is given the records' bytes (``on_record``,
#: the worker's one-call path), the Python engine their decoded Events
ENGINE_RUN = """
import hashlib, importlib, json
from schemas.codec import Codec
from streams.bench.data import generate
from streams.config import RuleConfig, load_settings
from streams.engine import MemoryStore, PartitionEngine, core
from streams.inputs import decode_input
from streams.model import Source
from topology.partitioner import partition_for
from topology.topics import BY_ID
from streams.compiled import MODULES
codec = Codec()
stores = [MemoryStore() for _ in range(4)]
engines = [PartitionEngine(RuleConfig(), s, lambda: 1_800_000_000_000) for s in stores]
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
files = [importlib.import_module(m).__file__ for m in MODULES]
print(json.dumps({"files": files, "engine": core.NAME, "outputs": count, "one_call": one_call,
                  "digest": digest.hexdigest(), "states": states.hexdigest()}))
"""


def _engine_run(**env_set: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items()
           if k not in (compiled.PURE_ENV, native.PYTHON_ENGINE_ENV)}
    env.update(env_set)
    done = subprocess.run([sys.executable, "-c", ENGINE_RUN],
                          cwd=compiled.ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=True)
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_the_native_and_compiled_cores_and_pure_python_give_the_same_outputs() -> None:
    pure = _engine_run(**{compiled.PURE_ENV: "1"})
    python = _engine_run(**{native.PYTHON_ENGINE_ENV: "1"})  # compiled with mypyc, if built
    default = _engine_run()  # the native engine, if built
    assert all(str(f).endswith(".py") for f in pure["files"])  # type: ignore[attr-defined]
    assert pure["engine"] == python["engine"] == "python"
    built = compiled.status() == "compiled" or (
        os.environ.get(compiled.PURE_ENV) and bool(compiled.extensions()))
    assert all(str(f).endswith(".so") is bool(built)
               for f in python["files"])  # type: ignore[attr-defined]
    assert default["engine"] == ("native" if native.LIBRARY.exists() and not native.stale()
                                 else "python")
    assert int(pure["outputs"]) > 100  # type: ignore[call-overload]
    assert pure["one_call"] == python["one_call"] == 0
    assert default["one_call"] == (20_000 if default["engine"] == "native" else 0)
    for run in (python, default):
        assert (run["outputs"], run["digest"], run["states"]) == (
            pure["outputs"], pure["digest"], pure["states"])


def test_what_this_process_loaded_is_what_status_says() -> None:
    files = [str(sys.modules[m].__file__) for m in compiled.MODULES
             if __import__(m, fromlist=["_"])]
    assert all(f.endswith(".so") for f in files) is (compiled.status() == "compiled")


def test_a_source_edited_after_the_build_makes_it_stale(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = tmp_path / "compiled.json"
    monkeypatch.setattr(compiled, "MANIFEST", manifest)
    assert compiled.stale_sources() == []  # no build: nothing is stale
    digests = {m: compiled._digest(compiled.source_of(m)) for m in compiled.MODULES}
    manifest.write_text(json.dumps(digests))
    assert compiled.stale_sources() == []
    manifest.write_text(json.dumps({**digests, "streams.rules.catalog": "0" * 64}))
    assert compiled.stale_sources() == ["streams.rules.catalog"]
    manifest.write_text("not json")
    assert compiled.stale_sources() == list(compiled.MODULES)


def test_the_makefile_rebuilds_when_any_compiled_source_changes() -> None:
    makefile = (compiled.ROOT / "Makefile").read_text()
    text = makefile[makefile.index("CORE_SOURCES :=") + len("CORE_SOURCES :="):]
    listed = text.replace("\\\n", " ").split("\n")[0].split()
    assert listed == [str(compiled.source_of(m).relative_to(compiled.ROOT))
                      for m in compiled.MODULES]
