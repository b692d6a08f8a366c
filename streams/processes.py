"""Local processes (broker, PostgreSQL, Connect): liveness by pid, stop by pid, log tails."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

HOST = "127.0.0.1"


def tail(path: Path, lines: int = 30) -> list[str]:
    """The last lines of a text file ([] when it cannot be read)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            return [line.rstrip("\n") for line in deque(fh, maxlen=lines)]
    except OSError:
        return []


def port_free(port: int) -> bool:
    """True when nothing listens on HOST:port (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, or our own child that exited, is not running)."""
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def runs(pid: int, markers: Sequence[str]) -> bool:
    """True when ``pid`` is alive and every marker is one of its command-line arguments
    (without procfs, as on macOS, the pid alone is trusted)."""
    if not alive(pid):
        return False
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return not Path("/proc/self").exists()
    have = {arg.decode(errors="replace") for arg in args}
    return all(marker in have for marker in markers)


def read_pid(path: Path) -> int | None:
    """The pid on the first line of a pid file (None when absent or unreadable)."""
    try:
        return int(path.read_text(encoding="utf-8").splitlines()[0].strip())
    except (OSError, ValueError, IndexError):
        return None


def wait_exit(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to exit; True when it did."""
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def stop_pid(pid: int, first: signal.Signals, timeout: float) -> None:
    """Send ``first`` to ``pid``, then SIGKILL if it has not exited after ``timeout`` s."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, first)
    if not wait_exit(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_exit(pid, 10.0)
