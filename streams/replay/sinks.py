"""Where a replay's outputs go: JSON Lines files, or Kafka topics in transactions.

* ``FileSink`` appends to ``mismatches.jsonl``, ``commands.jsonl`` and
  ``commands.shadow.jsonl`` (commands decided in shadow mode; the `crosscheck export` form)
  and syncs them; on resume the files are cut back to the sizes of the last checkpoint.
* ``KafkaSink`` writes mismatches and commands to the backfill topics (and, with
  ``--emit-commands``, commands to the live command topic), each command decided in shadow
  mode to the shadow twin of its command topic, in one transaction per checkpoint
  that also commits the read positions to the replay's consumer group: a stopped replay
  leaves nothing half-written, and ``committed()`` tells whether a checkpoint's transaction
  went through.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from schemas.catalog import schema
from schemas.codec import Codec
from streams.export import to_json_record
from streams.model import Command, Mismatch
from streams.records import command_record, mismatch_record
from streams.replay.checkpoint import Position
from streams.replay.offsets import committed_partitions
from topology.partitioner import partition_for

Output = Mismatch | Command
MISMATCHES_FILE = "mismatches.jsonl"
COMMANDS_FILE = "commands.jsonl"
COMMANDS_SHADOW_FILE = "commands.shadow.jsonl"


def json_of(output: Output) -> str:
    """One output as a JSON line (without the newline), as `crosscheck export` writes it."""
    if isinstance(output, Mismatch):
        body = to_json_record(schema("Mismatch"), mismatch_record(output))
    else:
        body = to_json_record(schema("Command"), command_record(output))
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def file_of(output: Output) -> str:
    """The file an output goes to."""
    if isinstance(output, Mismatch):
        return MISMATCHES_FILE
    return COMMANDS_SHADOW_FILE if output.shadow else COMMANDS_FILE


class FileSink:
    """mismatches.jsonl, commands.jsonl and commands.shadow.jsonl in a directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.paths = {name: directory / name
                      for name in (MISMATCHES_FILE, COMMANDS_FILE, COMMANDS_SHADOW_FILE)}
        for path in self.paths.values():
            path.touch(exist_ok=True)

    def sizes(self) -> dict[str, int]:
        """Current size of each file."""
        return {name: path.stat().st_size for name, path in self.paths.items()}

    def cut_back(self, sizes: dict[str, int]) -> None:
        """Truncate each file to its size at a checkpoint (0 when it has none)."""
        for name, path in self.paths.items():
            size = sizes.get(name, 0)
            if path.stat().st_size > size:
                with path.open("r+b") as f:
                    f.truncate(size)

    def write(self, outputs: Sequence[Output]) -> None:
        """Append the outputs and sync the files."""
        lines: dict[str, list[str]] = {name: [] for name in self.paths}
        for output in outputs:
            lines[file_of(output)].append(json_of(output) + "\n")
        for name, chunk in lines.items():
            if chunk:
                with self.paths[name].open("a", encoding="utf-8") as f:
                    f.writelines(chunk)
                    f.flush()
                    os.fsync(f.fileno())


class KafkaSink:
    """Transactional writes of outputs plus the consumer group's read positions."""

    def __init__(self, producer_conf: dict[str, Any], consumer: Consumer, codec: Codec,
                 mismatches: tuple[str, int] | None, commands: Sequence[tuple[str, int]],
                 shadow_commands: Sequence[tuple[str, int]] = ()) -> None:
        """``mismatches``/``commands``/``shadow_commands``: (topic name, partition count) to
        write mismatches, commands and the commands decided in shadow mode to."""
        self._consumer = consumer
        self._codec = codec
        self._mismatches = mismatches
        self._commands = list(commands)
        self._shadow = list(shadow_commands)
        self._producer = Producer(producer_conf)
        self._producer.init_transactions(60)

    def write(self, outputs: Sequence[Output], positions: Sequence[Position], tag: str) -> None:
        """Write the outputs and commit the positions in one transaction.

        The positions are committed to the group with the checkpoint's tag as offset metadata.
        """
        producer = self._producer
        producer.begin_transaction()
        try:
            for output in outputs:
                key = output.order_id.encode()
                for name, count in self._targets(output):
                    schema_name = "Mismatch" if isinstance(output, Mismatch) else "Command"
                    body = (mismatch_record(output) if isinstance(output, Mismatch)
                            else command_record(output))
                    value = self._codec.encode(schema_name, body, name)
                    self._produce(name, partition_for(key, count), key, value)
            offsets = [TopicPartition(p.topic, p.partition, p.offset, metadata=tag)
                       for p in positions]
            producer.send_offsets_to_transaction(
                offsets, self._consumer.consumer_group_metadata(), 60)
            producer.commit_transaction(120)
        except BaseException:
            producer.abort_transaction(60)
            raise

    def _targets(self, output: Output) -> list[tuple[str, int]]:
        if isinstance(output, Mismatch):
            return [self._mismatches] if self._mismatches else []
        return self._shadow if output.shadow else self._commands

    def _produce(self, topic: str, partition: int, key: bytes, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key, partition=partition)
                return
            except BufferError:
                self._producer.poll(0.1)

    def committed(self, positions: Sequence[Position], tag: str) -> bool:
        """Whether the transaction of a checkpoint committed (the offsets carry its tag)."""
        wanted = [TopicPartition(p.topic, p.partition) for p in positions]
        found = committed_partitions(self._consumer, wanted)
        return bool(found) and all(tp.metadata == tag for tp in found)

    def close(self) -> None:
        """Flush and drop the producer."""
        self._producer.flush(30)
