"""The native engine: when it runs, its staleness check, the fallback's notice, its orders.

That it gives the same outputs and the same stored bytes as the Python engine is checked in
``test_native_parity.py`` (over 20,000 simulator events); the engine and rules tests run
against it, and once more on the Python engine (``make test``).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from builders import RULES, T0, inv, pay, placed, ship
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import native
from streams.engine import MemoryStore, PartitionEngine, core
from streams.engine.state import OrderState, OrderStateV1, encode_order
from streams.engine.state import decode_order as python_decode
from topology.partitioner import partition_for

ROOT = Path(__file__).resolve().parents[2]
NEEDS_BUILD = pytest.mark.skipif(native.status() != "native",
                                 reason="the native engine is not built (make native)")


def _run(code: str, **env: str) -> list[str]:
    """What ``code`` prints in a child process, with the environment ``env`` only."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, text=True,
                          capture_output=True, check=True,
                          env={"PATH": "/usr/bin:/bin", **env})
    return done.stdout.splitlines()


STATUS = ("import streams.native as n; from streams.engine import core; "
          "print(n.status()); print(core.NAME); print(n.notice())")


def test_the_switches_choose_the_python_engine() -> None:
    assert _run(STATUS, CROSSCHECK_PURE_PYTHON="1") == [
        "pure", "python", "crosscheck: running the Python engine, same outputs, slower: "
        "CROSSCHECK_PURE_PYTHON is set"]
    assert _run(STATUS, CROSSCHECK_PYTHON_ENGINE="1")[:2] == ["python", "python"]
    status, engine, notice = _run(STATUS)
    if built():
        assert (status, engine, notice) == ("native", "native", "None")
    else:
        assert status in ("none", "stale") and engine == "python" and notice != "None"


def built() -> bool:
    """Whether the library is there and not older than its sources."""
    spec = importlib.util.find_spec(native.MODULE)
    return spec is not None and spec.origin is not None and not native.stale(Path(spec.origin))


def test_without_the_library_the_python_engine_runs_and_says_why() -> None:
    blocked = "import sys; sys.modules['streams._native'] = None; " + STATUS
    status, engine, notice = _run(blocked)
    assert (status, engine) == ("none", "python")
    assert notice.startswith("crosscheck: running the Python engine, same outputs, slower: "
                             "the native engine cannot be imported (")
    assert "streams._native" in notice


def test_a_source_edited_after_the_build_makes_it_stale(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    crate = tmp_path / "native"
    (crate / "src").mkdir(parents=True)
    sources = [crate / "Cargo.toml", crate / "Cargo.lock", crate / "src" / "lib.rs"]
    for path in sources:
        path.write_text("x")
        os.utime(path, (1_000, 1_000))
    library = tmp_path / "streams" / "_native.abi3.so"
    library.parent.mkdir()
    library.write_bytes(b"")
    os.utime(library, (2_000, 2_000))
    monkeypatch.setattr(native, "CRATE", crate)
    assert native.sources() == sorted(sources)
    assert native.stale(library) is False
    os.utime(sources[2], (3_000, 3_000))  # lib.rs edited after the build
    assert native.stale(library) is True
    installed = tmp_path / "site-packages" / "streams" / "_native.abi3.so"
    installed.parent.mkdir(parents=True)
    installed.write_bytes(b"")
    os.utime(installed, (2_000, 2_000))
    assert native.stale(installed) is False  # a wheel's library: no sources beside it
    (crate / "Cargo.toml").unlink()
    assert native.sources() == [] and native.stale(library) is False  # not a source tree


def test_this_source_trees_sources_are_the_crates() -> None:
    names = {str(p.relative_to(ROOT)) for p in native.sources()}
    assert {"native/Cargo.toml", "native/Cargo.lock", "native/src/lib.rs",
            "native/src/engine.rs"} <= names


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


@NEEDS_BUILD
@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40), st.integers(1, 512))
def test_the_native_partitioner_is_kafkas_murmur2(key: str, partitions: int) -> None:
    assert core.partition_of(key, partitions) == partition_for(key, partitions)


@NEEDS_BUILD
def test_the_native_partitioner_refuses_zero_partitions() -> None:
    with pytest.raises(ValueError, match="partitions must be positive"):
        core.partition_of("ORD-1", 0)
