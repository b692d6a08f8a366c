"""Garbage-collector settings of the long-running commands (worker, replay)."""

from __future__ import annotations

import gc

#: gc thresholds of a worker or replay: the first generation is collected every 50k
#: allocations, not 700
GC_THRESHOLDS = (50_000, 20, 20)


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a long-running process.

    What exists at start (modules, the app, its tables and clients) lives as long as the
    process: frozen, collections no longer walk it. Per-event objects are freed by reference
    counting (cycles are rare), so the young generation is collected far less often. With
    the defaults this was about a tenth of the worker's CPU time, and a replay of 200k
    events ran 25k against 28-30k records/s tuned.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
