"""A local Kafka Connect worker (standalone) running the Debezium PostgreSQL connector."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams import processes as process
from streams.cdc.config import CONNECT_POM, CdcPaths, connect_versions
from streams.cdc.connector import render_log4j, render_properties, worker_config
from streams.config import Security
from streams.errors import CdcError
from streams.maven import ensure_jars, have_jars

MAIN_CLASS = "org.apache.kafka.connect.cli.ConnectStandalone"
_JAR_MARKER = "debezium-connector-postgres-*.jar"


@dataclass(frozen=True)
class ConnectorState:
    """What Connect's REST API says of the connector: its state and its tasks'."""

    name: str
    state: str  #: RUNNING, FAILED, PAUSED, UNASSIGNED, ... or UNKNOWN (no answer)
    tasks: tuple[str, ...] = ()
    trace: str = ""

    @property
    def running(self) -> bool:
        return self.state == "RUNNING" and bool(self.tasks) and all(
            t == "RUNNING" for t in self.tasks)

    @property
    def failed(self) -> bool:
        return self.state == "FAILED" or "FAILED" in self.tasks


@dataclass(frozen=True)
class ConnectStart:
    """What `LocalConnect.start` did."""

    already_running: bool
    #: it was running with another configuration, and was restarted with this one
    reconfigured: bool
    pid: int
    seconds: float


@dataclass(frozen=True)
class ConnectStatus:
    running: bool
    pid: int | None
    url: str
    connector: ConnectorState | None = None
    versions: tuple[str, str] = field(default=("", ""))


class LocalConnect:
    """Start, stop and inspect the standalone Connect worker of one CROSSCHECK_HOME."""

    def __init__(self, home: Path, port: int = 18083, heap: str = "512m",
                 pom: Path | None = None, jars_dir: Path | None = None) -> None:
        self.paths = CdcPaths(Path(home).expanduser().resolve())
        self.port = port
        self.heap = heap
        self.pom = (pom or CONNECT_POM).resolve()
        self.versions = connect_versions(self.pom)
        self.jars_dir = (jars_dir or self.paths.jars_dir(self.pom)).expanduser().resolve()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The worker's REST API."""
        return f"http://{process.HOST}:{self.port}"

    def ensure_jars(self) -> Path:
        """Kafka Connect's and Debezium's jars, fetched from Maven Central the first time."""
        connect, debezium = self.versions
        return ensure_jars(self.pom, self.jars_dir, _JAR_MARKER,
                           f"Kafka Connect {connect} and Debezium {debezium}", CdcError)

    def have_jars(self) -> bool:
        return have_jars(self.jars_dir, _JAR_MARKER)

    # -- process ----------------------------------------------------------------------------

    def _markers(self) -> list[str]:
        return [MAIN_CLASS, str(self.paths.worker_properties)]

    def _running_pid(self) -> int | None:
        pid = process.read_pid(self.paths.connect_pid)
        if pid is None:
            return None
        if self._proc is not None and self._proc.pid == pid:
            return pid if self._proc.poll() is None else None
        return pid if process.runs(pid, self._markers()) else None

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        candidate = Path(java_home) / "bin" / "java" if java_home else None
        if candidate is not None and candidate.is_file():
            return str(candidate)
        java = shutil.which("java")
        if java is None:
            raise CdcError("java is not on PATH (Kafka Connect and Debezium need Java 17 or "
                           "newer; set JAVA_HOME)")
        return java

    def _rendered(self, connector: Mapping[str, str], bootstrap: str,
                  security: Security | None, offset_flush_ms: int) -> dict[Path, str]:
        """The worker's files for ``connector``: path -> text."""
        paths = self.paths
        header = "Written by crosscheck (crosscheck cdc start); rewritten on every start."
        worker = worker_config(bootstrap=bootstrap, rest_port=self.port,
                               offsets_file=paths.offsets_file,
                               offset_flush_ms=offset_flush_ms, security=security)
        return {paths.worker_properties: render_properties(worker, header),
                paths.connector_properties: render_properties(connector, header),
                paths.log4j_properties: render_log4j(paths.connect_log)}

    def _configured(self, files: Mapping[Path, str]) -> bool:
        """True when the files on disk (what the running worker read) are ``files``."""
        try:
            return all(path.read_text(encoding="utf-8") == text for path, text in files.items())
        except OSError:
            return False

    def _write(self, files: Mapping[Path, str]) -> None:
        self.paths.connect_dir.mkdir(parents=True, exist_ok=True)
        for path, text in files.items():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # a password
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)

    def _logs_tail(self) -> str:
        parts: list[str] = []
        console = process.tail(self.paths.connect_console, 15)
        if console:
            parts += [f"--- {self.paths.connect_console} ---", *console]
        parts += [f"--- last lines of {self.paths.connect_log} ---"]
        parts += process.tail(self.paths.connect_log) or ["(empty)"]
        return "\n".join(parts)

    def start(self, connector: Mapping[str, str], bootstrap: str,
              security: Security | None = None, timeout: float = 120.0,
              offset_flush_ms: int = 10_000) -> ConnectStart:
        """Start the worker with ``connector`` and wait until the connector and its task
        run. A worker already running with this configuration is left as it is; one
        running with another (a changed sources file) is stopped, committing its offsets,
        and started again with this one."""
        began = time.monotonic()
        files = self._rendered(connector, bootstrap, security, offset_flush_ms)
        pid = self._running_pid()
        name = connector["name"]
        reconfigured = False
        if pid is not None:
            if self._configured(files):
                self.wait_running(name, pid, time.monotonic() + timeout)
                return ConnectStart(True, False, pid, time.monotonic() - began)
            self.stop()
            reconfigured = True
        self.paths.connect_pid.unlink(missing_ok=True)  # stale
        if not process.port_free(self.port):
            raise CdcError(f"port {self.port} on {process.HOST} is already in use by another "
                           "process; set CROSSCHECK_CONNECT_PORT to a free port")
        self.ensure_jars()
        java = self._java()
        self._write(files)
        cmd = [
            java, f"-Xmx{self.heap}", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.paths.log4j_properties}",
            "-cp", str(self.jars_dir / "*"), MAIN_CLASS,
            str(self.paths.worker_properties), str(self.paths.connector_properties),
        ]  # fmt: skip
        with self.paths.connect_console.open("wb") as out:  # this run only
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, cwd=self.paths.connect_dir,
                                          start_new_session=True)
        pid = self._proc.pid
        self.paths.connect_pid.write_text(f"{pid}\n", encoding="utf-8")
        try:
            self.wait_running(name, pid, time.monotonic() + timeout)
        except CdcError:
            self.stop(timeout=15.0)
            raise
        return ConnectStart(False, reconfigured, pid, time.monotonic() - began)

    def _get(self, path: str, timeout: float = 2.0) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
            return json.loads(resp.read())

    def connector_state(self, name: str) -> ConnectorState:
        """The connector's state from the REST API (UNKNOWN when the worker does not answer
        or does not know it)."""
        try:
            doc = self._get(f"/connectors/{name}/status")
        except (OSError, ValueError):  # URLError, HTTPError, refused, bad JSON
            return ConnectorState(name, "UNKNOWN")
        tasks = doc.get("tasks") or []
        traces = [str(t.get("trace", "")) for t in tasks if t.get("trace")]
        conn = doc.get("connector") or {}
        if conn.get("trace"):
            traces.insert(0, str(conn["trace"]))
        return ConnectorState(name, str(conn.get("state", "UNKNOWN")),
                              tuple(str(t.get("state", "UNKNOWN")) for t in tasks),
                              "\n".join(traces))

    def wait_running(self, name: str, pid: int, deadline: float) -> None:
        """Wait until connector ``name`` and its task run; CdcError naming what failed."""
        while True:
            if self._running_pid() != pid:
                self.paths.connect_pid.unlink(missing_ok=True)
                raise CdcError(f"Kafka Connect (pid {pid}) exited during startup\n"
                               + self._logs_tail())
            state = self.connector_state(name)
            if state.running:
                return
            if state.failed:
                trace = "\n".join(state.trace.splitlines()[:25])
                raise CdcError(f"the connector {name} failed to start ({state.state}, tasks "
                               f"{', '.join(state.tasks) or 'none'}):\n{trace}")
            if time.monotonic() >= deadline:
                raise CdcError(f"the connector {name} was not running at {self.url} in time "
                               f"(connector {state.state}, tasks "
                               f"{', '.join(state.tasks) or 'none'})\n" + self._logs_tail())
            time.sleep(0.25)

    def stop(self, timeout: float = 30.0, kill: bool = False) -> bool:
        """Stop the worker: SIGTERM (it commits its offsets), SIGKILL after ``timeout``;
        ``kill`` sends SIGKILL at once (a crash: changes since the last offset commit are
        delivered again on the next start). False if it was not running."""
        pid = self._running_pid()
        if pid is None:
            self.paths.connect_pid.unlink(missing_ok=True)
            return False
        process.stop_pid(pid, signal.SIGKILL if kill else signal.SIGTERM, timeout)
        if self._proc is not None and self._proc.pid == pid:
            self._proc.wait(timeout=10)
        self.paths.connect_pid.unlink(missing_ok=True)
        return True

    def status(self, name: str | None) -> ConnectStatus:
        pid = self._running_pid()
        state = self.connector_state(name) if pid is not None and name else None
        return ConnectStatus(pid is not None, pid, self.url, state, self.versions)

