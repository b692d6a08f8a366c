"""The value forms of a field mapping (a path, ``@key``, a table with options, a constant),
checked as the sources file is read."""

from __future__ import annotations

from typing import Any, Protocol

from streams.sources.spec import AMOUNTS, UNITS, FieldRef, Format, ItemsRef, Meta
from topology.topics import TopicId

Path_ = tuple[str, ...]

#: fields that must come from the record, never a constant
_NO_CONSTANT = frozenset({"event_id", "order_id", "event_time", "type"})
_MAX_DECIMALS = 18


class Reporter(Protocol):
    """Where a problem at a key path is reported."""

    def problem(self, path: Path_, reason: str) -> None: ...


def describe(value: Any) -> str:
    """A TOML value for a reason: its type's TOML name and the value."""
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"),
                       (dict, "table"), (list, "array")):
        if isinstance(value, kind):
            return f"{name} {value!r}"
    return f"{type(value).__name__} {value!r}"


def dotted(path: Path_) -> str:
    """A record path as the sources file writes it."""
    return ".".join(path)


def _inline(value: Any) -> str:
    """A TOML rendering of a field mapping's value, for the ``rule`` of map errors."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_inline(v)}" for k, v in value.items()) + " }"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


class FieldChecker:
    """Reads the field mappings of one input into FieldRefs and ItemsRefs."""

    def __init__(self, reporter: Reporter, input_id: TopicId, fmt: Format) -> None:
        self.reporter = reporter
        self.input = input_id
        self.format = fmt
        self.where = f"[inputs.{input_id.value}]"

    def _problem(self, name: str, reason: str) -> None:
        self.reporter.problem(("inputs", self.input.value, name), f"{self.where} {name}: {reason}")

    def field(self, name: str, value: Any) -> FieldRef | None:
        """The FieldRef of ``name = value``; None (and a problem) if it is not one."""
        rule = f"{name} = {_inline(value)}"
        if isinstance(value, str):
            if value.startswith("@"):
                meta = self._meta(name, value)
                return None if meta is None else FieldRef(name, rule, meta=meta)
            path = self._path(name, value)
            return None if path is None else FieldRef(name, rule, path)
        if not isinstance(value, dict):
            self._problem(name, f"expected a field path (a string) or a table such as "
                                f"{{ field = \"...\" }}, got {describe(value)}")
            return None
        return self._table(name, value, rule)

    def _table(self, name: str, value: dict[str, Any], rule: str) -> FieldRef | None:
        ok = True
        for key in value:
            if key not in ("field", "value", "unit", "decimals"):
                self._problem(name, f"unknown key {key!r} (field, value, unit, decimals)")
                ok = False
        has_field, has_value = "field" in value, "value" in value
        if has_field == has_value:
            self._problem(name, "give either field (where to read it) or value (a constant)")
            return None
        unit = self._unit(name, value.get("unit"))
        decimals = self._decimals(name, value.get("decimals"))
        if unit is None or decimals is None or not ok:
            return None
        if has_value:
            constant = value["value"]
            if name in _NO_CONSTANT:
                self._problem(name, "cannot be a constant (it must come from the record)")
                return None
            if isinstance(constant, bool) or not isinstance(constant, str | int):
                self._problem(name, f"value: expected a string or an integer, got "
                                    f"{describe(constant)}")
                return None
            return FieldRef(name, rule, constant=constant, has_constant=True)
        raw = value["field"]
        if not isinstance(raw, str):
            self._problem(name, f"field: expected a path, got {describe(raw)}")
            return None
        if raw.startswith("@"):
            meta = self._meta(name, raw)
            return None if meta is None else FieldRef(name, rule, meta=meta, unit=unit)
        path = self._path(name, raw)
        if path is None:
            return None
        return FieldRef(name, rule, path, unit=unit, decimals=decimals)

    def _meta(self, name: str, value: str) -> Meta | None:
        try:
            meta = Meta(value)
        except ValueError:
            self._problem(name, f"{value!r} is not a record item (@key, @timestamp, @commit)")
            return None
        if meta is Meta.COMMIT and self.format is not Format.DEBEZIUM:
            self._problem(name, "@commit is the commit time of a change: debezium inputs only")
            return None
        if meta is Meta.KEY and name == "event_time":
            self._problem(name, "@key is text, not a time (@timestamp or @commit are times)")
            return None
        if meta is not Meta.KEY and name != "event_time":
            self._problem(name, f"{value} is a time: only event_time can be read from it")
            return None
        return meta

    def _path(self, name: str, value: str) -> Path_ | None:
        parts = tuple(part.strip() for part in value.split("."))
        if not value.strip() or any(not part for part in parts):
            self._problem(name, f"{value!r} is not a path (names separated by dots, e.g. "
                                "\"payment.amount\")")
            return None
        return parts

    def _unit(self, name: str, value: Any) -> str | None:
        if value is None:
            return "ms"
        if name != "event_time":
            self._problem(name, "unit: only event_time has a unit")
            return None
        if value not in UNITS:
            self._problem(name, f"unit: {describe(value)} is not s, ms, us or ns")
            return None
        return str(value)

    def _decimals(self, name: str, value: Any) -> int | None:
        if value is None:
            return 0
        if name not in AMOUNTS:
            amounts = ", ".join(sorted(AMOUNTS))
            self._problem(name, f"decimals: only amounts have decimals ({amounts} and the "
                                "items' unit_price)")
            return None
        return self._decimals_value(name, value)

    def _decimals_value(self, name: str, value: Any) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not \
                0 <= value <= _MAX_DECIMALS:
            self._problem(name, f"decimals: expected an integer from 0 to {_MAX_DECIMALS}, got "
                                f"{describe(value)}")
            return None
        return value

    def items(self, value: Any) -> ItemsRef | None:
        """The ItemsRef of ``items = value``: a path, or a table with the element paths."""
        rule = f"items = {_inline(value)}"
        orders = self.input is TopicId.ORDERS
        unit_price: Path_ | None = ("unit_price",) if orders else None
        if isinstance(value, str):
            path = self._path("items", value)
            return None if path is None else ItemsRef(rule, path, unit_price=unit_price)
        if not isinstance(value, dict):
            self._problem("items", f"expected a path or a table such as {{ field = \"lines\", "
                                   f"sku = \"sku\", quantity = \"qty\" }}, got {describe(value)}")
            return None
        known = ("field", "sku", "quantity", "decimals") + (("unit_price",) if orders else ())
        parts: dict[str, Path_] = {}
        ok = True
        for key, raw in value.items():
            if key not in known:
                extra = " (shipment items have no unit_price)" if key == "unit_price" else ""
                self._problem("items", f"unknown key {key!r} ({', '.join(known)}){extra}")
                ok = False
            elif key != "decimals":
                path = self._path("items", raw) if isinstance(raw, str) else None
                if path is None:
                    if not isinstance(raw, str):
                        self._problem("items", f"{key}: expected a path, got {describe(raw)}")
                    ok = False
                else:
                    parts[key] = path
        decimals = 0
        if "decimals" in value:
            if not orders:
                self._problem("items", "decimals: shipment items have no unit_price")
                ok = False
            else:
                checked = self._decimals_value("items", value["decimals"])
                ok = ok and checked is not None
                decimals = checked or 0
        if "field" not in value:
            self._problem("items", "field: is missing (the path of the array of item lines)")
            return None
        if not ok:
            return None
        return ItemsRef(rule, parts["field"], parts.get("sku", ("sku",)),
                        parts.get("quantity", ("quantity",)),
                        parts.get("unit_price", unit_price) if orders else None, decimals)
