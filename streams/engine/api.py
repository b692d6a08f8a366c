"""The engine's interface: what the worker, the replay and the held commands use of an engine,
``streams.engine.partition.PartitionEngine`` or the native one (``streams.engine.core``)."""

from __future__ import annotations

from typing import Protocol

from streams.engine.store import StateStore
from streams.engine.work import Output
from streams.model import Event, Source


class Engine(Protocol):
    """An engine of one partition number (see the module docstring)."""

    @property
    def last_was_new(self) -> bool:
        """Whether the last ``on_event`` was a new event (False: a redelivery, ignored)."""
        ...

    @property
    def store(self) -> StateStore:
        """Where the engine keeps its state."""
        ...

    @property
    def watermark(self) -> int | None:
        """The partition's current watermark (None before there is one)."""
        ...

    def on_event(self, event: Event) -> list[Output]:
        """Apply one input event; the mismatches and commands it leads to, in order."""
        ...

    def set_idle(self, source: Source, idle: bool) -> list[Output]:
        """Mark an input source idle (or active again); what the watermark move decides."""
        ...

    def set_released(self, source: Source, released: bool) -> list[Output]:
        """Release an input source stalled past source_hold (it stops holding the
        watermark), or hold it again; what the watermark move decides."""
        ...

    def advance_to(self, watermark: int) -> list[Output]:
        """Force the watermark to ``watermark`` (never backwards); what that decides."""
        ...
