"""A local PostgreSQL for change-data-capture: a cluster under CROSSCHECK_HOME, logical WAL."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import secrets
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from streams import processes as process
from streams.cdc.config import (
    LOCAL_DATABASE,
    LOCAL_PASSWORD,
    LOCAL_USER,
    SHOP_SCHEMA_SQL,
    CdcPaths,
    Database,
    local_database,
)
from streams.errors import CdcError

PG_MAJOR = 15
BIN_ENV_VAR = "CROSSCHECK_PG_BIN"
#: when running as root, the cluster runs as this user (PostgreSQL refuses to run as root)
SERVICE_USER = "postgres"
#: where the cluster lives when the service user cannot reach CROSSCHECK_HOME (its home)
SERVICE_HOME = Path("/var/lib/postgresql/crosscheck")
_INITDB_TIMEOUT = 180.0


def find_bin_dir(explicit: Path | None = None) -> Path | None:
    """The directory holding PostgreSQL's `postgres` and `initdb`: ``explicit``,
    CROSSCHECK_PG_BIN, Debian's /usr/lib/postgresql/15/bin (or the newest version there),
    or the PATH's. None when there is none."""
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(explicit)
    if os.environ.get(BIN_ENV_VAR):
        candidates.append(Path(os.environ[BIN_ENV_VAR]))
    debian = Path("/usr/lib/postgresql")
    candidates.append(debian / str(PG_MAJOR) / "bin")
    if debian.is_dir():
        versions = sorted((p for p in debian.iterdir() if p.name.isdigit()),
                          key=lambda p: int(p.name), reverse=True)
        candidates += [p / "bin" for p in versions]
    for path in os.environ.get("PATH", "").split(os.pathsep):
        if path:
            candidates.append(Path(path))
    for candidate in candidates:
        if (candidate / "postgres").is_file() and (candidate / "initdb").is_file():
            return candidate
    return None


@dataclass(frozen=True)
class PgStatus:
    running: bool
    pid: int | None
    address: str
    answering: bool
    data_dir: Path


