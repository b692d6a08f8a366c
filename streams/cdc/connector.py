"""The Debezium connector's and the Connect worker's configuration, rendered as properties."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from streams.cdc.config import Database
from streams.config import Security
from topology.cdc import change_topic

POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"
#: the fields ExtractNewRecordState adds to an unwrapped row: __op, __table, __lsn, __source_ts_ms
UNWRAP_FIELDS = "op,table,lsn,source.ts_ms"
SNAPSHOT_MODES = ("no_data", "initial", "when_needed", "always", "initial_only")
_SLOT_CHARS = re.compile(r"[^a-z0-9_]")


def slot_name(connector: str) -> str:
    """The replication slot (and publication) of a connector: one slot per connector,
    named after it in the characters PostgreSQL allows (a-z, 0-9, _; at most 63)."""
    slot = _SLOT_CHARS.sub("_", connector.lower())
    return (slot if slot[:1].isalpha() else "crosscheck_" + slot)[:63]


def connector_config(*, name: str, database: Database, tables: Mapping[str, str],
                     topic_prefix: str, partitions: int, unwrap: bool,
                     snapshot_mode: str = "no_data",
                     replication_factor: int = -1) -> dict[str, str]:
    """The Debezium PostgreSQL connector capturing ``tables`` ("schema.table" -> the column
    holding order_id) of ``database`` into ``topic_prefix``.schema.table.

    Every change event is keyed by the row's order_id as plain text (message.key.columns,
    then ExtractField$Key; the worker's StringConverter writes it as UTF-8), so Connect's
    producer puts an order's changes on partition murmur2(order_id) of every topic, as the
    contract's producers do. The topics are created on first use with ``partitions``
    partitions (the broker's auto-creation is off). With ``unwrap`` each value is the row
    after the change plus __op, __table, __lsn and __source_ts_ms (ExtractNewRecordState, a
    delete rewritten with __deleted=true); without it, Debezium's envelope (before, after,
    source, op). The values are JSON without Connect schemas (the worker's JsonConverter).
    ``snapshot_mode`` no_data captures only changes made from the connector's first start:
    a snapshot's rows carry the snapshot's LSN, not their change's, so they would not be
    recognised as the same events if taken again.
    """
    if not tables:
        raise ValueError("connector_config: no tables to capture")
    if snapshot_mode not in SNAPSHOT_MODES:
        raise ValueError(f"snapshot mode {snapshot_mode!r} is not one of {SNAPSHOT_MODES}")
    ordered = sorted(tables)
    slot = slot_name(name)
    config: dict[str, str] = {
        "name": name,
        "connector.class": POSTGRES_CONNECTOR,
        "tasks.max": "1",
        "plugin.name": "pgoutput",
        "database.hostname": database.host,
        "database.port": str(database.port),
        "database.user": database.user,
        "database.password": database.password,
        "database.dbname": database.dbname,
        "topic.prefix": topic_prefix,
        "table.include.list": ",".join(re.escape(t) for t in ordered),
        "slot.name": slot,
        "publication.name": slot,
        "publication.autocreate.mode": "filtered",
        "snapshot.mode": snapshot_mode,
        "tombstones.on.delete": "false",
        "message.key.columns": ";".join(f"{t}:{tables[t]}" for t in ordered),
        "topic.creation.default.partitions": str(partitions),
        "topic.creation.default.replication.factor": str(replication_factor),
        "topic.creation.default.cleanup.policy": "delete",
    }
    for key, value in database.params:
        if key == "sslmode":
            config["database.sslmode"] = value
    transforms: list[str] = []
    if unwrap:
        transforms.append("unwrap")
        config.update({
            "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
            "transforms.unwrap.add.fields": UNWRAP_FIELDS,
            "transforms.unwrap.delete.tombstone.handling.mode": "rewrite",
        })
    by_column: dict[str, list[str]] = {}
    for table in ordered:
        by_column.setdefault(tables[table], []).append(table)
    for i, (column, of_column) in enumerate(sorted(by_column.items())):
        step = f"orderkey{i}" if len(by_column) > 1 else "orderkey"
        transforms.append(step)
        config[f"transforms.{step}.type"] = "org.apache.kafka.connect.transforms.ExtractField$Key"
        config[f"transforms.{step}.field"] = column
        if len(by_column) > 1:  # each key column's tables by their topics
            config[f"transforms.{step}.predicate"] = step
            config[f"predicates.{step}.type"] = (
                "org.apache.kafka.connect.transforms.predicates.TopicNameMatches")
            config[f"predicates.{step}.pattern"] = "|".join(
                re.escape(change_topic(topic_prefix, t)) for t in of_column)
    if len(by_column) > 1:
        config["predicates"] = ",".join(t for t in transforms if t.startswith("orderkey"))
    config["transforms"] = ",".join(transforms)
    return config


def worker_config(*, bootstrap: str, rest_port: int, offsets_file: Path,
                  offset_flush_ms: int = 10_000,
                  security: Security | None = None) -> dict[str, str]:
    """A standalone Connect worker: keys as text, values as schemaless JSON, offsets in a
    file, the REST API on 127.0.0.1, plugins found by their service manifests."""
    config: dict[str, str] = {
        "bootstrap.servers": bootstrap,
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "offset.storage.file.filename": str(offsets_file),
        "offset.flush.interval.ms": str(offset_flush_ms),
        "listeners": f"http://127.0.0.1:{rest_port}",
        "rest.advertised.host.name": "127.0.0.1",
        "rest.advertised.port": str(rest_port),
        "plugin.discovery": "service_load",
        "topic.creation.enable": "true",
        "producer.linger.ms": "5",
    }
    for key, value in _client_security(security or Security()).items():
        for prefix in ("", "producer.", "consumer.", "admin."):
            config[prefix + key] = value
    return config


def _client_security(sec: Security) -> dict[str, str]:
    """Java client properties of the settings' security (KAFKA_SECURITY_PROTOCOL, ...)."""
    out: dict[str, str] = {}
    if sec.protocol:
        out["security.protocol"] = sec.protocol
    if sec.sasl_mechanism:
        out["sasl.mechanism"] = sec.sasl_mechanism
        module = ("org.apache.kafka.common.security.plain.PlainLoginModule"
                  if sec.sasl_mechanism.upper() == "PLAIN"
                  else "org.apache.kafka.common.security.scram.ScramLoginModule")
        user = (sec.sasl_username or "").replace("\\", "\\\\").replace('"', '\\"')
        password = (sec.sasl_password or "").replace("\\", "\\\\").replace('"', '\\"')
        out["sasl.jaas.config"] = f'{module} required username="{user}" password="{password}";'
    if sec.ssl_ca_location:
        out["ssl.truststore.type"] = "PEM"
        out["ssl.truststore.location"] = sec.ssl_ca_location
    return out


def render_properties(config: Mapping[str, str], header: str) -> str:
    """A Java .properties file of ``config`` (backslashes and line breaks escaped)."""
    lines = [f"# {header}"]
    for key, value in config.items():
        text = (value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r"))
        if text.startswith(" "):
            text = "\\" + text
        lines.append(f"{key}={text}")
    return "\n".join(lines) + "\n"


def render_log4j(log_file: Path) -> str:
    """log4j 1.x (reload4j) config of the Connect worker: INFO to a rolling connect.log."""
    log = str(log_file).replace("\\", "/")
    return "\n".join([
        "log4j.rootLogger=INFO, file",
        "log4j.appender.file=org.apache.log4j.RollingFileAppender",
        f"log4j.appender.file.File={log}",
        "log4j.appender.file.MaxFileSize=20MB",
        "log4j.appender.file.MaxBackupIndex=3",
        "log4j.appender.file.layout=org.apache.log4j.PatternLayout",
        "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n",
        "log4j.logger.org.apache.kafka.clients=WARN",
        "log4j.logger.org.reflections=ERROR",
        "log4j.logger.org.eclipse.jetty=WARN",
        "",
    ])
