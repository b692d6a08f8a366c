"""What a replay saves to resume: its parameters, read positions, undelivered outputs, counts.

A checkpoint is written in two steps (see ``runner``): first, atomically with the engine
state, with the outputs found since the previous checkpoint as ``pending``; then, once the
outputs are delivered, again with ``pending`` empty. A replay that finds pending outputs on
start delivers them first (files are cut back to ``file_sizes``; Kafka outputs are sent
again unless the consumer group's committed offsets show that their transaction committed).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

from streams.config import RuleConfig
from streams.model import Command, Mismatch
from streams.replay.window import ReplayWindow

Output = Mismatch | Command


class Position(msgspec.Struct, array_like=True, frozen=True, order=True):
    """Next offset to read of one input topic-partition."""

    topic: str
    partition: int
    offset: int


class Counts(msgspec.Struct):
    """Totals of a replay so far."""

    records: int = 0  #: input records read (fed or skipped)
    events: int = 0  #: events fed to the engines
    skipped: int = 0  #: records that were undecodable, invalid or misrouted
    mismatches: int = 0  #: OPEN mismatches written
    resolved: int = 0  #: RESOLVED mismatches written
    commands: int = 0  #: commands written


class Checkpoint(msgspec.Struct):
    """The checkpoint record (see the module docstring)."""

    params: dict[str, str]
    #: random id of this replay's run (a --restart makes a new one); with ``seq`` it tags
    #: the offsets a checkpoint's transaction commits
    run_id: str = ""
    seq: int = 0
    positions: list[Position] = msgspec.field(default_factory=list)
    #: read positions where the replay started (for progress)
    started: list[Position] = msgspec.field(default_factory=list)
    pending: list[tuple[str, bytes]] = msgspec.field(default_factory=list)
    file_sizes: dict[str, int] = msgspec.field(default_factory=dict)
    counts: Counts = msgspec.field(default_factory=Counts)
    done: bool = False

    @property
    def tag(self) -> str:
        """Offset metadata naming this checkpoint."""
        return f"crosscheck-replay:{self.run_id}:{self.seq}"


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Checkpoint)
_mismatch = msgspec.msgpack.Decoder(Mismatch)
_command = msgspec.msgpack.Decoder(Command)


def encode(checkpoint: Checkpoint) -> bytes:
    """Checkpoint -> msgpack bytes."""
    return _encoder.encode(checkpoint)


def decode(data: bytes) -> Checkpoint:
    """msgpack bytes -> Checkpoint."""
    return _decoder.decode(data)


def pack_outputs(outputs: list[Output]) -> list[tuple[str, bytes]]:
    """Outputs as (kind, msgpack) pairs for ``Checkpoint.pending``."""
    return [("m" if isinstance(o, Mismatch) else "c", _encoder.encode(o)) for o in outputs]


def unpack_outputs(packed: list[tuple[str, bytes]]) -> list[Output]:
    """Inverse of pack_outputs."""
    return [_mismatch.decode(data) if kind == "m" else _command.decode(data)
            for kind, data in packed]


#: rule settings that do not change what a replay decides
_NOT_DECISIVE = frozenset({"idle_timeout", "source_hold", "metrics_window",
                           "storm_threshold"})


def run_params(window: ReplayWindow, rules: RuleConfig, inputs: list[str], partitions: int,
               output: str, emit_commands: bool) -> dict[str, str]:
    """The parameters a resumed replay must share with the one that saved the checkpoint."""
    params: dict[str, Any] = {
        "from": window.start, "to": window.end, "warmup": window.warmup,
        "inputs": ",".join(inputs), "partitions": partitions, "output": output,
        "emit_commands": emit_commands,
    }
    for f in dataclasses.fields(rules):
        if f.name not in _NOT_DECISIVE:
            params[f"rules.{f.name}"] = getattr(rules, f.name)
    return {k: str(v) for k, v in params.items()}


def differences(saved: dict[str, str], wanted: dict[str, str]) -> list[str]:
    """Human-readable differences between two parameter sets (empty if equal)."""
    keys = sorted(set(saved) | set(wanted))
    return [f"{k}: {saved.get(k, '-')} -> {wanted.get(k, '-')}" for k in keys
            if saved.get(k) != wanted.get(k)]
