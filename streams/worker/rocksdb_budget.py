"""One RocksDB memory budget per worker: a block cache and a memtable limit its stores share.

Each store (a table partition, a due index) used to get its own 16 MiB block cache and up to
two 16 MiB memtables: 48 MiB each, 13 stores with 4 input partitions, so up to 624 MiB that
the worker's RSS grows into over an hour as the caches fill and the memtables of the quieter
stores reach their flush size (the 60-minute soak's heap profile: RocksDB's memtables and
caches 116 MiB after 5 minutes, 193 MiB after 10, still rising). Now all stores of a process
share one LRU block cache of ``SHARED_BLOCK_CACHE`` bytes and one ``WriteBufferManager`` of
``SHARED_MEMTABLES`` bytes, which flushes the memtable of the store being written once the
total passes its limit; RocksDB's memory is then bounded by their sum (160 MiB) whatever the
partition count. The per-store limits (``TABLE_ROCKSDB_OPTIONS``) still apply below it.

Why not less: with a budget of 64 MiB (16 MiB per store) the 1M-event bench's
worker flushed memtables so often that its engine stage, reading orders through the
many small SST files, cost 13.5-14.1 us a record against 11.2-11.9 with 128 MiB (32 MiB per
store) or more, and exactly-once ran at 28-30k against 33-34k records/s. So 128 MiB now: a
bound of 160 MiB in all.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from rocksdict import BlockBasedIndexType, BlockBasedOptions, Cache, Options, WriteBufferManager

#: the LRU block cache every store of the process reads through
SHARED_BLOCK_CACHE = 32 * 2**20
#: memtable memory (mutable and being flushed) of all stores together
SHARED_MEMTABLES = 128 * 2**20


@cache
def shared_cache() -> Cache:
    """The process's block cache (created on first use)."""
    return Cache(SHARED_BLOCK_CACHE)


@cache
def shared_write_buffers() -> WriteBufferManager:
    """The process's memtable budget (writers are never stalled: it flushes instead)."""
    return WriteBufferManager(SHARED_MEMTABLES, False)


def apply(options: Options, bloom_bits: int | None = None) -> Options:
    """Make ``options`` use the shared cache and memtable budget (and a bloom filter)."""
    table = BlockBasedOptions()
    if bloom_bits:
        table.set_bloom_filter(bloom_bits, True)
    table.set_index_type(BlockBasedIndexType.binary_search())
    table.set_block_cache(shared_cache())
    options.set_block_based_table_factory(table)
    options.set_write_buffer_manager(shared_write_buffers())
    return options


def usage() -> dict[str, int]:
    """Bytes in the shared block cache and memtables now (for the heap profile)."""
    return {"shared_block_cache": int(shared_cache().get_usage()),
            "shared_memtables": int(shared_write_buffers().get_usage())}


def patch_faust() -> None:
    """Make Faust's RocksDB tables use the shared budget (idempotent)."""
    from faust.stores.rocksdb import RocksDBOptions

    original = RocksDBOptions.as_options
    if getattr(original, "_crosscheck_budget", False):
        return

    def as_options(self: Any) -> Any:
        options = original(self)
        if not self.use_rocksdict:  # python-rocksdb: left as it is
            return options
        return apply(options, self.bloom_filter_size)

    as_options._crosscheck_budget = True  # type: ignore[attr-defined]
    RocksDBOptions.as_options = as_options  # type: ignore[method-assign]
