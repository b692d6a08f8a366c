"""What the connector captures: tables, their order_id columns and topics (from a sources file)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from streams.cdc.config import Database
from streams.cdc.connector import SNAPSHOT_MODES, connector_config
from streams.errors import ConfigError
from streams.sources import load_sources
from streams.sources.spec import Format
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
    """The connector a sources file asks for: every `format = "debezium"` input's table,
    keyed by its `order_id` column, into its topic, and the [cdc] table's `name` and
    `snapshot_mode`. The file is checked as `crosscheck ingest` checks it (FILE:LINE:
    reason); ConfigError (naming the file and input) when its inputs cannot come from one
    connector."""
    sources = load_sources(path)
    cdc = dict(sources.cdc)
    unknown = sorted(set(cdc) - set(CDC_KEYS))
    if unknown:
        raise ConfigError(f"{path}: [cdc]: unknown key {unknown[0]!r} (known: "
                          f"{', '.join(CDC_KEYS)})")
    tables: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    unwraps: dict[str, bool] = {}
    for spec in sources.mapped():
        if spec.format is not Format.DEBEZIUM:
            continue
        where = f"{path}: [inputs.{spec.input.value}]"
        try:
            prefix, _ = split_change_topic(spec.topic)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        table = spec.table or ""
        if change_topic(prefix, table) != spec.topic:
            raise ConfigError(f"{where}: Debezium writes the changes of {table} to "
                              f"<topic prefix>.{table}; topic {spec.topic!r} does not end so")
        ref = spec.fields["order_id"]
        if ref.meta is not None or ref.has_constant or len(ref.path) != 1:
            raise ConfigError(f"{where}: {ref.rule}: order_id must be a column of {table} "
                              "(the connector keys its change events by it)")
        tables[table] = ref.path[0]
        prefixes[spec.input.value] = prefix
        unwraps[spec.input.value] = spec.unwrap
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


def _which(values: Mapping[str, object]) -> str:
    return ", ".join(f"{name}: {value!r}" for name, value in sorted(values.items()))
