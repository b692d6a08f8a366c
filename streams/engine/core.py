"""The engine this process runs, native (``streams._native``) or Python, and its order objects.

Everything that builds engines or stores orders goes through here (the order objects through
``streams.engine.orders``, re-exported), so the engine and the objects the stores hold always
match: the native engine keeps ``NativeOrder`` objects, the Python one ``OrderState`` Structs;
both encode an order as the same state-format-2 bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, cast

from streams import native
from streams.config import RuleConfig
from streams.engine.orders import as_state as as_state  # re-exported
from streams.engine.orders import dump_order as dump_order  # re-exported
from streams.engine.orders import load_order as load_order  # re-exported
from streams.engine.orders import native_orders as native_orders  # re-exported
from streams.engine.orders import new_overlay as new_overlay  # re-exported
from streams.engine.partition import Engine
from streams.engine.partition import PartitionEngine as PythonEngine
from streams.engine.store import StateStore
from streams.model import Command, Mismatch, Source
from topology.partitioner import partition_for

_module = native.load()
#: "native" or "python"
NAME = "native" if _module is not None else "python"
#: the engine class: PartitionEngine(rules, store, clock), as streams.engine.partition's
PartitionEngine: Callable[[RuleConfig, StateStore, Callable[[], int]], Engine] = (
    _module.PartitionEngine if _module is not None else PythonEngine)
#: the partition Kafka's murmur2 gives a str key: ``topology.partitioner.partition_for``, in
#: Rust when the native core runs
partition_of: Callable[[str, int], int] = (
    _module.partition_for if _module is not None else partition_for)


#: what ``RecordEngine.on_record`` returns for a record it read and applied: the outputs,
#: the event's type, event_time, amount and currency (what the metrics windows count), and
#: the partition's watermark after it
Applied = tuple[list[Mismatch | Command], str, int, int | None, str | None, int | None]


class RecordEngine(Protocol):
    """The native engine's one-call path: an input record's value read (the reading of
    ``streams.fastdecode``, in Rust), checked for its partition and applied in one call."""

    last_was_new: bool

    def on_record(self, source: Source, value: bytes, schema_id: int, partition: int,
                  partitions: int) -> Applied | None:
        """What ``on_event`` gives for the value's Event, when the value is framed with
        ``schema_id``, is certainly valid, and its order_id's murmur2 partition of
        ``partitions`` is ``partition``; else None, and nothing was done (the checked path
        decides)."""
        ...

    def take_decode_seconds(self) -> float:
        """Seconds ``on_record`` spent reading values since the last call."""
        ...


class ReadEvent(Protocol):
    """An input event the native core read (``read_record``): the native engine's
    ``on_event`` applies it as the Event the checked path gives for the same record."""

    @property
    def event_time(self) -> int: ...

    @property
    def order_id(self) -> str: ...


#: the native core's ``read_record(source_name, value, schema_id, partition, partitions)``:
#: ``RecordEngine.on_record``'s reading and partition check without the engine (a ReadEvent,
#: or None: the checked path decides), for the replay; None when the Python engine runs
read_record: Callable[[str, bytes, int, int, int], ReadEvent | None] | None = (
    _module.read_record if _module is not None else None)


def record_engine(engine: Engine) -> RecordEngine | None:
    """The engine's one-call path, if it has one (the native engine), else None."""
    if _module is not None and isinstance(engine, _module.PartitionEngine):
        return cast(RecordEngine, engine)
    return None
