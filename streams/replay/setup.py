"""A replay's options and name, and what it needs on the cluster: topics, group, state dir."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from schemas.validation import format_time
from streams.clients import admin
from streams.config import Settings
from streams.errors import CrosscheckError
from streams.replay.checkpoint import run_params
from streams.replay.sinks import COMMANDS_SHADOW_FILE
from streams.replay.store import ReplayStore
from streams.replay.window import ReplayWindow
from topology.admin import create_topics, input_partition_count
from topology.topics import INPUTS, TopicId, Topology, command_topic

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,120}$")


@dataclass(frozen=True)
class ReplayOptions:
    """Everything `crosscheck replay` was asked to do."""

    window: ReplayWindow
    name: str
    #: write JSON Lines here instead of to the backfill topics
    out_dir: Path | None = None
    #: also send the commands to the live command topic
    emit_commands: bool = False
    #: forget an existing checkpoint of this name first
    restart: bool = False
    #: fail unless there is a checkpoint to resume
    resume: bool = False
    checkpoint_every: float = 10.0
    #: checkpoint early once this many orders are held in memory (read or changed since the
    #: last checkpoint: bounds the memory of the overlay)
    max_held_orders: int = 200_000
    #: give up when no input record came for this long before the end
    stall_timeout: float = 60.0
    #: stop (as on Ctrl-C) once this many records were read; for tests of resuming
    stop_after: int | None = None


def default_name(window: ReplayWindow) -> str:
    """The name of a replay without --name: its range, e.g. 20261121T100000Z-20261121T120000Z."""
    def compact(ms: int) -> str:
        """ISO-8601 without separators."""
        text = format_time(ms).replace("-", "").replace(":", "")
        return text.replace(".000Z", "Z").replace(".", "")
    return f"{compact(window.start)}-{compact(window.end)}"


def check_name(name: str) -> str:
    """The name, if it can be part of a group id and a directory name."""
    if not _NAME.match(name):
        raise CrosscheckError(f"--name {name!r}: use letters, digits, '.', '_' or '-' only")
    return name


@dataclass(frozen=True)
class Target:
    """Where a replay reads, writes and keeps its state."""

    group: str
    state_dir: Path
    partitions: int
    inputs: list[tuple[TopicId, str]]
    params: dict[str, str]
    output: str
    kafka_mismatches: tuple[str, int] | None
    kafka_commands: list[tuple[str, int]]
    #: where commands decided in shadow mode go (the shadow twins of ``kafka_commands``)
    kafka_shadow: list[tuple[str, int]]


def prepare(settings: Settings, options: ReplayOptions) -> Target:
    """Check the inputs, create the backfill topics if needed, wipe the state on --restart."""
    name = check_name(options.name)
    topology = Topology(settings.partitions, settings.topic_prefix, settings.topic_overrides)
    client = admin(settings)
    partitions = input_partition_count(client, topology)
    backfill = [TopicId.BACKFILL_MISMATCHES, TopicId.BACKFILL_COMMANDS,
                TopicId.BACKFILL_COMMANDS_SHADOW]
    if options.out_dir is None:
        create_topics(client, topology, only=backfill)
    existing = {n: len(t.partitions) for n, t in client.list_topics(timeout=15).topics.items()
                if not t.error}

    def topic(tid: TopicId) -> tuple[str, int]:
        """Name and partition count of an existing topic."""
        topic_name = topology.name(tid)
        if topic_name not in existing:
            raise CrosscheckError(f"topic {topic_name} does not exist "
                                  "(run `crosscheck topics create`)")
        return topic_name, existing[topic_name]

    mismatches: tuple[str, int] | None = None
    commands: list[tuple[str, int]] = []
    shadow: list[tuple[str, int]] = []
    if options.out_dir is None:
        mismatches = topic(TopicId.BACKFILL_MISMATCHES)
        commands.append(topic(command_topic(False, backfill=True)))
        shadow.append(topic(command_topic(True, backfill=True)))
        output = f"topics {mismatches[0]} and {commands[0][0]}"
        key = f"kafka:{mismatches[0]},{commands[0][0]}"
    else:
        out = options.out_dir.resolve()
        output = f"{out}/mismatches.jsonl and commands.jsonl"
        key = f"dir:{out}"
    if options.emit_commands:
        commands.append(topic(command_topic(False)))
        shadow.append(topic(command_topic(True)))
        output += f", commands also to the live topic {commands[-1][0]}"
    if settings.rules.shadowed:
        shadow_out = ([f"{options.out_dir.resolve()}/{COMMANDS_SHADOW_FILE}"]
                      if options.out_dir is not None else []) + [n for n, _ in shadow]
        output += f"; commands decided in shadow mode to {' and '.join(shadow_out)}"
    inputs = [(tid, topology.name(tid)) for tid in INPUTS]
    state_dir = settings.home / "replay" / name
    if options.restart:
        ReplayStore.wipe(state_dir)
    params = run_params(options.window, settings.rules, [n for _, n in inputs], partitions,
                        key, options.emit_commands)
    return Target(f"{settings.app_id}-replay-{name}", state_dir, partitions, inputs, params,
                  output, mismatches, commands, shadow)
