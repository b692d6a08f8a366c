"""`kill -s RTMIN+1 <worker pid>`: print the stack of every asyncio task, in every loop.

A stalled worker's threads all sit in ``select``; what each coroutine is waiting for (a
lock, a commit, a fetch) is only visible in the tasks' stacks. Faust runs its consumer on
an event loop of its own in a thread (aiokafka's fetcher and group coordinator live there),
which Faust's own SIGUSR1 dump (the main loop's tasks) does not show; SIGUSR2 starts pdb.
This walks every open loop the garbage collector tracks.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import threading


def dump_tasks() -> None:
    """Print every task of every open event loop (with the thread names) to stderr."""
    loops = [o for o in gc.get_objects()
             if isinstance(o, asyncio.AbstractEventLoop) and not o.is_closed()]
    threads = ", ".join(t.name for t in threading.enumerate())
    print(f"crosscheck: task dump: {len(loops)} event loops; threads: {threads}",
          file=sys.stderr, flush=True)
    for n, loop in enumerate(loops):
        tasks = asyncio.all_tasks(loop)
        print(f"--- loop {n} ({'running' if loop.is_running() else 'idle'}): "
              f"{len(tasks)} tasks", file=sys.stderr)
        for task in tasks:
            task.print_stack(limit=12, file=sys.stderr)
    sys.stderr.flush()


def install() -> None:
    """Dump the tasks on SIGRTMIN+1 (a signal handler: it runs between bytecodes of the main
    thread, so it works even when the main loop is blocked)."""
    signal.signal(signal.SIGRTMIN + 1, lambda *_: dump_tasks())
