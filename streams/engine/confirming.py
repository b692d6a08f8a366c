"""An engine's outputs as they go out: commands held until confirmed, then issued or dropped.

``Confirming`` puts a partition's ``HeldCommands`` (``streams.engine.held``) after its engine
(the Python or the native one): the worker, the replay and the tests send every list of
outputs an engine call returns through ``settle``, which holds the commands whose decision
the inputs have not confirmed, then issues or drops those the inputs' progress now
confirms. Looking decisions up and forgetting go through the store, so they see the order as the
engine keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from streams.config import RuleConfig
from streams.engine.core import as_state, load_order
from streams.engine.held import BlobStore, HeldCommands, fired
from streams.engine.partition import Engine, view_of
from streams.engine.state import encode_order
from streams.engine.store import StateStore
from streams.model import Command, Event, Mismatch, Source
from streams.rules.catalog import command_record, decide
from streams.rules.triggers import due_between

Output = Mismatch | Command


class ConfirmStore(StateStore, BlobStore, Protocol):
    """A state store with per-partition values."""


class Confirming:
    """A partition's engine and its held commands; an Engine itself (every call settled),
    for the replay's lanes and the tests."""

    def __init__(self, engine: Engine, rules: RuleConfig, store: ConfirmStore,
                 clock: Callable[[], int], force_confirms: bool = True) -> None:
        self.engine = engine
        self.rules = rules
        self.store = store
        self.held = HeldCommands(rules, store, clock)
        #: whether ``advance_to`` says the inputs are complete up to the watermark it forces
        #: (the batch-like uses: tests, benches); a replay's end does not (it holds what a
        #: live worker over the same records holds)
        self.force_confirms = force_confirms
        #: source -> an event time its input is known to have read up to beyond the events
        #: the engine was fed (a replay reads, but does not feed, the records after its end)
        self.progress_floor: dict[str, int] = {}

    # -- the Engine protocol: the engine's calls, settled ---------------------------------

    @property
    def watermark(self) -> int | None:
        """The partition's current watermark (None before there is one)."""
        return self.engine.watermark

    @property
    def last_was_new(self) -> bool:
        """Whether the last ``on_event`` was a new event."""
        return self.engine.last_was_new

    def on_event(self, event: Event) -> list[Output]:
        """The engine's ``on_event``, settled."""
        out = self.engine.on_event(event)
        return self.settle(out) if out or self.held.held else out

    def set_idle(self, source: Source, idle: bool) -> list[Output]:
        """The engine's ``set_idle``, settled."""
        return self.settle(self.engine.set_idle(source, idle))

    def set_released(self, source: Source, released: bool) -> list[Output]:
        """The engine's ``set_released``, settled."""
        return self.settle(self.engine.set_released(source, released))

    def progress(self) -> dict[str, int]:
        """Each input's progress on the partition (largest event_time read)."""
        meta = self.store.get_meta()
        progress = meta.max_time if meta is not None else {}
        if self.progress_floor:
            progress = dict(progress)
            for source, t in self.progress_floor.items():
                if t > progress.get(source, t - 1):
                    progress[source] = t
        return progress

    def settle(self, outputs: list[Output], forced: int | None = None) -> list[Output]:
        """What one engine call's outputs send out (see the module docstring); the list is
        ``outputs`` itself when nothing is held or to hold. ``forced``: the watermark the
        call forced (``advance_to``: the inputs are complete up to it)."""
        held = self.held
        if not held.held and not any(isinstance(o, Command) for o in outputs):
            return outputs
        progress = self.progress()
        result = held.filter(outputs, progress, forced)
        if held.held:
            released = held.confirm(progress, self._refire, self._forget, forced)
            if released:
                result = [*result, *released]
        return result

    def advance_to(self, watermark: int) -> list[Output]:
        """The engine's ``advance_to``, settled (with ``force_confirms``: the inputs are
        complete up to it)."""
        return self.settle(self.engine.advance_to(watermark),
                           forced=watermark if self.force_confirms else None)

    def _refire(self, order_id: str, mismatch_id: str, rule: int, due: int
                ) -> tuple[bool, Command | None]:
        order = self.store.get_order(order_id)
        if order is None:
            return False, None
        state = as_state(order)
        entry = state.ledger.get(mismatch_id)
        if entry is None or not fired(entry):
            return False, None
        view = view_of(state)
        for decision in due_between(view, self.rules, due - 1, due):
            if decision.rule == rule:
                for finding in decide(decision, view, self.rules):
                    if finding.mismatch_id == mismatch_id:
                        return True, command_record(finding, 0)
        return True, None  # (its history evicted: the command as it was held)

    def _forget(self, order_id: str, command_id: str) -> None:
        order = self.store.get_order(order_id)
        if order is None:
            return
        state = as_state(order)
        if command_id in state.commands:
            state.commands.remove(command_id)
            self.store.put_order(order_id, load_order(encode_order(state)))
