"""The optional native core: when it runs, its staleness check, and its order objects.

That it gives the same outputs and the same stored bytes as the Python engine is checked in
``test_compiled.py`` (every core over 20,000 simulator events); the engine and rules tests
run against it when it is built, and once more in pure Python (``make test``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from builders import RULES, T0, inv, pay, placed, ship
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import compiled, native
from streams.engine import MemoryStore, PartitionEngine, core
from streams.engine.state import OrderState, OrderStateV1, encode_order
from streams.engine.state import decode_order as python_decode
from topology.partitioner import partition_for

NEEDS_BUILD = pytest.mark.skipif(native.status() != "native",
                                 reason="the native core is not built (make native)")


def _status_with(**env: str) -> str:
    code = "import streams.native as n; print(n.status())"
    done = subprocess.run([sys.executable, "-c", code], cwd=compiled.ROOT, text=True,
                          capture_output=True, check=True,
                          env={"PATH": "/usr/bin:/bin", **env})
    return done.stdout.strip()


def test_the_switches_choose_the_python_engine() -> None:
    assert _status_with(CROSSCHECK_PURE_PYTHON="1") == "pure"
    assert _status_with(CROSSCHECK_PYTHON_ENGINE="1") == "python"
    assert _status_with() == ("native" if native.LIBRARY.exists() and not native.stale()
                              else native.status())


def test_a_source_edited_after_the_build_makes_it_stale(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = tmp_path / "native.json"
    monkeypatch.setattr(native, "MANIFEST", manifest)
    assert native.stale() is False  # no build: nothing is stale
    digests = native._digests()
    assert set(digests) >= {"native/Cargo.toml", "native/Cargo.lock", "native/src/lib.rs",
                            "native/src/engine.rs"}
    manifest.write_text(json.dumps(digests))
    assert native.stale() is False
    manifest.write_text(json.dumps({**digests, "native/src/engine.rs": "0" * 64}))
    assert native.stale() is True
    manifest.write_text("not json")
    assert native.stale() is True


def _orders() -> list[OrderState]:
    store = MemoryStore()
    engine = PartitionEngine(RULES, store, lambda: 7)
    for event in (placed(T0, total=5), pay("SUCCEEDED", T0 + 1, amount=4),
                  inv("RESERVED", T0 + 2), ship("CREATED", T0 + 3, items=[("A", 2), ("B", 1)]),
                  pay("SUCCEEDED", T0 + 4, "p2"), inv("RELEASED", T0 + 5)):
        engine.on_event(event)
    engine.advance_to(T0 + 10_000)
    state = store.state("o1")
    assert state is not None and state.ledger and state.shipments
    return [state, OrderState("empty")]


@NEEDS_BUILD
def test_native_orders_encode_as_the_python_state_does() -> None:
    module = native.load()
    assert module is not None
    for state in _orders():
        data = encode_order(state)
        order = module.decode(data)
        assert module.encode(order) == data == order.encode()
        assert order.order_id == state.order_id and order.to_python() == state
        assert core.as_state(order) == state and core.dump_order(order) == data
    with pytest.raises(ValueError, match="order state"):
        module.decode(b"\x93\x05\xa1x\x90")  # another state format


@NEEDS_BUILD
def test_native_orders_read_state_format_1() -> None:
    module = native.load()
    assert module is not None
    old = OrderStateV1("o1", events=[pay("SUCCEEDED", T0), inv("RESERVED", T0 - 1)],
                       dues=[T0 + 5], expire_at=T0 + 9)
    data = msgspec.msgpack.encode(old)
    order = module.decode(data)
    assert order.to_python() == python_decode(data)


def test_a_failed_optional_build_is_cleaned_away_and_says_what_runs_instead(
        capsys: pytest.CaptureFixture[str]) -> None:
    run_command = compiled.run_command
    cleaned: list[bool] = []

    def fail() -> None:
        raise subprocess.CalledProcessError(3, ["cargo"])

    code = run_command(["build"], fail, lambda: cleaned.append(True), lambda: "none",
                       what="the native core", fallback="the Python engine runs",
                       failed="cargo exited {code}, its output is above", built="built")
    assert code == 1 and cleaned == [True]
    assert capsys.readouterr().err == (
        "crosscheck: the native core was not built (cargo exited 3, its output is above); "
        "the Python engine runs (same outputs, slower)\n")
    assert run_command(["status"], fail, lambda: None, lambda: "none", what="", fallback="",
                       failed="", built="") == 0
    assert capsys.readouterr().out == "none\n"


@NEEDS_BUILD
@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40), st.integers(1, 512))
def test_the_native_partitioner_is_kafkas_murmur2(key: str, partitions: int) -> None:
    assert core.partition_of(key, partitions) == partition_for(key, partitions)


@NEEDS_BUILD
def test_the_native_partitioner_refuses_zero_partitions() -> None:
    with pytest.raises(ValueError, match="partitions must be positive"):
        core.partition_of("ORD-1", 0)
