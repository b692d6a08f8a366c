"""The order objects of the engine this process runs: ``NativeOrder`` objects for the native
engine, ``OrderState`` Structs for the Python one; both encode an order as the same
state-format-2 bytes. The stores load and dump orders through here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams import native
from streams.engine.overlay import OrderOverlay
from streams.engine.state import OrderState, decode_order, encode_order

_module = native.load()


def new_overlay(load: Callable[[str], bytes | None]) -> Any:
    """A write-behind cache of a store's orders over ``load(order_id)`` (stored bytes or
    None), holding the running engine's order objects: the native ``OrderOverlay`` when the
    native engine runs (a store that exposes it as ``native_orders`` is read and written by
    the engine without a Python call), else ``streams.engine.overlay.OrderOverlay``. Both have
    the same methods: get, put, delete, drain, clear, len() and ``changed``."""
    if _module is not None:
        return _module.OrderOverlay(load)
    return OrderOverlay(load, load_order, dump_order)


def native_orders(overlay: Any) -> Any:
    """The overlay if it is the native one (a store's ``native_orders``), else None."""
    return overlay if _module is not None and isinstance(overlay, _module.OrderOverlay) else None


def load_order(data: bytes) -> Any:
    """Stored bytes (state format 1 or 2) -> the order object the running engine works on."""
    if _module is not None:
        return _module.decode(data)
    return decode_order(data)


def dump_order(order: Any) -> bytes:
    """An order object (of either engine) -> state-format-2 bytes."""
    if isinstance(order, OrderState):
        return encode_order(order)
    return bytes(order.encode())


def as_state(order: Any) -> OrderState:
    """An order object of either engine as a Python ``OrderState`` (a copy for a native one:
    for documents, pending work and tests)."""
    if isinstance(order, OrderState):
        return order
    return decode_order(dump_order(order))
