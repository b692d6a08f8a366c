"""Integration fixtures: one real broker per session, fresh topics and group ids per test."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from streams.bench.procs import env_for
from streams.broker import LocalBroker
from streams.broker_config import kafka_version
from streams.cdc.config import CdcPaths, CdcSettings
from streams.cdc.plan import shop_plan
from streams.cdc.postgres import find_bin_dir
from streams.cdc.stack import CdcStack
from streams.clients import admin
from streams.config import Settings, load_settings
from tests.integration.net import free_port_pair
from topology.admin import create_topics
from topology.topics import Topology


@pytest.fixture(scope="session")
def local_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker | None]:
    """The project's broker started once for the session; None with KAFKA_BOOTSTRAP_SERVERS."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield None
        return
    home = Path(os.environ.get("CROSSCHECK_HOME") or Path.home() / ".crosscheck").expanduser()
    jars = home / f"kafka-{kafka_version()}" / "lib"
    broker = LocalBroker(tmp_path_factory.mktemp("broker"), port=free_port_pair(),
                         heap="768m", jars_dir=jars)
    broker.ensure_jars()
    broker.start(timeout=240)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_broker: LocalBroker | None) -> str:
    """KAFKA_BOOTSTRAP_SERVERS if set, else the session's local broker."""
    return local_broker.bootstrap if local_broker is not None else \
        os.environ["KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture(scope="session")
def cdc_stack(kafka_bootstrap: str) -> Iterator[CdcStack]:
    """PostgreSQL with the example shop's tables and Connect with Debezium capturing them into
    the session's Kafka, started once for the session (topics under a prefix of its own).
    Connect commits its offsets only when it stops (so a kill redelivers what it read since)."""
    if find_bin_dir() is None:
        pytest.skip("no PostgreSQL binaries (postgres, initdb): install postgresql-15 or set "
                    "CROSSCHECK_PG_BIN")
    home = Path(tempfile.mkdtemp(prefix="crosscheck-cdc-"))
    home.chmod(0o711)  # as root, PostgreSQL runs as the postgres user: let it walk in
    cache = Path(os.environ.get("CROSSCHECK_HOME") or Path.home() / ".crosscheck").expanduser()
    settings = replace(load_settings({}), bootstrap_servers=kafka_bootstrap, home=home,
                       topic_prefix=f"cdc{uuid.uuid4().hex[:8]}.", partitions=4)
    cdc = CdcSettings(pg_port=free_port_pair(), connect_port=free_port_pair())
    stack = CdcStack(settings, cdc, shop_plan(settings.topic_prefix),
                     jars_dir=CdcPaths(cache).jars_dir(), offset_flush_ms=3_600_000)
    stack.connect.ensure_jars()
    try:
        stack.start(timeout=240)
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def settings(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    """Settings of a fresh world: unique topic prefix and app id, state under tmp_path."""
    tag = uuid.uuid4().hex[:10]
    base = load_settings({})
    return replace(
        base,
        bootstrap_servers=kafka_bootstrap,
        home=tmp_path / "home",
        topic_prefix=f"t{tag}.",
        app_id=f"cc-{tag}",
        partitions=4,
    )


@pytest.fixture
def topology(settings: Settings) -> Topology:
    """The topology of `settings`, with every topic created."""
    topo = Topology(settings.partitions, settings.topic_prefix, settings.topic_overrides)
    create_topics(admin(settings), topo)
    return topo


def env_of(settings: Settings) -> dict[str, str]:
    """Environment variables that make a `crosscheck` subprocess use `settings`."""
    return env_for(settings)
