"""The garbage-collector settings of the worker and the replay."""

from __future__ import annotations

import gc

from streams.gctune import GC_THRESHOLDS, tune_gc


def test_tune_gc_freezes_what_exists_and_collects_the_young_rarely() -> None:
    before = gc.get_threshold()
    try:
        kept = [object() for _ in range(10)]
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[0] >= 50_000  # the default is 700
        assert gc.get_freeze_count() > len(kept)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
