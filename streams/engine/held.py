"""Held commands: a compensating command is sent only once the input its rule reads confirms it.

The engine decides a rule when the partition's watermark passes the decision time D, and
the watermark may have gone on without an input: every input was quiet (the end of the
traffic), or one was stalled past ``source_hold``. A mismatch decided so is emitted (and
RESOLVED if the late input proves it wrong), but money and goods do not move on it: its
command is *held* here until, for every input its rule reads (``RuleSpec.reads``), that
input's own progress minus ``allowed_lateness`` has passed D, no input excused
(``confirmed_until``). Then the decision is looked at again on the order's state as it is
(``fired``: its mismatch is OPEN, or was RESOLVED only by an event after D; a late event at
or before D that proves it wrong resolves it at that event's time): the command is issued
if the decision still fires, dropped if not. A dropped command's id is taken out of the
order's issued commands, so a later decision that calls for the same action can still
issue it.

Two mismatches may call for one command (command_id = hash of type and target): the engine
emits the Command once, with the first, and the later one only carries its command_id. While
the command is held, each such mismatch adds a *claim* (its mismatch_id, rule and D); the
command is issued with the first claim that is confirmed and still fires, and dropped when
every claim has been confirmed and none fires.

The held commands are part of the partition's state: each is one value of the store under
``HELD_PREFIX`` + its ledger key (``rulebook.ledger_key``: the command_id, marked for
a shadow command) (msgpack), so it goes through the changelog in the same
transaction as the decision that held it, and survives a kill -9. In memory, an index per
set of inputs read keeps the claims by D, so a record costs a few comparisons while
commands are held and nothing when none is.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from streams.config import RuleConfig
from streams.model import Command, Mismatch, Source, Status
from streams.names import HELD_PREFIX
from streams.rulebook import CommandMode, ledger_key
from streams.rules.catalog import RULE_OF, RULES

Output = Mismatch | Command
_Reads = frozenset[Source]


class BlobStore(Protocol):
    """Per-partition values (a PartitionStore's blobs)."""

    def put_blob(self, key: bytes, value: bytes | None) -> None:
        """Set (None: delete) a per-partition value."""
        ...

    def scan_blobs(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """Every per-partition value whose key starts with ``prefix``, by key."""
        ...


class Claim(msgspec.Struct, array_like=True, frozen=True):
    """A mismatch that calls for a held command: its id, rule and decision time."""

    mismatch_id: str
    rule: int
    due: int


class HeldCommand(msgspec.Struct, array_like=True):
    """A command decided but not issued: the record as it will go out (its mismatch_id is
    the claim it is issued with), its claims, and when it was held (wall clock)."""

    command: Command
    claims: list[Claim]
    held_at: int


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(HeldCommand)


def _key_of(entry: HeldCommand) -> str:
    """A held command's key: its command_id, marked when it goes to the shadow topic (a
    live and a shadow command of one id are held apart, as the order's ledger keeps them)."""
    return ledger_key(entry.command.command_id, entry.command.shadow)


def confirmed_until(progress: dict[str, int], reads: _Reads, lateness: int) -> int | None:
    """The latest decision time the inputs ``reads`` confirm: the lowest of their progress
    (largest event_time read) minus the lateness; None while one of them has none."""
    lowest: int | None = None
    for source in reads:
        t = progress.get(source.value)
        if t is None:
            return None
        if lowest is None or t < lowest:
            lowest = t
    return None if lowest is None else lowest - lateness


def is_confirmed(progress: dict[str, int], rule: int, due: int, lateness: int) -> bool:
    """Whether every input rule ``rule`` reads has progressed past ``due``."""
    until = confirmed_until(progress, RULES[rule].reads, lateness)
    return until is not None and due <= until


def fired(entry: Any) -> bool:
    """Whether a ledger entry's decision fires on the order's events as they are now: it is
    OPEN, or it was RESOLVED by an event after its decision time (a late event at or before
    D that proves the decision wrong resolves it with resolved_at <= D). The ledger is the
    engine's own record of the decision, kept when an order's history is evicted."""
    return entry.status is Status.OPEN or (entry.resolved_at is not None
                                           and entry.resolved_at > entry.decided_at)


#: (order_id, mismatch_id, rule, due) -> whether the decision still fires (``fired``), and
#: the command it calls for as the order's events say now (None: as held)
Refire = Callable[[str, str, int, int], tuple[bool, Command | None]]
#: (order_id, ledger key): take the command out of the order's issued commands
Forget = Callable[[str, str], None]


class HeldCommands:
    """The held commands of one partition number (see the module docstring)."""

    def __init__(self, rules: RuleConfig, store: BlobStore, clock: Callable[[], int]) -> None:
        self.rules = rules
        self.store = store
        self.clock = clock
        #: ledger key (command_id, marked for shadow) -> its held command
        self.held: dict[str, HeldCommand] = {}
        #: per set of inputs read: a heap of (due, ledger key, mismatch_id, rule)
        self._index: dict[_Reads, list[tuple[int, str, str, int]]] = {}
        #: commands dropped and issued since the partition was loaded (for /metrics)
        self.dropped = 0
        self.released = 0
        for _key, value in store.scan_blobs(HELD_PREFIX):
            entry = _decoder.decode(value)
            key = _key_of(entry)
            self.held[key] = entry
            for claim in entry.claims:
                self._add_to_index(key, claim)

    def __len__(self) -> int:
        return len(self.held)

    def _add_to_index(self, command_id: str, claim: Claim) -> None:
        heap = self._index.setdefault(RULES[claim.rule].reads, [])
        heapq.heappush(heap, (claim.due, command_id, claim.mismatch_id, claim.rule))

    def _store(self, entry: HeldCommand) -> None:
        self.store.put_blob(HELD_PREFIX + _key_of(entry).encode(), _encoder.encode(entry))

    def _delete(self, command_id: str) -> None:
        self.held.pop(command_id, None)
        self.store.put_blob(HELD_PREFIX + command_id.encode(), None)

    def filter(self, outputs: list[Output], progress: dict[str, int],
               forced: int | None = None) -> list[Output]:
        """The engine's outputs of one call as they go out: a command whose decision the
        inputs have not confirmed is held instead (its mismatch goes out); a mismatch that
        calls for a held command adds its claim. ``forced``: a watermark the caller forced
        (the end of a replay or batch: the inputs are complete up to it), which confirms
        every decision at or below it."""
        lateness = self.rules.allowed_lateness
        result: list[Output] = []
        claims: dict[str, Claim] = {}
        for i, output in enumerate(outputs):
            if isinstance(output, Mismatch):
                result.append(output)
                if output.status is Status.OPEN and output.command_id is not None:
                    claim = Claim(output.mismatch_id, RULE_OF[output.type], output.decided_at)
                    claims[output.mismatch_id] = claim
                    follows = i + 1 < len(outputs) and isinstance(outputs[i + 1], Command) \
                        and outputs[i + 1].mismatch_id == output.mismatch_id
                    if not follows:  # the engine did not emit the command again
                        # (the mode of a decision is its rule's now: a claim of a shadow
                        # decision joins a held shadow command, never a live one)
                        shadow = self.rules.mode_of(output.type.value) is CommandMode.SHADOW
                        key = ledger_key(output.command_id, shadow)
                        entry = self.held.get(key)
                        if entry is not None:
                            entry.claims.append(claim)
                            self._add_to_index(key, claim)
                            self._store(entry)
                continue
            claim = claims[output.mismatch_id]  # a command follows its mismatch
            if (forced is not None and claim.due <= forced) or is_confirmed(
                    progress, claim.rule, claim.due, lateness):
                result.append(output)
                continue
            key = ledger_key(output.command_id, output.shadow)
            entry = HeldCommand(output, [claim], self.clock())
            self.held[key] = entry
            self._add_to_index(key, claim)
            self._store(entry)
        return result

    def confirm(self, progress: dict[str, int], refire: Refire, forget: Forget,
                forced: int | None = None) -> list[Command]:
        """The held commands whose claims the inputs' progress (or ``forced``, as in
        ``filter``) now confirms: issued (with issued_at now) if their decision still
        fires, else dropped (``forget`` takes the id out of the order's issued commands).
        Cheap when nothing is held."""
        if not self.held:
            return []
        lateness = self.rules.allowed_lateness
        issued: list[Command] = []
        for reads, heap in self._index.items():
            if not heap:
                continue
            until = confirmed_until(progress, reads, lateness)
            if forced is not None and (until is None or forced > until):
                until = forced
            if until is None:
                continue
            while heap and heap[0][0] <= until:
                due, command_id, mismatch_id, rule = heapq.heappop(heap)
                entry = self.held.get(command_id)
                claim = Claim(mismatch_id, rule, due)
                if entry is None or claim not in entry.claims:
                    continue  # issued or dropped through another claim
                order_id = entry.command.order_id
                fires, command = refire(order_id, mismatch_id, rule, due)
                if fires:
                    self._delete(command_id)
                    self.released += 1
                    # (a claim's own command: a reservation's quantity is the one at its D)
                    issued.append(msgspec.structs.replace(
                        command or entry.command, mismatch_id=mismatch_id,
                        issued_at=self.clock(), shadow=entry.command.shadow))
                    continue
                entry.claims.remove(claim)
                if entry.claims:
                    self._store(entry)
                else:
                    self._delete(command_id)
                    self.dropped += 1
                    forget(order_id, command_id)
        return issued

    def describe(self) -> list[dict[str, Any]]:
        """The held commands, oldest decision first (status, /health, the dashboard)."""
        rows = []
        for entry in self.held.values():
            first = min(entry.claims, key=lambda c: c.due)
            waits = sorted({s.value for c in entry.claims for s in RULES[c.rule].reads})
            rows.append({"command_id": entry.command.command_id,
                         "type": entry.command.type.value,
                         "order_id": entry.command.order_id,
                         "target_id": entry.command.target_id,
                         "mismatch_id": first.mismatch_id, "decided_at": first.due,
                         "waits_for": waits, "held_at": entry.held_at})
        rows.sort(key=lambda r: (r["decided_at"], r["command_id"]))
        return rows
