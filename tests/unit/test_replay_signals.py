"""The replay command's signal handling once a run is over."""

from __future__ import annotations

import os
import signal

from streams.cli.replay_cmd import ignore_stop_signals


def test_a_signal_after_the_run_changes_nothing() -> None:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        ignore_stop_signals()
        os.kill(os.getpid(), signal.SIGINT)  # lands while the report prints: nothing happens
        os.kill(os.getpid(), signal.SIGTERM)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
