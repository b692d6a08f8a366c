"""The streaming engine: per-partition decisions over a pluggable state store."""

from streams.engine.core import PartitionEngine
from streams.engine.partition import Output
from streams.engine.state import (
    LedgerEntry,
    OrderState,
    PartitionMeta,
    decode_meta,
    decode_order,
    encode_meta,
    encode_order,
)
from streams.engine.store import MemoryStore, StateStore

__all__ = [
    "LedgerEntry",
    "MemoryStore",
    "OrderState",
    "Output",
    "PartitionEngine",
    "PartitionMeta",
    "StateStore",
    "decode_meta",
    "decode_order",
    "encode_meta",
    "encode_order",
]