class LocalPostgres:
    """Initialise, start, stop and inspect the local PostgreSQL cluster of one CROSSCHECK_HOME."""

    def __init__(self, home: Path, port: int = 15432, bin_dir: Path | None = None) -> None:
        self.paths = CdcPaths(Path(home).expanduser().resolve())
        self.port = port
        self._bin_dir = bin_dir
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def database(self) -> Database:
        """The application database (`shop`, owned by the role `crosscheck`)."""
        return local_database(self.port)

    @property
    def address(self) -> str:
        return f"{process.HOST}:{self.port}"

    def bin_dir(self) -> Path:
        found = find_bin_dir(self._bin_dir)
        if found is None:
            raise CdcError(
                f"no PostgreSQL binaries (postgres, initdb) found: install PostgreSQL {PG_MAJOR} "
                f"(Debian: apt-get install postgresql-{PG_MAJOR}) or set {BIN_ENV_VAR} to the "
                "directory holding them")
        return found

    # -- who runs it, where its data is ---------------------------------------------------

    def _service_user(self) -> pwd.struct_passwd | None:
        """The user the cluster runs as when we are root; None: run as ourselves."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(SERVICE_USER)
        except KeyError:
            raise CdcError(f"running as root, and there is no {SERVICE_USER!r} user to run "
                           "PostgreSQL as (it refuses to run as root): install the postgresql "
                           "package, which creates it, or run as another user") from None

    def _as_user(self, user: pwd.struct_passwd | None) -> dict[str, Any]:
        """subprocess arguments that run a command as ``user`` (none for ourselves)."""
        if user is None:
            return {}
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def _reaches(self, user: pwd.struct_passwd, path: Path) -> bool:
        """True when ``user`` can walk into ``path``."""
        done = subprocess.run(["test", "-x", str(path)], check=False, **self._as_user(user))
        return done.returncode == 0

    def data_dir(self) -> Path:
        """The cluster's real data directory (symlinks resolved)."""
        return self.paths.pg_data.resolve()

    def _make_data_dir(self, user: pwd.struct_passwd | None) -> Path:
        """Create the data directory, owned by the user the cluster runs as. It is
        pg_data under CROSSCHECK_HOME; when that user (postgres, as we are root) cannot
        reach it (a home under /root), the cluster lives in that user's home instead and
        pg_data is a symlink to it."""
        link = self.paths.pg_data
        self.paths.pg_dir.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.is_dir():
            return link.resolve()
        target = link
        if user is not None and not self._reaches(user, self.paths.pg_dir):
            tag = hashlib.sha256(str(self.paths.home).encode()).hexdigest()[:16]
            target = SERVICE_HOME / tag
            SERVICE_HOME.mkdir(parents=True, exist_ok=True)
            os.chown(SERVICE_HOME, user.pw_uid, user.pw_gid)
            link.symlink_to(target, target_is_directory=True)
        target.mkdir(mode=0o700, exist_ok=True)
        if user is not None:
            os.chown(target, user.pw_uid, user.pw_gid)
        return target

    # -- initdb -----------------------------------------------------------------------------

    def _superuser_password(self) -> str:
        path = self.paths.pg_password_file
        with contextlib.suppress(OSError):
            text = path.read_text(encoding="utf-8").strip()
            if text:
                return text
        password = secrets.token_urlsafe(18)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(password + "\n")
        return password

    @property
    def _superuser(self) -> Database:
        return Database(process.HOST, self.port, "postgres", "postgres",
                        self._superuser_password())

    def initialized(self) -> bool:
        return (self.paths.pg_data / "PG_VERSION").is_file()

    def init(self) -> bool:
        """Create the cluster (initdb) unless it exists; True when it was created."""
        if self.initialized():
            return False
        user = self._service_user()
        data = self._make_data_dir(user)
        password = self._superuser_password()
        with tempfile.NamedTemporaryFile("w", prefix="crosscheck-pg-", suffix=".pw",
                                         delete=False) as pw:
            pw.write(password + "\n")
        try:
            if user is not None:
                os.chown(pw.name, user.pw_uid, user.pw_gid)
            cmd = [str(self.bin_dir() / "initdb"), "-D", str(data), "-U", "postgres",
                   f"--pwfile={pw.name}", "--auth-host=scram-sha-256",
                   "--auth-local=scram-sha-256", "-E", "UTF8", "--no-locale",
                   "--no-instructions"]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                      timeout=_INITDB_TIMEOUT, cwd=data, **self._as_user(user))
            except subprocess.TimeoutExpired as exc:
                raise CdcError(f"initdb of {data} did not finish in time") from exc
        finally:
            os.unlink(pw.name)
        if done.returncode != 0:
            out = (done.stdout + done.stderr).strip().splitlines()[-20:]
            raise CdcError(f"initdb of {data} failed (exit {done.returncode}):\n"
                           + "\n".join(out))
        return True

    # -- process ----------------------------------------------------------------------------

    def _running_pid(self) -> int | None:
        pid = process.read_pid(self.data_dir() / "postmaster.pid")
        if pid is None:
            return None
        if self._proc is not None and self._proc.pid == pid and self._proc.poll() is not None:
            return None
        return pid if process.runs(pid, [str(self.data_dir())]) else None

    def _command(self) -> list[str]:
        settings = {
            "port": str(self.port),
            "listen_addresses": process.HOST,
            "unix_socket_directories": "",
            "wal_level": "logical",
            "max_replication_slots": "16",
            "max_wal_senders": "16",
            "max_connections": "60",
            "shared_buffers": "64MB",
            "synchronous_commit": "off",
            "logging_collector": "off",
            "log_min_messages": "warning",
        }
        cmd = [str(self.bin_dir() / "postgres"), "-D", str(self.data_dir())]
        for key, value in settings.items():
            cmd += ["-c", f"{key}={value}"]
        return cmd

    def _logs_tail(self) -> str:
        return "\n".join([f"--- last lines of {self.paths.pg_log} ---",
                          *(process.tail(self.paths.pg_log) or ["(empty)"])])

    def start(self, timeout: float = 60.0) -> tuple[bool, int]:
        """Initialise (first run) and start the cluster, wait until it accepts logins, and
        create the role, the database and the example shop's tables (idempotent).
        Returns (already running, pid)."""
        pid = self._running_pid()
        if pid is not None:
            self._wait_ready(pid, time.monotonic() + timeout)
            self.bootstrap()
            return True, pid
        if not process.port_free(self.port):
            raise CdcError(f"port {self.port} on {process.HOST} is already in use by another "
                           "process; set CROSSCHECK_PG_PORT to a free port (below 32768)")
        self.init()
        user = self._service_user()
        with self.paths.pg_log.open("ab") as log:
            self._proc = subprocess.Popen(
                self._command(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, cwd=self.data_dir(), start_new_session=True,
                **self._as_user(user))
        pid = self._proc.pid
        try:
            self._wait_ready(pid, time.monotonic() + timeout)
            self.bootstrap()
        except CdcError:
            self.stop(timeout=20.0)
            raise
        return False, pid

    def _answers(self, db: Database, timeout: float = 2.0) -> bool:
        try:
            with psycopg.connect(db.url, connect_timeout=max(1, int(timeout))):
                return True
        except psycopg.Error:
            return False

    def _wait_ready(self, pid: int, deadline: float) -> None:
        while True:
            if not process.alive(pid):
                raise CdcError(f"PostgreSQL (pid {pid}) exited during startup\n"
                               + self._logs_tail())
            if self._answers(self._superuser):
                return
            if time.monotonic() >= deadline:
                raise CdcError(f"PostgreSQL (pid {pid}) did not accept logins at "
                               f"{self.address} in time\n" + self._logs_tail())
            time.sleep(0.2)

    def bootstrap(self, schema_sql: Path = SHOP_SCHEMA_SQL) -> None:
        """The role `crosscheck` (LOGIN REPLICATION), its database `shop` and the tables of
        ``schema_sql`` in it; what exists already is left as it is."""
        with psycopg.connect(self._superuser.url, autocommit=True) as conn:
            role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                (LOCAL_USER,)).fetchone()
            if role is None:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN REPLICATION PASSWORD {}").format(
                    sql.Identifier(LOCAL_USER), sql.Literal(LOCAL_PASSWORD)))
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                 (LOCAL_DATABASE,)).fetchone()
            if found is None:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(LOCAL_DATABASE), sql.Identifier(LOCAL_USER)))
        apply_schema(self.database, schema_sql)

    def stop(self, timeout: float = 30.0) -> bool:
        """Fast shutdown (SIGINT: clients, replication included, are disconnected), SIGKILL
        after ``timeout``. False if it was not running."""
        pid = self._running_pid()
        if pid is None:
            return False
        process.stop_pid(pid, signal.SIGINT, timeout)
        return True

    def status(self) -> PgStatus:
        pid = self._running_pid() if self.paths.pg_data.exists() else None
        answering = pid is not None and self._answers(self.database)
        return PgStatus(pid is not None, pid, self.address, answering,
                        self.paths.pg_data.resolve())


def apply_schema(database: Database, schema_sql: Path = SHOP_SCHEMA_SQL) -> None:
    """Run the statements of ``schema_sql`` (the example shop's tables) in ``database``."""
    try:
        text = schema_sql.read_text(encoding="utf-8")
    except OSError as exc:
        raise CdcError(f"cannot read the schema {schema_sql}: {exc}") from exc
    try:
        with psycopg.connect(database.url, autocommit=True) as conn:
            conn.execute(text.encode())
    except psycopg.Error as exc:
        raise CdcError(f"creating the tables of {schema_sql} in {database.shown} failed: "
                       f"{exc}") from exc
