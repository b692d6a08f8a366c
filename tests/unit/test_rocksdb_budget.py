"""The worker's shared RocksDB budget: one block cache and one memtable limit for all stores."""

from __future__ import annotations

import os
from pathlib import Path

from faust.stores.rocksdb import RocksDBOptions
from rocksdict import Options, Rdict

from streams.worker import faust_patch, heapprofile, rocksdb_budget
from streams.worker.store import TABLE_ROCKSDB_OPTIONS


def test_stores_share_the_process_cache_and_memtable_budget(tmp_path: Path) -> None:
    dbs = [Rdict(str(tmp_path / "one"), options=rocksdb_budget.apply(Options(raw_mode=True))),
           Rdict(str(tmp_path / "other"), options=rocksdb_budget.apply(
               Options(raw_mode=True), bloom_bits=3))]
    try:
        before = rocksdb_budget.shared_write_buffers().get_usage()
        for _ in range(2000):
            for db in dbs:
                db[os.urandom(8)] = os.urandom(100)
        assert rocksdb_budget.shared_write_buffers().get_usage() > before  # both count in it
        for db in dbs:
            for key in list(db.keys())[:200]:
                db.get(key)
        usage = rocksdb_budget.usage()
        assert usage["shared_memtables"] > 0
        assert usage["shared_memtables"] <= rocksdb_budget.SHARED_MEMTABLES
        assert usage["shared_block_cache"] <= rocksdb_budget.SHARED_BLOCK_CACHE
        totals = heapprofile.rocksdb_memory(lambda: dbs)
        assert totals["databases"] == 2 and "shared_block_cache" in totals
    finally:
        for db in dbs:
            db.close()


def test_faust_tables_are_opened_with_the_budget(tmp_path: Path) -> None:
    faust_patch.apply()
    faust_patch.apply()  # idempotent: one wrapper
    assert getattr(RocksDBOptions.as_options, "_crosscheck_budget", False)
    opts = RocksDBOptions(**TABLE_ROCKSDB_OPTIONS)
    db = opts.open(tmp_path / "table.db")
    try:
        before = rocksdb_budget.shared_write_buffers().get_usage()
        for _ in range(2000):
            db[os.urandom(8)] = os.urandom(100)
        assert rocksdb_budget.shared_write_buffers().get_usage() > before
    finally:
        db.close()
