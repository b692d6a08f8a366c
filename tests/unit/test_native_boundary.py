"""The Python <-> Rust boundary: the native engine reads and builds Python objects by field
name, so a field moved in ``streams.model`` changes nothing and one renamed is caught."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

import msgspec
import pytest
from builders import RULES, T0, inv, pay, placed, ship

from streams import model, native
from streams.engine import MemoryStore

NEEDS_BUILD = pytest.mark.skipif(native.status() != "native",
                                 reason="the native core is not built (make native)")


def _fields(path: str) -> tuple[str, ...]:
    module, _, name = path.rpartition(".")
    kind = getattr(importlib.import_module(module), name)
    if dataclasses.is_dataclass(kind):
        return tuple(f.name for f in dataclasses.fields(kind))
    return tuple(kind.__struct_fields__)


@NEEDS_BUILD
def test_every_field_the_native_engine_names_exists() -> None:
    module = native.load()
    assert module is not None
    named: dict[str, list[str]] = module.FIELDS
    assert set(named) >= {"streams.model.Event", "streams.model.Item", "streams.model.Mismatch",
                          "streams.model.Command", "streams.engine.state.PartitionMeta",
                          "streams.config.RuleConfig"}
    for path, names in named.items():
        missing = set(names) - set(_fields(path))
        assert not missing, f"{path} has no {sorted(missing)}: the native engine reads them"
    # what it fills of the records is every field they have without a default
    for path in ("streams.model.Mismatch", "streams.model.Command"):
        kind = getattr(model, path.rsplit(".", 1)[1])
        required = [f.name for f in msgspec.structs.fields(kind) if f.required]
        assert set(required) <= set(named[path])


def _reordered(kind: Any) -> Any:
    """A Struct with ``kind``'s fields in another order (required ones reversed)."""
    fields = msgspec.structs.fields(kind)
    required = [(f.name, f.type) for f in fields if f.required][::-1]
    optional = [(f.name, f.type, f.default) for f in fields if not f.required][::-1]
    return msgspec.defstruct(kind.__name__, [*required, *optional], frozen=True)


EVENTS = [placed(T0, total=5), pay("SUCCEEDED", T0 + 1, amount=4), inv("RESERVED", T0 + 2),
          ship("CREATED", T0 + 3, items=[("A", 2), ("B", 1)]), pay("SUCCEEDED", T0 + 4, "p2"),
          inv("RELEASED", T0 + 5)]


def _run(module: Any, events: list[Any]) -> list[dict[str, Any]]:
    engine = module.PartitionEngine(RULES, MemoryStore(), lambda: 7)
    out = [o for e in events for o in engine.on_event(e)] + engine.advance_to(T0 + 10**6)
    return [{f: getattr(o, f) for f in o.__struct_fields__} | {"kind": type(o).__name__}
            for o in out]


@NEEDS_BUILD
@pytest.mark.parametrize("own", [True, False], ids=["model's classes", "other objects"])
def test_reordered_fields_give_the_same_outputs(monkeypatch: pytest.MonkeyPatch,
                                                own: bool) -> None:
    """Events, items and records with their fields in another order: as the classes of
    ``streams.model`` (read in one call, by the positions of the names) or as other objects
    (read field by field)."""
    module = native.load()
    assert module is not None
    expected = _run(module, EVENTS)
    assert {o["kind"] for o in expected} == {"Mismatch", "Command"}
    event, item = _reordered(model.Event), _reordered(model.Item)
    moved = [event(**{f: getattr(e, f) for f in e.__struct_fields__} | {
        "items": tuple(item(sku=i.sku, quantity=i.quantity, unit_price=i.unit_price)
                       for i in e.items)}) for e in EVENTS]
    if own:
        monkeypatch.setattr(model, "Event", event)
        monkeypatch.setattr(model, "Item", item)
    monkeypatch.setattr(model, "Mismatch", _reordered(model.Mismatch))
    monkeypatch.setattr(model, "Command", _reordered(model.Command))
    assert _run(module, moved) == expected


@NEEDS_BUILD
def test_a_renamed_field_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    module = native.load()
    assert module is not None
    fields = [(f.name if f.name != "subject_id" else "subject", f.type)
              for f in msgspec.structs.fields(model.Mismatch) if f.required]
    monkeypatch.setattr(model, "Mismatch", msgspec.defstruct("Mismatch", fields))
    with pytest.raises(ValueError, match="subject_id"):
        module.PartitionEngine(RULES, MemoryStore(), lambda: 7)
