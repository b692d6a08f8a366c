"""The per-partition watermark: min over the sources, quiet and released ones, never backwards."""

from __future__ import annotations

from builders import CLOCK_MS, RULES, T0, inv, pay, placed, ship

from streams.engine import MemoryStore, PartitionEngine
from streams.engine import watermark as wm
from streams.engine.state import PartitionMeta
from streams.model import Source

L = RULES.allowed_lateness


def _engine() -> PartitionEngine:
    return PartitionEngine(RULES, MemoryStore(), lambda: CLOCK_MS)


def _read(meta: PartitionMeta, source: Source, t: int) -> int | None:
    return wm.observe(meta, source, t, L).watermark


def test_none_until_every_source_was_read() -> None:
    meta = PartitionMeta()
    assert _read(meta, Source.PAYMENTS, T0) is None
    assert _read(meta, Source.INVENTORY, T0 + 10) is None
    assert _read(meta, Source.SHIPPING, T0 + 20) is None
    assert _read(meta, Source.ORDERS, T0 + 30) == T0 - L


def test_min_over_sources_minus_lateness() -> None:
    meta = PartitionMeta()
    for source, t in zip(Source, (T0 + 400, T0 + 100, T0 + 300, T0 + 200), strict=True):
        _read(meta, source, t)
    assert meta.watermark == T0 + 100 - L
    assert _read(meta, Source.PAYMENTS, T0 + 900) == T0 + 200 - L
    assert meta.max_time == {
        "orders": T0 + 400,
        "payments": T0 + 900,
        "inventory": T0 + 300,
        "shipping": T0 + 200,
    }


def test_a_quiet_source_still_holds_the_watermark() -> None:
    """Quiet (caught up, no record for idle_timeout) is not a licence to overtake: a quiet
    source holds the watermark at its progress while another input is not quiet, and one
    that never had a record holds it entirely."""
    meta = PartitionMeta()
    for source in (Source.PAYMENTS, Source.INVENTORY, Source.SHIPPING):
        _read(meta, source, T0 + 500)
    assert wm.set_idle(meta, Source.ORDERS, True, L).watermark is None  # never read
    _read(meta, Source.ORDERS, T0 + 200)
    wm.set_idle(meta, Source.ORDERS, True, L)
    _read(meta, Source.SHIPPING, T0 + 900)
    _read(meta, Source.PAYMENTS, T0 + 900)
    _read(meta, Source.INVENTORY, T0 + 900)
    assert meta.watermark == T0 + 200 - L  # quiet orders holds it at its progress


def test_a_released_source_does_not_hold_the_watermark() -> None:
    meta = PartitionMeta()
    for source in (Source.PAYMENTS, Source.INVENTORY, Source.SHIPPING):
        _read(meta, source, T0 + 500)
    assert wm.set_released(meta, Source.ORDERS, True, L).watermark == T0 + 500 - L
    assert meta.idle == ["orders"] and meta.released == ["orders"]
    # a released source that was read and lags behind does not hold it either
    _read(meta, Source.ORDERS, T0 + 100)  # it advances: held again
    assert meta.released == [] and meta.idle == []
    _read(meta, Source.SHIPPING, T0 + 900)
    _read(meta, Source.PAYMENTS, T0 + 900)
    _read(meta, Source.INVENTORY, T0 + 900)
    assert meta.watermark == T0 + 500 - L  # orders holds it at T0 + 100 - L: no move back
    wm.set_released(meta, Source.ORDERS, True, L)
    assert meta.watermark == T0 + 900 - L
    # active again (its end offset moved past its position): it holds again, from now on
    wm.set_idle(meta, Source.ORDERS, False, L)
    assert meta.released == [] and wm.candidate(meta, L) == T0 + 100 - L


def test_all_idle_uses_the_max_over_read_sources() -> None:
    meta = PartitionMeta()
    _read(meta, Source.PAYMENTS, T0)
    _read(meta, Source.SHIPPING, T0 + 70)
    for source in Source:
        wm.set_idle(meta, source, True, L)
    assert meta.watermark == T0 + 70 - L
    assert wm.candidate(PartitionMeta(idle=[s.value for s in Source]), L) is None


def test_an_event_clears_the_idle_flag_and_never_moves_backwards() -> None:
    meta = PartitionMeta()
    for source in Source:
        _read(meta, source, T0 + 1_000)
        wm.set_idle(meta, source, True, L)
    assert meta.idle == sorted(s.value for s in Source)
    _read(meta, Source.ORDERS, T0 - 5_000)  # orders is active again, far behind
    assert meta.idle == sorted(s.value for s in Source if s is not Source.ORDERS)
    assert meta.watermark == T0 + 1_000 - L
    wm.set_idle(meta, Source.PAYMENTS, False, L)
    assert meta.watermark == T0 + 1_000 - L
    assert wm.force(meta, T0).watermark == T0 + 1_000 - L
    assert wm.force(meta, T0 + 5_000).watermark == T0 + 5_000


def test_is_late() -> None:
    meta = PartitionMeta(watermark=T0)
    assert wm.is_late(meta, T0) and not wm.is_late(meta, T0 + 1)
    assert not wm.is_late(PartitionMeta(), 0)


def test_engine_watermark_follows_events_release_and_advance() -> None:
    engine = _engine()
    assert engine.watermark is None
    engine.on_event(pay("FAILED", T0))
    engine.on_event(inv("RELEASED", T0 + 50))
    engine.on_event(ship("CANCELLED", T0 + 60))
    assert engine.watermark is None
    engine.set_idle(Source.ORDERS, True)
    assert engine.watermark is None  # quiet, never read: holds
    engine.set_released(Source.ORDERS, True)
    assert engine.watermark == T0 - L
    engine.on_event(placed(T0 + 80, order="o2"))  # orders active again, ahead
    assert engine.watermark == T0 - L
    engine.advance_to(T0 + 10)
    assert engine.watermark == T0 + 10
    engine.advance_to(T0)
    assert engine.watermark == T0 + 10


def test_redelivered_event_counts_for_the_watermark() -> None:
    engine = _engine()
    first = pay("FAILED", T0 + 500)
    for event in (first, inv("RELEASED", T0 + 900), ship("CANCELLED", T0 + 900)):
        engine.on_event(event)
    engine.set_released(Source.ORDERS, True)
    assert engine.watermark == T0 + 500 - L
    # same event_id again, now with a later time: ignored as an event, counted as time
    engine.on_event(pay("FAILED", T0 + 800, eid=first.event_id))
    assert engine.watermark == T0 + 800 - L
