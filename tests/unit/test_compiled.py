"""The optional compiled core: what runs, its staleness check, and the same outputs as Python."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams import compiled

#: run in a child process: the engine over simulator traffic, printing what it loaded and a
#: canonical form of every output (4 partitions, fixed clock)
ENGINE_RUN = """
import hashlib, importlib, json
from schemas.codec import Codec
from streams.bench.data import generate
from streams.config import RuleConfig, load_settings
from streams.engine import MemoryStore, PartitionEngine
from streams.inputs import decode_input
from topology.partitioner import partition_for
from topology.topics import BY_ID
from streams.compiled import MODULES
codec = Codec()
engines = [PartitionEngine(RuleConfig(), MemoryStore(), lambda: 1_800_000_000_000)
           for _ in range(4)]
digest, count = hashlib.sha256(), 0
for topic, record in generate(20000, 3, load_settings({})):
    event = decode_input(codec, topic, codec.encode(BY_ID[topic].value_schema, record))
    for out in engines[partition_for(event.order_id, 4)].on_event(event):
        digest.update(repr(out).encode()); count += 1
for engine in engines:
    for out in engine.advance_to(2**62):
        digest.update(repr(out).encode()); count += 1
files = [importlib.import_module(m).__file__ for m in MODULES]
print(json.dumps({"files": files, "outputs": count, "digest": digest.hexdigest()}))
"""


def _engine_run(pure: bool) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != compiled.PURE_ENV}
    if pure:
        env[compiled.PURE_ENV] = "1"
    done = subprocess.run([sys.executable, "-c", ENGINE_RUN],
                          cwd=compiled.ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=True)
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_the_compiled_core_and_pure_python_give_the_same_outputs() -> None:
    pure, default = _engine_run(pure=True), _engine_run(pure=False)
    assert all(str(f).endswith(".py") for f in pure["files"])  # type: ignore[attr-defined]
    built = compiled.status() == "compiled"
    assert all(str(f).endswith(".so") is built for f in default["files"])  # type: ignore[attr-defined]
    assert int(pure["outputs"]) > 100  # type: ignore[call-overload]
    assert (default["outputs"], default["digest"]) == (pure["outputs"], pure["digest"])


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
