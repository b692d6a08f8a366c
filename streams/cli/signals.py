"""How the long-running benchmark commands (bench, soak, chaos) answer SIGTERM."""

from __future__ import annotations

import signal
import sys


def exit_on_sigterm() -> None:
    """Make SIGTERM unwind like Ctrl-C, so the run's worker is stopped and its topics dropped."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
