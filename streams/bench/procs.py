"""`crosscheck` subprocesses for the benchmark: environment, start/stop, peak RSS, state size."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from streams.config import RULE_ENV, Settings
from streams.durations import format_duration_ms


def crosscheck_argv() -> list[str]:
    """How to run the `crosscheck` command of this installation."""
    script = Path(sys.executable).with_name("crosscheck")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from streams.cli.main import main; main()"]


def env_for(settings: Settings) -> dict[str, str]:
    """Environment variables that make a `crosscheck` subprocess use exactly ``settings``."""
    env = dict(os.environ)
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap,
        "CROSSCHECK_HOME": str(settings.home),
        "CROSSCHECK_TOPIC_PREFIX": settings.topic_prefix,
        "CROSSCHECK_APP_ID": settings.app_id,
        "CROSSCHECK_PARTITIONS": str(settings.partitions),
        "CROSSCHECK_PROCESSING_GUARANTEE": settings.processing_guarantee,
        "CROSSCHECK_TOPICS": ",".join(f"{k}={v}" for k, v in settings.topic_overrides.items()),
    })
    for attr, name in RULE_ENV.items():
        env[name] = format_duration_ms(getattr(settings.rules, attr))
    env["CROSSCHECK_COMMANDS"] = settings.rules.commands.value
    if settings.rules_file is not None:  # (what it sets per rule; the variables the rest)
        env["CROSSCHECK_RULES_FILE"] = str(settings.rules_file)
    else:
        env.pop("CROSSCHECK_RULES_FILE", None)
    return env


def peak_rss(pid: int) -> int | None:
    """Peak resident set size of a live process in bytes (Linux VmHWM), or None."""
    return _status_bytes(pid, "VmHWM:")


def current_rss(pid: int) -> int | None:
    """Resident set size of a live process in bytes now (Linux VmRSS), or None."""
    return _status_bytes(pid, "VmRSS:")


def _status_bytes(pid: int, field: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return None


def dir_size(path: Path) -> int:
    """Bytes of the files under a directory (0 if it does not exist)."""
    total = 0
    if path.exists():
        for f in path.rglob("*"):
            with contextlib.suppress(OSError):
                if f.is_file():
                    total += f.stat().st_size
    return total


@dataclass
class Child:
    """A `crosscheck` subprocess with its output in a log file; stop() ends it by pid."""

    args: Sequence[str]
    settings: Settings
    log_path: Path
    #: environment variables on top of the settings' (e.g. Faust's BROKER_SESSION_TIMEOUT)
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> Child:
        """Start it (its own session, so a Ctrl-C of the benchmark is not sent to it)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([*crosscheck_argv(), *self.args],
                                         env={**env_for(self.settings), **self.extra_env},
                                         stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        """Its process id."""
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        """Whether it is still running."""
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The end of its log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM, wait; SIGKILL if it does not stop in time. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(30)

    def __enter__(self) -> Child:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
