"""glibc malloc settings of the worker: fewer arenas, and free memory given back every minute.

The soak's heap profile showed the worker's RSS growing while neither the Python heap nor
RocksDB's memtables and block caches did: glibc's malloc kept the memory RocksDB's flushed
memtables and the Kafka clients had freed, as free chunks inside its arenas (``mallinfo2``
fordblks went from 94 to 596 MiB in 52 minutes; see the README's soak section). Each thread
that allocates can get an arena of its own (up to 8 per core), and an arena only shrinks
from its top. So at start the worker caps the arenas at ``CROSSCHECK_MALLOC_ARENAS`` (2,
unless ``MALLOC_ARENA_MAX`` is set) and a daemon thread calls ``malloc_trim(0)`` every
``CROSSCHECK_MALLOC_TRIM_EVERY`` seconds (60; 0: never), which returns the free pages of
every arena to the kernel. Neither does anything off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from typing import Any

ARENAS_ENV = "CROSSCHECK_MALLOC_ARENAS"
TRIM_EVERY_ENV = "CROSSCHECK_MALLOC_TRIM_EVERY"
#: mallopt parameter of glibc's malloc.h
M_ARENA_MAX = -8


def _libc() -> Any | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim, libc.mallopt  # noqa: B018 (glibc only)
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(count: int) -> bool:
    """mallopt(M_ARENA_MAX, count); True if glibc took it."""
    libc = _libc()
    return bool(libc is not None and count > 0 and libc.mallopt(M_ARENA_MAX, count) == 1)


def trim() -> bool:
    """malloc_trim(0): give free memory of every arena back; True if some was released."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0) == 1)


class Trimmer(threading.Thread):
    """Calls trim() every ``every`` seconds until stopped."""

    def __init__(self, every: float) -> None:
        super().__init__(name="crosscheck-malloc-trim", daemon=True)
        self.every = every
        self.trims = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            trim()
            self.trims += 1

    def stop(self) -> None:
        """End the thread at its next wake-up."""
        self._stop_event.set()


def install(env: dict[str, str] | None = None) -> Trimmer | None:
    """Apply the settings the environment asks for (see the module docstring)."""
    env = dict(os.environ) if env is None else env
    if _libc() is None:
        return None
    if not env.get("MALLOC_ARENA_MAX"):
        limit_arenas(int(env.get(ARENAS_ENV) or 2))
    every = float(env.get(TRIM_EVERY_ENV) or 60)
    if every <= 0:
        return None
    trimmer = Trimmer(every)
    trimmer.start()
    return trimmer
