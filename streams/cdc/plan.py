"""What the connector captures: tables, their order_id columns and topics (from a sources file)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.cdc.config import Database
from streams.cdc.connector import SNAPSHOT_MODES, connector_config
from streams.errors import ConfigError
from topology.cdc import (
    SHOP_SCHEMA,
    SHOP_TABLES,
    SHOP_TOPIC_PREFIX,
    change_topic,
    split_change_topic,
)

DEFAULT_CONNECTOR = "crosscheck-shop"
#: the keys of a sources file's [cdc] table
CDC_KEYS = ("name", "snapshot_mode")


@dataclass(frozen=True)
class CapturePlan:
    """One Debezium connector: its name, topic prefix, and the tables it captures
    ("schema.table" -> the column holding order_id, which keys every change event)."""

    name: str
    topic_prefix: str
    tables: Mapping[str, str] = field(default_factory=dict)
    unwrap: bool = False
    snapshot_mode: str = "no_data"

    @property
    def topics(self) -> dict[str, str]:
        """"schema.table" -> the topic its changes go to."""
        return {t: change_topic(self.topic_prefix, t) for t in sorted(self.tables)}

    def connector(self, database: Database, partitions: int) -> dict[str, str]:
        """The connector's configuration against ``database``, topics of ``partitions``."""
        return connector_config(name=self.name, database=database, tables=self.tables,
                                topic_prefix=self.topic_prefix, partitions=partitions,
                                unwrap=self.unwrap, snapshot_mode=self.snapshot_mode)


def shop_plan(topic_prefix: str = "") -> CapturePlan:
    """The example shop (streams/cdc/shop_schema.sql): its four tables keyed by order_id,
    into ``topic_prefix`` + "shop".public.<table> (CROSSCHECK_TOPIC_PREFIX first)."""
    tables = {f"{SHOP_SCHEMA}.{table}": "order_id" for table in SHOP_TABLES.values()}
    return CapturePlan(DEFAULT_CONNECTOR, topic_prefix + SHOP_TOPIC_PREFIX, tables)


def plan_from_sources(path: str | Path) -> CapturePlan:
    """The connector a sources file asks for: every `format = "debezium"` input's table
    (`table`, default the topic's last two parts), keyed by its `order_id` column, and the
    [cdc] table's `name` and `snapshot_mode`. ConfigError (naming the file) when the inputs
    cannot come from one connector."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    cdc = _table(doc.get("cdc", {}), f"{path}: [cdc]")
    unknown = sorted(set(cdc) - set(CDC_KEYS))
    if unknown:
        raise ConfigError(f"{path}: [cdc]: unknown key {unknown[0]!r} (known: "
                          f"{', '.join(CDC_KEYS)})")
    tables: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    unwraps: dict[str, bool] = {}
    for name, spec in _table(doc.get("inputs", {}), f"{path}: [inputs]").items():
        where = f"{path}: [inputs.{name}]"
        spec = _table(spec, where)
        if spec.get("format") != "debezium":
            continue
        topic = spec.get("topic")
        if not isinstance(topic, str):
            raise ConfigError(f"{where}: topic must be a string")
        try:
            prefix, table = split_change_topic(topic)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        table = str(spec.get("table", table))
        if change_topic(prefix, table) != topic:
            raise ConfigError(f"{where}: Debezium writes the changes of {table} to "
                              f"<topic prefix>.{table}; topic {topic!r} does not end so")
        column = spec.get("order_id")
        if not isinstance(column, str) or not column or "." in column or \
                column.startswith("@"):
            raise ConfigError(f"{where}: order_id must name a column of {table} (the "
                              f"connector keys its change events by it), not {column!r}")
        tables[table] = column
        prefixes[name] = prefix
        unwraps[name] = bool(spec.get("unwrap", False))
    if not tables:
        raise ConfigError(f"{path}: no input has format = \"debezium\": nothing to capture")
    if len(set(prefixes.values())) > 1:
        raise ConfigError(f"{path}: one connector writes every table's changes under one topic "
                          f"prefix, but the debezium inputs have {_which(prefixes)}")
    if len(set(unwraps.values())) > 1:
        raise ConfigError(f"{path}: one connector unwraps every table or none, but the debezium "
                          f"inputs have unwrap = {_which(unwraps)}")
    snapshot = str(cdc.get("snapshot_mode", "no_data"))
    if snapshot not in SNAPSHOT_MODES:
        raise ConfigError(f"{path}: [cdc] snapshot_mode {snapshot!r} is not one of "
                          f"{', '.join(SNAPSHOT_MODES)}")
    return CapturePlan(str(cdc.get("name", DEFAULT_CONNECTOR)), next(iter(prefixes.values())),
                       tables, next(iter(unwraps.values())), snapshot)


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table")
    return value


def _which(values: Mapping[str, object]) -> str:
    return ", ".join(f"{name}: {value!r}" for name, value in sorted(values.items()))
