"""Real-broker tests of streams.broker.LocalBroker: lifecycle, port clashes, transactions."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streams.broker import LocalBroker
from streams.broker_config import kafka_version
from streams.errors import BrokerError
from tests.integration.net import free_port_pair

pytestmark = pytest.mark.integration

MakeBroker = Callable[..., LocalBroker]


@pytest.fixture(scope="module")
def shared_jars() -> Path:
    """The Kafka jars, fetched with mvn once per machine and shared by every test broker."""
    home = Path.home() / ".crosscheck"
    return LocalBroker(home, jars_dir=home / f"kafka-{kafka_version()}" / "lib").ensure_jars()


@pytest.fixture
def make_broker(tmp_path: Path, shared_jars: Path) -> Iterator[MakeBroker]:
    """Build LocalBrokers in a fresh home on free ports; every one is stopped at teardown."""
    made: list[LocalBroker] = []

    def build(port: int | None = None, heap: str = "384m", name: str = "home") -> LocalBroker:
        broker = LocalBroker(
            tmp_path / name, port=port or free_port_pair(), heap=heap, jars_dir=shared_jars
        )
        made.append(broker)
        return broker

    yield build
    for broker in made:
        broker.stop(timeout=30.0)


@pytest.fixture(scope="module")
def running_broker(
    tmp_path_factory: pytest.TempPathFactory, shared_jars: Path
) -> Iterator[LocalBroker]:
    home = tmp_path_factory.mktemp("txn-broker")
    broker = LocalBroker(home, port=free_port_pair(), heap="384m", jars_dir=shared_jars)
    broker.start(timeout=120.0)
    try:
        yield broker
    finally:
        broker.stop(timeout=30.0)


def test_start_status_stop_restart(make_broker: MakeBroker) -> None:
    broker = make_broker()
    before = broker.status()
    assert not before.running and before.pid is None and not before.answering

    first = broker.start()
    assert not first.already_running
    assert first.bootstrap == broker.bootstrap == f"127.0.0.1:{broker.port}"
    assert broker.paths.pid_file.read_text().strip() == str(first.pid)
    assert broker.paths.formatted_marker.is_file()
    props = broker.paths.server_properties.read_text()
    assert f"controller.quorum.voters=1@127.0.0.1:{broker.port + 1}" in props
    assert "auto.create.topics.enable=false" in props

    status = broker.status()
    assert status.running and status.answering and status.pid == first.pid

    again = broker.start()
    assert again.already_running and again.pid == first.pid

    # A second handle on the same home (as a separate CLI call would make) sees the same broker.
    other = LocalBroker(broker.paths.home, port=broker.port, jars_dir=broker.jars_dir)
    assert other.status().pid == first.pid
    assert other.start().already_running

    assert broker.stop()
    after = broker.status()
    assert not after.running and not after.answering
    assert not broker.paths.pid_file.exists()
    assert not broker.stop()

    # Restart on the already formatted storage.
    second = broker.start()
    assert not second.already_running and second.pid != first.pid
    assert broker.status().answering
    assert broker.stop()


def test_port_in_use_is_reported_before_java_starts(make_broker: MakeBroker) -> None:
    port = free_port_pair()
    for busy in (port, port + 1):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", busy))
            listener.listen()
            broker = make_broker(port=port, name=f"busy-{busy}")
            with pytest.raises(
                BrokerError, match=rf"port {busy} on 127\.0\.0\.1 is already in use"
            ):
                broker.start(timeout=10.0)
            assert not broker.paths.pid_file.exists()
            assert not broker.status().running


def test_jvm_that_dies_at_startup_is_reported_with_its_output(
    make_broker: MakeBroker,
) -> None:
    broker = make_broker(heap="not-a-size")
    with pytest.raises(BrokerError, match="exited during startup") as info:
        broker.start(timeout=30.0)
    assert "heap size" in str(info.value).lower()
    assert not broker.paths.pid_file.exists()


def _consume_all(bootstrap: str, topic: str, isolation: str, expect_at_least: int) -> list[str]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"t-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    values: list[str] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30.0
        idle_since: float | None = None
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                if len(values) >= expect_at_least:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > 2.0:
                        break
                continue
            err = msg.error()
            if err is not None:
                assert err.code() == KafkaError._PARTITION_EOF, err
                continue
            idle_since = None
            raw = msg.value()
            assert raw is not None
            values.append(raw.decode())
    finally:
        consumer.close()
    return values


def test_transactions_committed_visible_aborted_hidden(running_broker: LocalBroker) -> None:
    bootstrap = running_broker.bootstrap
    topic = f"txn-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics(
        [NewTopic(topic, num_partitions=2, replication_factor=1)]
    ).values():
        future.result(timeout=30)

    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"tx-{topic}"})
    producer.init_transactions(30)
    for value, commit in (("c1", True), ("a1", False), ("c2", True), ("a2", False)):
        producer.begin_transaction()
        producer.produce(topic, key=value.encode(), value=value.encode())
        producer.flush(10)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)
    assert producer.flush(10) == 0

    committed = _consume_all(bootstrap, topic, "read_committed", expect_at_least=2)
    assert sorted(committed) == ["c1", "c2"]
    everything = _consume_all(bootstrap, topic, "read_uncommitted", expect_at_least=4)
    assert sorted(everything) == ["a1", "a2", "c1", "c2"]


def test_missing_maven_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    broker = LocalBroker(tmp_path / "home", jars_dir=tmp_path / "jars" / "lib")
    with pytest.raises(BrokerError, match=r"Maven \(mvn\) is not on PATH"):
        broker.ensure_jars()


def test_failing_maven_reports_its_last_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "mvn"
    fake.write_text("#!/bin/sh\necho '[ERROR] Could not resolve dependencies' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    broker = LocalBroker(tmp_path / "home", jars_dir=tmp_path / "jars" / "lib")
    with pytest.raises(BrokerError, match="Could not resolve dependencies"):
        broker.ensure_jars()
    assert not broker.jars_dir.exists()
    left = [p for p in broker.jars_dir.parent.iterdir() if p.suffix != ".lock"]
    assert left == []  # the temporary directory is gone (the fetch's lock file stays)


def test_a_cluster_id_beginning_with_a_dash_formats(make_broker: MakeBroker) -> None:
    """Base64url cluster ids may begin with '-': formatting must not read it as an option."""
    broker = make_broker()
    broker.paths.cluster_id_file.parent.mkdir(parents=True, exist_ok=True)
    broker.paths.cluster_id_file.write_text("-" + "A" * 21 + "\n", encoding="utf-8")
    result = broker.start()
    assert not result.already_running and broker.status().answering
    assert broker.stop()
