"""Files of the local Kafka broker: pinned version, paths, cluster id and rendered properties."""

from __future__ import annotations

import base64
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from streams.errors import BrokerError

#: the pom that pins the broker's Kafka version and lists its jars (package data)
DEFAULT_POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"
_POM_NS = "{http://maven.apache.org/POM/4.0.0}"


def kafka_version(pom: Path = DEFAULT_POM) -> str:
    """The Kafka version pinned by `<kafka.version>` in the broker pom (the one source of truth)."""
    try:
        root = ET.parse(pom).getroot()
    except (OSError, ET.ParseError) as exc:
        raise BrokerError(f"cannot read the Kafka broker pom {pom}: {exc}") from exc
    for name in (f"{_POM_NS}properties/{_POM_NS}kafka.version", "properties/kafka.version"):
        node = root.find(name)
        if node is not None and node.text and node.text.strip():
            return node.text.strip()
    raise BrokerError(f"no <kafka.version> property in {pom}")


@dataclass(frozen=True)
class BrokerPaths:
    """Where the local broker keeps its jars, data, logs and pid under CROSSCHECK_HOME."""

    home: Path
    version: str

    @property
    def jars_dir(self) -> Path:
        return self.home / f"kafka-{self.version}" / "lib"

    @property
    def data_dir(self) -> Path:
        return self.home / "broker"

    @property
    def kafka_log_dirs(self) -> Path:
        """Kafka's `log.dirs`: topic partitions and the KRaft metadata log."""
        return self.data_dir / "logs"

    @property
    def log_dir(self) -> Path:
        """Server logs (log4j output and the JVM's stdout/stderr)."""
        return self.data_dir / "server-logs"

    @property
    def server_log(self) -> Path:
        return self.log_dir / "server.log"

    @property
    def console_log(self) -> Path:
        return self.log_dir / "kafka.out"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def cluster_id_file(self) -> Path:
        return self.data_dir / "cluster.id"

    @property
    def server_properties(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log4j_properties(self) -> Path:
        return self.data_dir / "log4j.properties"

    @property
    def formatted_marker(self) -> Path:
        """Written by `StorageTool format`; present once the storage is formatted."""
        return self.kafka_log_dirs / "meta.properties"


def cluster_id(paths: BrokerPaths) -> str:
    """The KRaft cluster id of this home: derived from its path once, then read from disk."""
    stored = paths.cluster_id_file
    if stored.is_file():
        text = stored.read_text(encoding="utf-8").strip()
        if text:
            return text
    raw = uuid.uuid5(uuid.NAMESPACE_URL, f"crosscheck:{paths.home.resolve()}").bytes
    cid = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_text(cid + "\n", encoding="utf-8")
    return cid


def render_server_properties(paths: BrokerPaths, port: int, controller_port: int) -> str:
    """`server.properties` of a single-node KRaft broker+controller listening on 127.0.0.1."""
    props: dict[str, str | int] = {
        "process.roles": "broker,controller",
        "node.id": 1,
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(paths.kafka_log_dirs),
        "num.partitions": 1,
        "offsets.topic.replication.factor": 1,
        "offsets.topic.num.partitions": 8,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "transaction.state.log.num.partitions": 8,
        "group.initial.rebalance.delay.ms": 0,
        "log.cleaner.dedupe.buffer.size": 8388608,
        "auto.create.topics.enable": "false",
        "log.retention.hours": 168,
        "num.network.threads": 2,
        "num.io.threads": 4,
    }
    lines = ["# Written by crosscheck (streams/broker.py); rewritten on every start."]
    lines += [f"{key}={value}" for key, value in props.items()]
    return "\n".join(lines) + "\n"


def render_log4j_properties(paths: BrokerPaths) -> str:
    """log4j 1.x (reload4j) config: INFO to a rolling server.log, noisy loggers at WARN."""
    log = str(paths.server_log).replace("\\", "/")
    return "\n".join(
        [
            "log4j.rootLogger=INFO, file",
            "log4j.appender.file=org.apache.log4j.RollingFileAppender",
            f"log4j.appender.file.File={log}",
            "log4j.appender.file.MaxFileSize=20MB",
            "log4j.appender.file.MaxBackupIndex=3",
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout",
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n",
            "log4j.logger.kafka.request.logger=WARN",
            "log4j.logger.state.change.logger=WARN",
            "log4j.logger.kafka.log.LogCleaner=WARN",
            "log4j.logger.org.apache.kafka.controller=INFO",
            "log4j.logger.kafka.authorizer.logger=WARN",
            "",
        ]
    )
