"""The run's workers under a supervisor: any exit it did not ask for is restarted at once.

Like systemd or Kubernetes would: a worker killed by the run (SIGKILL), one that stalled
(exit code 75, the worker's liveness guard) or crashed is started again with the same web
port, hence the same state directory. Every exit is recorded with its cause. A slot is one
worker identity ("w1" always runs; "w2" joins and leaves); a leave is a SIGTERM, after
which the slot stays down until it joins again.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from streams.bench.procs import Child
from streams.config import Settings
from streams.worker.delivery import DELIVERY_EXIT_CODE
from streams.worker.ticker import STALL_EXIT_CODE

#: Faust reads these from the environment: the worker's default session timeout (6 s), and
#: a rebalance that waits at most 20 s for members to rejoin.
FAST_GROUP_ENV = {"BROKER_SESSION_TIMEOUT": "6", "BROKER_HEARTBEAT_INTERVAL": "1",
                  "BROKER_REBALANCE_TIMEOUT": "20"}


@dataclass
class Exit:
    """A worker process that ended."""

    slot: str
    pid: int
    at_s: float
    code: int | None
    #: "killed" (by the run), "stalled" (exit 75), "refused" (exit 76: a send was refused),
    #: "left" (asked to stop), "crashed"
    cause: str
    log_tail: str = ""


@dataclass
class Slot:
    """One worker identity: its port (and state directory) across restarts."""

    name: str
    port: int
    child: Child | None = None
    wanted: bool = False
    starts: int = 0
    #: pid the run sent SIGKILL to and has not seen exit yet
    killing: int | None = None
    #: SIGTERM sent (a leave): when to give up waiting and SIGKILL it
    leaving: float | None = None

    def alive(self) -> bool:
        """Whether its process runs."""
        return self.child is not None and self.child.alive()


@dataclass
class Supervisor:
    """Starts, kills, stops and restarts the run's workers, recording every exit."""

    settings: Settings
    workdir: Path
    worker_args: list[str]
    began: float = field(default_factory=time.monotonic)
    log: Callable[[str], None] = lambda _: None
    slots: dict[str, Slot] = field(default_factory=dict)
    exits: list[Exit] = field(default_factory=list)
    #: restarts by the cause of the exit before them
    restarts: Counter[str] = field(default_factory=Counter)

    def add(self, name: str, port: int) -> Slot:
        """A slot (not started)."""
        slot = self.slots[name] = Slot(name, port)
        return slot

    def elapsed(self) -> float:
        """Seconds since the run began."""
        return round(time.monotonic() - self.began, 1)

    def start(self, name: str) -> None:
        """Start the slot's worker (and keep it running)."""
        slot = self.slots[name]
        slot.wanted = True
        if slot.child is not None:  # running, or leaving: poll() restarts it once it is down
            return
        log_path = self.workdir / f"worker-{name}.log"
        with log_path.open("a") as out:
            out.write(f"\n=== chaos: start {name} at {self.elapsed()}s\n")
        slot.child = Child(["worker", "--web-port", str(slot.port), *self.worker_args],
                           self.settings, log_path, extra_env=dict(FAST_GROUP_ENV)).start()
        slot.starts += 1

    def kill(self, name: str) -> int | None:
        """SIGKILL the slot's worker (the supervisor restarts it). Returns the pid hit."""
        slot = self.slots[name]
        if not slot.alive() or slot.child is None or slot.child.proc is None:
            return None
        pid = slot.killing = slot.child.pid
        with contextlib.suppress(ProcessLookupError):
            slot.child.proc.send_signal(signal.SIGKILL)
        slot.child.proc.wait(30)
        self.poll()
        return pid

    def leave(self, name: str, wait: bool = False, timeout: float = 90.0) -> int | None:
        """Stop the slot's worker cleanly (SIGTERM) and keep it down: the exit is recorded by
        ``poll`` (or here, with ``wait``, which returns the exit code); a worker still up
        ``timeout`` seconds later is killed."""
        slot = self.slots[name]
        slot.wanted = False
        child = slot.child
        if child is None or child.proc is None:
            return None
        if not wait:
            if child.alive() and slot.leaving is None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(signal.SIGTERM)
                slot.leaving = time.monotonic() + timeout
            return None
        code = child.stop(timeout)
        self._record(slot, child.pid, code, "left" if code == 0 else "crashed",
                     "" if code == 0 else child.log_tail(20))
        slot.child, slot.leaving = None, None
        return code

    def poll(self) -> list[Exit]:
        """Record exits and restart wanted workers that are down; returns the new exits."""
        new: list[Exit] = []
        for slot in self.slots.values():
            child = slot.child
            if child is None or child.proc is None:
                continue
            if child.alive():
                if slot.leaving is not None and time.monotonic() > slot.leaving:
                    self.log(f"{slot.name} (pid {child.pid}) did not stop: SIGKILL")
                    with contextlib.suppress(ProcessLookupError):
                        child.proc.send_signal(signal.SIGKILL)
                continue
            code = child.proc.returncode
            if slot.killing == child.pid:
                cause = "killed"
            elif slot.leaving is not None:
                # -SIGTERM: asked to leave while still starting, before the worker's own
                # SIGTERM handler was installed; it left all the same
                cause = "left" if code in (0, -signal.SIGTERM) else "crashed"
            elif code == STALL_EXIT_CODE:
                cause = "stalled"
            elif code == DELIVERY_EXIT_CODE:
                cause = "refused"
            else:
                cause = "crashed"
            new.append(self._record(slot, child.pid, code, cause,
                                    "" if cause in ("killed", "left") else child.log_tail(20)))
            slot.killing, slot.leaving, slot.child = None, None, None
            if slot.wanted:
                self.restarts[cause] += 1
                self.start(slot.name)
        return new

    def _record(self, slot: Slot, pid: int, code: int | None, cause: str,
                tail: str = "") -> Exit:
        exit_ = Exit(slot.name, pid, self.elapsed(), code, cause, tail)
        self.exits.append(exit_)
        if cause != "killed":
            self.log(f"{slot.name} (pid {pid}) exited with {code}: {cause}")
        return exit_

    def alive(self) -> list[Slot]:
        """The slots whose worker runs."""
        return [s for s in self.slots.values() if s.alive()]

    def stop_all(self, timeout: float = 90.0) -> dict[str, int | None]:
        """Stop every worker cleanly; their exit codes."""
        codes: dict[str, int | None] = {}
        for name, slot in self.slots.items():
            if slot.child is not None:
                codes[name] = self.leave(name, wait=True, timeout=timeout)
        return codes

    def exits_doc(self) -> list[dict[str, Any]]:
        """Every exit, as JSON."""
        return [asdict(e) for e in self.exits]
