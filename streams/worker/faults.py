"""Fault hooks for tests of crash safety: a worker that kills itself at a chosen point.

``KILL_BEFORE_COMMIT`` (an environment variable) set to N makes the worker send itself
SIGKILL in its N-th transaction commit, after the transaction's records were produced and
acknowledged and before its offsets and commit reach the broker: the transaction is aborted
when the next producer of its id starts, while the batches it carried are already in the
local RocksDB. Off (unset) in production; read once.
"""

from __future__ import annotations

import os
import signal
from functools import cache

#: the environment variable: the 1-based commit at which the worker kills itself
KILL_BEFORE_COMMIT = "CROSSCHECK_FAULT_KILL_BEFORE_COMMIT"

_commits = [0]


@cache
def _kill_at() -> int | None:
    raw = os.environ.get(KILL_BEFORE_COMMIT, "").strip()
    return int(raw) if raw else None


def before_commit() -> None:
    """Called by each transaction commit before it is sent: kill the process if told to."""
    at = _kill_at()
    if at is None:
        return
    _commits[0] += 1
    if _commits[0] >= at:
        os.kill(os.getpid(), signal.SIGKILL)
