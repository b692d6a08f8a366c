"""Backfill: re-run the rules over a past time range of the inputs into separate outputs.

``Replay(settings, ReplayOptions(window=ReplayWindow(...), name=...)).run()`` does what
`crosscheck replay` does; see ``window`` for what is read and kept, ``merge`` for how the
inputs are fed, ``runner`` for checkpoints and resuming, ``result`` for what a run reports.
"""

from streams.replay.result import PartitionProgress, ProgressReport, ReplayResult
from streams.replay.runner import Replay
from streams.replay.setup import ReplayOptions, default_name
from streams.replay.window import ReplayWindow, default_warmup, select_records

__all__ = [
    "PartitionProgress",
    "ProgressReport",
    "Replay",
    "ReplayOptions",
    "ReplayResult",
    "ReplayWindow",
    "default_name",
    "default_warmup",
    "select_records",
]
