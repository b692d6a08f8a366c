"""OrderOverlay, the write-behind cache of a store's orders: the Python one and the native one
(``streams._native.OrderOverlay``) behave the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from streams import native
from streams.engine import core
from streams.engine.overlay import OrderOverlay
from streams.engine.state import OrderState, decode_order, encode_order

_module = native.load()


def _python(load: Callable[[str], bytes | None]) -> Any:
    return OrderOverlay(load, decode_order, encode_order)


def _native(load: Callable[[str], bytes | None]) -> Any:
    assert _module is not None
    return _module.OrderOverlay(load)


KINDS = [pytest.param(_python, id="python"),
         pytest.param(_native, id="native", marks=pytest.mark.skipif(
             _module is None, reason="the native core is not built (make native)"))]


class Backing:
    """A stored order or two, and every read of them."""

    def __init__(self) -> None:
        self.rows = {"a": encode_order(OrderState("a", dues=[5], expire_at=9))}
        self.reads: list[str] = []

    def load(self, order_id: str) -> bytes | None:
        self.reads.append(order_id)
        return self.rows.get(order_id)


@pytest.mark.parametrize("make", KINDS)
def test_an_order_is_read_once_until_drained_and_only_changes_are_written(make: Any) -> None:
    backing = Backing()
    overlay = make(backing.load)
    first = overlay.get("a")
    assert core.as_state(first) == OrderState("a", dues=[5], expire_at=9)
    assert overlay.get("a") is first and overlay.get("missing") is None
    assert overlay.get("missing") is None
    assert backing.reads == ["a", "missing"] and len(overlay) == 2 and overlay.changed == 0
    assert overlay.drain() == []  # read only: nothing to write
    assert len(overlay) == 0
    overlay.get("a")
    assert backing.reads == ["a", "missing", "a"]  # read again after the drain


@pytest.mark.parametrize("make", KINDS)
def test_drain_writes_each_changed_order_once_and_deletions_as_none(make: Any) -> None:
    backing = Backing()
    overlay = make(backing.load)
    a = overlay.get("a")
    overlay.put("a", a)
    overlay.put("a", a)
    overlay.put("b", OrderState("b", dues=[7]))  # a Python OrderState, whatever the overlay
    overlay.delete("c")
    assert overlay.changed == 3 and overlay.get("c") is None and backing.reads == ["a"]
    rows = sorted(overlay.drain())
    assert rows == [("a", backing.rows["a"]), ("b", encode_order(OrderState("b", dues=[7]))),
                    ("c", None)]
    assert overlay.changed == 0 and len(overlay) == 0 and overlay.drain() == []


@pytest.mark.parametrize("make", KINDS)
def test_clear_forgets_reads_and_changes(make: Any) -> None:
    backing = Backing()
    overlay = make(backing.load)
    overlay.get("a")
    overlay.delete("a")
    overlay.clear()
    assert overlay.changed == 0 and len(overlay) == 0 and overlay.drain() == []
    assert core.as_state(overlay.get("a")).dues == [5]


@pytest.mark.parametrize("make", KINDS)
def test_a_failing_read_raises_and_holds_nothing(make: Any) -> None:
    def load(order_id: str) -> bytes | None:
        raise OSError(f"cannot read {order_id}")

    overlay = make(load)
    with pytest.raises(OSError, match="cannot read a"):
        overlay.get("a")
    assert len(overlay) == 0


def test_the_store_overlay_is_the_one_of_the_running_engine() -> None:
    overlay = core.new_overlay(lambda order_id: None)
    if core.NAME == "native":
        assert core.native_orders(overlay) is overlay
    else:
        assert isinstance(overlay, OrderOverlay) and core.native_orders(overlay) is None
