"""A local single-node Apache Kafka (KRaft, broker+controller) on 127.0.0.1, jars from Maven."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from streams.broker_config import (
    DEFAULT_POM,
    BrokerPaths,
    cluster_id,
    kafka_version,
    render_log4j_properties,
    render_server_properties,
)
from streams.errors import BrokerError
from streams.processes import alive, port_free, tail

__all__ = ["BrokerError", "BrokerPaths", "BrokerStatus", "LocalBroker", "StartResult"]

HOST = "127.0.0.1"
PORT_ENV_VAR = "CROSSCHECK_BROKER_PORT"
_MAIN_CLASS = "kafka.Kafka"
_MVN_TIMEOUT = 900.0
_FORMAT_TIMEOUT = 120.0

# librdkafka logs every refused connection; keep that out of stderr unless logging is configured.
_rdkafka_log = logging.getLogger("streams.broker.librdkafka")
_rdkafka_log.addHandler(logging.NullHandler())


@dataclass(frozen=True)
class StartResult:
    already_running: bool
    pid: int
    bootstrap: str
    seconds: float
    server_log: Path


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    answering: bool


def _port_accepts(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


class LocalBroker:
    """Start, stop and inspect the local broker of one CROSSCHECK_HOME."""

    def __init__(
        self,
        home: Path,
        port: int = 19092,
        heap: str = "512m",
        pom: Path | None = None,
        jars_dir: Path | None = None,
    ) -> None:
        self.pom = (pom or DEFAULT_POM).resolve()
        self.version = kafka_version(self.pom)
        self.paths = BrokerPaths(Path(home).expanduser().resolve(), self.version)
        self.port = port
        self.controller_port = port + 1
        self.heap = heap
        self.jars_dir = (jars_dir or self.paths.jars_dir).expanduser().resolve()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    # -- jars -----------------------------------------------------------------------------

    def ensure_jars(self) -> Path:
        """Resolve the pinned Kafka jars from Maven Central into jars_dir (once; processes
        that ask at the same time, such as parallel test workers, wait for one fetch)."""
        if self._have_jars():
            return self.jars_dir
        self.jars_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.jars_dir.parent / f".{self.jars_dir.parent.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self._have_jars():  # fetched while this process waited
                return self.jars_dir
            return self._fetch_jars()

    def _have_jars(self) -> bool:
        return self.jars_dir.is_dir() and any(self.jars_dir.glob("kafka_*.jar"))

    def _fetch_jars(self) -> Path:
        """Run Maven into a temporary directory beside jars_dir, then rename it (called by
        ensure_jars under its lock, with jars_dir's parent created)."""
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(
                f"Maven (mvn) is not on PATH; it is needed once to fetch the Kafka {self.version} "
                f"jars from Maven Central into {self.jars_dir} (install maven, or point "
                f"the jars directory at an existing Kafka libs/ folder)"
            )
        tmp = Path(tempfile.mkdtemp(prefix=".lib-", dir=self.jars_dir.parent))
        cmd = [
            mvn, "-q", "-B", "-f", str(self.pom), "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={tmp}",
        ]  # fmt: skip
        try:
            try:
                done = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=_MVN_TIMEOUT, check=False
                )
            except subprocess.TimeoutExpired as exc:
                raise BrokerError(f"mvn did not finish within {_MVN_TIMEOUT:.0f}s") from exc
            if done.returncode != 0 or not any(tmp.glob("kafka_*.jar")):
                out = (done.stdout + done.stderr).strip().splitlines()[-20:]
                raise BrokerError(
                    f"mvn could not fetch the Kafka {self.version} jars (exit {done.returncode}):\n"
                    + "\n".join(out)
                )
            try:
                tmp.rename(self.jars_dir)
            except OSError:
                if not self.jars_dir.is_dir():  # not a concurrent winner: a real failure
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.jars_dir

    # -- process ----------------------------------------------------------------------------

    def _read_pid(self) -> int | None:
        try:
            return int(self.paths.pid_file.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return None

    def _alive(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:  # started by this handle: reap it
            return self._proc.poll() is None
        return alive(pid)

    def _is_our_broker(self, pid: int) -> bool:
        if not self._alive(pid):
            return False
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return not Path("/proc/self").exists()  # no procfs (macOS): trust the pid file
        args = {arg.decode(errors="replace") for arg in cmdline}
        return _MAIN_CLASS in args and str(self.paths.server_properties) in args

    def _running_pid(self) -> int | None:
        pid = self._read_pid()
        return pid if pid is not None and self._is_our_broker(pid) else None

    def _answers(self, timeout: float) -> bool:
        """True when the broker answers a metadata request within timeout seconds."""
        if not _port_accepts(self.port, timeout=min(timeout, 1.0)):
            return False
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap, "logger": _rdkafka_log}
        admin = AdminClient(conf)
        try:
            meta = admin.list_topics(timeout=timeout)
        except Exception:  # KafkaException on timeout or transport failure
            return False
        return bool(meta.brokers)

    def _logs_tail(self) -> str:
        parts: list[str] = []
        console = tail(self.paths.console_log)
        if console:
            parts += [f"--- {self.paths.console_log} ---", *console]
        parts += [f"--- last lines of {self.paths.server_log} ---"]
        parts += tail(self.paths.server_log) or ["(empty)"]
        return "\n".join(parts)

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        candidate = Path(java_home) / "bin" / "java" if java_home else None
        if candidate is not None and candidate.is_file():
            return str(candidate)
        java = shutil.which("java")
        if java is None:
            raise BrokerError("java is not on PATH (Kafka needs Java 11 or newer; set JAVA_HOME)")
        return java

    def _write_config(self) -> None:
        paths = self.paths
        for directory in (paths.data_dir, paths.log_dir, paths.kafka_log_dirs):
            directory.mkdir(parents=True, exist_ok=True)
        props = render_server_properties(paths, self.port, self.controller_port)
        paths.server_properties.write_text(props, encoding="utf-8")
        paths.log4j_properties.write_text(render_log4j_properties(paths), encoding="utf-8")

    def _classpath(self) -> str:
        return str(self.jars_dir / "*")

    def _format_storage(self, java: str) -> None:
        if self.paths.formatted_marker.is_file():
            return
        cmd = [
            java, "-Xmx256m", f"-Dlog4j.configuration=file:{self.paths.log4j_properties}",
            "-cp", self._classpath(), "kafka.tools.StorageTool", "format",
            # "--cluster-id=ID": a base64url id may begin with "-", which argparse would
            # otherwise read as an option
            f"--cluster-id={cluster_id(self.paths)}", "-c", str(self.paths.server_properties),
            "--ignore-formatted",
        ]  # fmt: skip
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=_FORMAT_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError("formatting the broker storage timed out") from exc
        if done.returncode != 0:
            out = (done.stdout + done.stderr).strip().splitlines()[-30:]
            raise BrokerError("formatting the broker storage failed:\n" + "\n".join(out))

    def start(self, timeout: float = 120.0) -> StartResult:
        """Start the broker (idempotent) and wait until it answers metadata requests."""
        began = time.monotonic()
        pid = self._running_pid()
        if pid is not None:
            self._wait_ready(pid, began + timeout)
            return StartResult(True, pid, self.bootstrap, 0.0, self.paths.server_log)
        self.paths.pid_file.unlink(missing_ok=True)  # stale
        for port in (self.port, self.controller_port):
            if not port_free(port):
                role = "" if port == self.port else " (as the controller port, broker port + 1)"
                raise BrokerError(
                    f"port {port} on {HOST} is already in use by another process{role}; "
                    f"set {PORT_ENV_VAR} to a free port (the controller uses that port + 1)"
                )
        self.ensure_jars()
        java = self._java()
        self._write_config()
        self._format_storage(java)
        cmd = [
            java, f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.paths.log4j_properties}",
            f"-Dkafka.logs.dir={self.paths.log_dir}",
            "-cp", self._classpath(), _MAIN_CLASS, str(self.paths.server_properties),
        ]  # fmt: skip
        with self.paths.console_log.open("wb") as out:  # this run only
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.paths.data_dir,
                start_new_session=True,
            )
        pid = self._proc.pid
        self.paths.pid_file.write_text(f"{pid}\n", encoding="utf-8")
        try:
            self._wait_ready(pid, time.monotonic() + timeout)  # not counting the jar download
        except BrokerError:
            self.stop(timeout=20.0)
            raise
        return StartResult(
            False, pid, self.bootstrap, time.monotonic() - began, self.paths.server_log
        )

    def _wait_ready(self, pid: int, deadline: float) -> None:
        while True:
            if not self._alive(pid):
                self.paths.pid_file.unlink(missing_ok=True)
                raise BrokerError(
                    f"the Kafka broker (pid {pid}) exited during startup\n" + self._logs_tail()
                )
            left = deadline - time.monotonic()
            if self._answers(timeout=max(0.5, min(3.0, left))):
                return
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"the Kafka broker (pid {pid}) did not answer at {self.bootstrap} in time\n"
                    + self._logs_tail()
                )
            time.sleep(0.25)

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the broker: SIGTERM, then SIGKILL after timeout. False if it was not running."""
        pid = self._running_pid()
        if pid is None:
            self.paths.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not self._wait_exit(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_exit(pid, 10.0)
        self.paths.pid_file.unlink(missing_ok=True)
        return True

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def status(self) -> BrokerStatus:
        pid = self._running_pid()
        answering = pid is not None and self._answers(timeout=3.0)
        return BrokerStatus(pid is not None, pid, self.bootstrap, answering)
