"""Settings of the local CDC stack: ports, the database to capture, and where its files live."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from streams.errors import CdcError, ConfigError
from streams.maven import pom_property

DEFAULT_PG_PORT = 15432
DEFAULT_CONNECT_PORT = 18083
CONNECT_POM = Path(__file__).resolve().parent / "connect-pom.xml"
SHOP_SCHEMA_SQL = Path(__file__).resolve().parent / "shop_schema.sql"

#: the local database and the role that owns it (a development stack on 127.0.0.1)
LOCAL_DATABASE = "shop"
LOCAL_USER = "crosscheck"
LOCAL_PASSWORD = "crosscheck"


@dataclass(frozen=True)
class Database:
    """Where a PostgreSQL database is and how to log in (from a postgresql:// URL)."""

    host: str
    port: int
    dbname: str
    user: str
    password: str = ""
    #: libpq parameters of the URL's query string, e.g. sslmode
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_url(cls, url: str, name: str = "database URL") -> Database:
        """Parse ``postgresql://user:password@host:port/dbname?sslmode=...``."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("postgresql", "postgres"):
            raise ConfigError(f"{name}: {url!r} is not a postgresql://user:password@host:port/"
                              "dbname URL")
        dbname = unquote(parts.path.lstrip("/"))
        try:
            port = parts.port or 5432
        except ValueError:
            raise ConfigError(f"{name}: {url!r} has a bad port") from None
        if not parts.hostname or not dbname or not parts.username:
            raise ConfigError(f"{name}: {url!r} needs a user, a host and a database name "
                              "(postgresql://user:password@host:port/dbname)")
        return cls(parts.hostname, port, dbname, unquote(parts.username),
                   unquote(parts.password or ""), tuple(parse_qsl(parts.query)))

    @property
    def url(self) -> str:
        """The URL psycopg connects with."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in self.params)
        return (f"postgresql://{auth}@{self.host}:{self.port}/{quote(self.dbname, safe='')}"
                + (f"?{query}" if query else ""))

    @property
    def shown(self) -> str:
        """The URL without the password, for messages."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"


def local_database(port: int) -> Database:
    """The local stack's database on 127.0.0.1:port."""
    return Database("127.0.0.1", port, LOCAL_DATABASE, LOCAL_USER, LOCAL_PASSWORD)


@dataclass(frozen=True)
class CdcSettings:
    """What `crosscheck cdc` and `simulate --to-db` read from the environment."""

    pg_port: int = DEFAULT_PG_PORT
    connect_port: int = DEFAULT_CONNECT_PORT
    #: an existing database to capture instead of the local one (None: the local one)
    external: Database | None = None
    connect_heap: str = "512m"

    @property
    def database(self) -> Database:
        """The database the connector captures and the simulator writes to."""
        return self.external or local_database(self.pg_port)

    @property
    def uses_local_database(self) -> bool:
        return self.external is None


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name) or ""
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"{name}: {raw!r} is not a port number")
    return int(raw)


def load_cdc_settings(env: Mapping[str, str] | None = None) -> CdcSettings:
    """Read CROSSCHECK_PG_PORT, CROSSCHECK_CONNECT_PORT and CROSSCHECK_CDC_DATABASE."""
    env = os.environ if env is None else env
    url = env.get("CROSSCHECK_CDC_DATABASE") or ""
    return CdcSettings(
        pg_port=_port(env, "CROSSCHECK_PG_PORT", DEFAULT_PG_PORT),
        connect_port=_port(env, "CROSSCHECK_CONNECT_PORT", DEFAULT_CONNECT_PORT),
        external=Database.from_url(url, "CROSSCHECK_CDC_DATABASE") if url else None,
    )


def connect_versions(pom: Path = CONNECT_POM) -> tuple[str, str]:
    """(Kafka Connect version, Debezium version) pinned by the Connect pom."""
    return (pom_property(pom, "connect.version", CdcError),
            pom_property(pom, "debezium.version", CdcError))


@dataclass(frozen=True)
class CdcPaths:
    """Where the CDC stack keeps its jars, data, logs and pids under CROSSCHECK_HOME."""

    home: Path

    @property
    def root(self) -> Path:
        return self.home / "cdc"

    def jars_dir(self, pom: Path = CONNECT_POM) -> Path:
        connect, debezium = connect_versions(pom)
        return self.home / f"connect-{connect}-debezium-{debezium}" / "lib"

    # PostgreSQL

    @property
    def pg_dir(self) -> Path:
        return self.root / "postgres"

    @property
    def pg_data(self) -> Path:
        """The cluster's data directory (a symlink when the postgres user cannot reach it
        here: see LocalPostgres)."""
        return self.pg_dir / "data"

    @property
    def pg_log(self) -> Path:
        return self.pg_dir / "postgres.log"

    @property
    def pg_password_file(self) -> Path:
        """The superuser's password (the stack's own bootstrap only), mode 0600."""
        return self.pg_dir / "superuser.password"

    # Kafka Connect

    @property
    def connect_dir(self) -> Path:
        return self.root / "connect"

    @property
    def worker_properties(self) -> Path:
        return self.connect_dir / "worker.properties"

    @property
    def connector_properties(self) -> Path:
        return self.connect_dir / "connector.properties"

    @property
    def log4j_properties(self) -> Path:
        return self.connect_dir / "log4j.properties"

    @property
    def offsets_file(self) -> Path:
        """Standalone Connect's source offsets (the last LSN it committed)."""
        return self.connect_dir / "offsets.dat"

    @property
    def connect_pid(self) -> Path:
        return self.connect_dir / "connect.pid"

    @property
    def connect_log(self) -> Path:
        return self.connect_dir / "connect.log"

    @property
    def connect_console(self) -> Path:
        return self.connect_dir / "connect.out"
