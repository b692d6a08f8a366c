"""What a replay run reports: each partition's progress as it goes, and its result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streams.replay.checkpoint import Counts


@dataclass
class PartitionProgress:
    """How far one partition number is."""

    partition: int
    read: int
    total: int
    watermark: int | None
    done: bool


@dataclass
class ProgressReport:
    """What the progress callback gets."""

    partitions: list[PartitionProgress]
    counts: Counts
    records_this_run: int
    seconds: float


@dataclass
class ReplayResult:
    """What a run did (``counts`` are totals over every run of this replay name)."""

    name: str
    group: str
    state_dir: Path
    output: str
    counts: Counts
    done: bool
    resumed: bool = False
    already_done: bool = False
    probe_rounds: int = 0
    seconds: float = 0.0
    records_this_run: int = 0
    warnings: list[str] = field(default_factory=list)
    #: commands held at the end of this run: decided, their inputs not past the decision
    #: time in the records read (as a live worker at the end of these records holds them)
    held: int = 0
