"""The local CDC stack as one: PostgreSQL (or an existing database) and Connect with Debezium."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from streams.cdc.config import CdcSettings, Database
from streams.cdc.connect import ConnectStart, ConnectStatus, LocalConnect
from streams.cdc.connector import slot_name
from streams.cdc.plan import CapturePlan
from streams.cdc.postgres import LocalPostgres, PgStatus
from streams.clients import check_reachable
from streams.config import Settings
from streams.errors import CdcError


@dataclass(frozen=True)
class StackStart:
    """What `start` did: each part's pid and whether it was running already."""

    postgres: tuple[bool, int] | None  #: None: an existing database, not started here
    connect: ConnectStart
    seconds: float


@dataclass(frozen=True)
class SlotStatus:
    name: str
    exists: bool
    active: bool
    #: how far the connector has confirmed the changes it read (its committed offset)
    confirmed_lsn: str | None = None


@dataclass(frozen=True)
class StackStatus:
    database: Database
    postgres: PgStatus | None
    connect: ConnectStatus
    slot: SlotStatus | None  #: None when the database does not answer


class CdcStack:
    """PostgreSQL and Connect of one CROSSCHECK_HOME, capturing ``plan``'s tables into the
    settings' Kafka (the local broker or KAFKA_BOOTSTRAP_SERVERS)."""

    def __init__(self, settings: Settings, cdc: CdcSettings, plan: CapturePlan,
                 jars_dir: Path | None = None, pg_bin: Path | None = None,
                 offset_flush_ms: int = 10_000) -> None:
        self.settings = settings
        self.cdc = cdc
        self.plan = plan
        self.offset_flush_ms = offset_flush_ms
        self._pg_bin = pg_bin
        self.postgres = (LocalPostgres(settings.home, cdc.pg_port, pg_bin)
                         if cdc.uses_local_database else None)
        self.connect = LocalConnect(settings.home, cdc.connect_port, cdc.connect_heap,
                                    jars_dir=jars_dir)

    def with_plan(self, plan: CapturePlan) -> CdcStack:
        """This stack capturing ``plan`` instead (its start restarts Connect with it)."""
        return CdcStack(self.settings, self.cdc, plan, self.connect.jars_dir, self._pg_bin,
                        self.offset_flush_ms)

    @property
    def database(self) -> Database:
        return self.cdc.database

    @property
    def slot(self) -> str:
        return slot_name(self.plan.name)

    def start(self, timeout: float = 180.0) -> StackStart:
        """Start PostgreSQL (unless an existing database is configured; the first time:
        initdb and the example shop's tables), then Connect with the connector, and wait
        until the connector streams from its replication slot."""
        began = time.monotonic()
        pg = self.postgres.start(timeout=min(timeout, 90.0)) if self.postgres else None
        check_database(self.database)
        check_reachable(self.settings)
        connector = self.plan.connector(self.database, self.settings.partitions)
        connect = self.connect.start(connector, self.settings.bootstrap, self.settings.security,
                                     timeout=timeout, offset_flush_ms=self.offset_flush_ms)
        self.wait_streaming(time.monotonic() + 60.0)
        return StackStart(pg, connect, time.monotonic() - began)

    def slot_status(self) -> SlotStatus | None:
        """The connector's replication slot as PostgreSQL sees it (None: no answer)."""
        try:
            with psycopg.connect(self.database.url, connect_timeout=3) as conn:
                row = conn.execute(
                    "SELECT active, confirmed_flush_lsn::text FROM pg_replication_slots "
                    "WHERE slot_name = %s", (self.slot,)).fetchone()
        except psycopg.Error:
            return None
        if row is None:
            return SlotStatus(self.slot, False, False)
        return SlotStatus(self.slot, True, bool(row[0]), row[1])

    def wait_streaming(self, deadline: float) -> None:
        """Wait until the connector reads its replication slot: from then on every change
        committed in the captured tables reaches Kafka."""
        while True:
            slot = self.slot_status()
            if slot is not None and slot.active:
                return
            if time.monotonic() >= deadline:
                state = "does not exist" if slot is None or not slot.exists else "is not read"
                raise CdcError(f"the replication slot {self.slot} of {self.database.shown} "
                               f"{state}: the connector does not stream (see "
                               f"{self.connect.paths.connect_log})")
            time.sleep(0.2)

    def stop(self, kill_connect: bool = False) -> tuple[bool, bool]:
        """Stop Connect (``kill_connect``: SIGKILL, as a crash), then the local PostgreSQL.
        Returns (Connect was running, PostgreSQL was running)."""
        connect = self.connect.stop(kill=kill_connect)
        pg = self.postgres.stop() if self.postgres else False
        return connect, pg

    def status(self) -> StackStatus:
        pg = self.postgres.status() if self.postgres else None
        slot = self.slot_status() if pg is None or pg.running else None
        return StackStatus(self.database, pg, self.connect.status(self.plan.name), slot)


def check_database(db: Database) -> None:
    """CdcError unless ``db`` answers and can feed a connector (wal_level = logical, and the
    user may replicate)."""
    try:
        with psycopg.connect(db.url, connect_timeout=5) as conn:
            wal = conn.execute("SHOW wal_level").fetchone()
            role = conn.execute("SELECT rolreplication OR rolsuper FROM pg_roles "
                                "WHERE rolname = current_user").fetchone()
    except psycopg.Error as exc:
        raise CdcError(f"cannot connect to {db.shown}: {str(exc).strip()}") from None
    if wal is None or wal[0] != "logical":
        raise CdcError(f"{db.shown} has wal_level = {wal[0] if wal else '?'}; Debezium needs "
                       "wal_level = logical (set it in postgresql.conf and restart PostgreSQL)")
    if role is None or not role[0]:
        raise CdcError(f"the user {db.user} of {db.shown} may not replicate: "
                       f"ALTER ROLE {db.user} REPLICATION (Debezium reads a replication slot)")
