"""The due index's in-memory buffer: the Python DueBuffer and the native one give the same pops
and flushes over the same RocksDB keys (here a sorted dict standing in for RocksDB)."""

from __future__ import annotations

import bisect
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import native
from streams.worker.due_index import DueBuffer, due_key, parse_due_key

_module = native.load()
NEEDS_BUILD = pytest.mark.skipif(_module is None,
                                 reason="the native core is not built (make native)")


class Keys:
    """Sorted keys, scanned as the store scans its RocksDB index."""

    def __init__(self) -> None:
        self.keys: list[bytes] = []

    def scan(self, start: bytes, limit: bytes) -> tuple[list[bytes], bytes | None]:
        i = bisect.bisect_left(self.keys, start)
        j = bisect.bisect_right(self.keys, limit)
        return self.keys[i:j], self.keys[j] if j < len(self.keys) else None

    def write(self, puts: list[bytes], deletes: list[bytes]) -> None:
        self.keys = sorted((set(self.keys) | set(puts)) - set(deletes))


OPS = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(-5, 60), st.sampled_from(["a", "b", "ü", "c1"])),
    st.tuples(st.just("pop"), st.integers(-10, 70)),
    st.tuples(st.just("flush")),
    st.tuples(st.just("rescan")),
), max_size=60)


def _run(make: Any, ops: list[tuple[Any, ...]]) -> list[Any]:
    keys = Keys()
    buffer = make(keys.scan)
    seen: list[Any] = []
    for op in ops:
        if op[0] == "add":
            buffer.add(op[1], op[2])
        elif op[0] == "pop":
            seen.append(buffer.pop(op[1]))
        elif op[0] == "flush":
            puts, deletes = buffer.flush()
            seen.append((sorted(puts), sorted(deletes)))
            keys.write(puts, deletes)
        else:
            keys.write([], [])
            buffer.rescan()
        seen.append(buffer.dirty)
    return seen


@NEEDS_BUILD
@settings(max_examples=300, deadline=None)
@given(OPS)
def test_the_native_buffer_pops_and_flushes_as_the_python_one(ops: list[tuple[Any, ...]]) -> None:
    assert _module is not None
    assert _run(_module.DueBuffer, ops) == _run(DueBuffer, ops)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_pops_give_each_live_entry_once_in_due_order(ops: list[tuple[Any, ...]]) -> None:
    """Against a plain set of entries: a pop returns exactly the entries added and not yet
    popped with due <= up_to, sorted."""
    keys = Keys()
    buffer = DueBuffer(keys.scan)
    live: set[tuple[int, str]] = set()
    for op in ops:
        if op[0] == "add":
            buffer.add(op[1], op[2])
            live.add((op[1], op[2]))
        elif op[0] == "pop":
            expected = sorted(e for e in live if e[0] <= op[1])
            assert buffer.pop(op[1]) == expected
            live -= set(expected)
        elif op[0] == "flush":
            keys.write(*buffer.flush())
        else:
            buffer.rescan()


IN_MEMORY_OPS = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(-5, 60), st.sampled_from(["a", "b", "ü", "c1"])),
    st.tuples(st.just("pop"), st.integers(-10, 70)),
), max_size=80)


def _in_memory_buffers() -> list[Any]:
    return [DueBuffer] + ([_module.DueBuffer] if _module is not None else [])


@settings(max_examples=300, deadline=None)
@given(IN_MEMORY_OPS)
def test_an_in_memory_buffer_pops_each_live_entry_once_in_due_order(
        ops: list[tuple[Any, ...]]) -> None:
    """With no scan (the replay's index, held in memory alone), Python and native: against a
    plain set of entries, and nothing popped is kept (nothing to delete below)."""
    for make in _in_memory_buffers():
        buffer = make(None)
        live: set[tuple[int, str]] = set()
        for op in ops:
            if op[0] == "add":
                buffer.add(op[1], op[2])
                live.add((op[1], op[2]))
            else:
                expected = sorted(e for e in live if e[0] <= op[1])
                assert buffer.pop(op[1]) == expected, make
                live -= set(expected)
        assert buffer.dirty == bool(live)  # only the live entries are held


@NEEDS_BUILD
@given(st.integers(-(2**62), 2**62 - 1), st.text(max_size=8))
def test_the_native_key_is_the_python_key(due: int, order_id: str) -> None:
    assert _module is not None
    try:
        order_id.encode()
    except UnicodeEncodeError:
        return  # (order ids are valid UTF-8: validation refuses lone surrogates)
    assert _module.due_key(due, order_id) == due_key(due, order_id)
    assert parse_due_key(due_key(due, order_id)) == (due, order_id)
