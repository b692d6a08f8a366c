"""`kill -s RTMIN+1 <worker pid>`: print the stack of every asyncio task, in every loop.

A stalled worker's threads all sit in ``select``; what each coroutine is waiting for (a
lock, a commit, a fetch) is only visible in the tasks' stacks. Faust runs its consumer on
an event loop of its own in a thread (aiokafka's fetcher and group coordinator live there),
which Faust's own SIGUSR1 dump (the main loop's tasks) does not show; SIGUSR2 starts pdb.
This walks every open loop the garbage collector tracks, and the loop running the handler.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import threading


def dump_tasks() -> None:
    """Print every task of every open event loop (with the thread names) to stderr."""
    objects = gc.get_objects()
    loops = [o for o in objects
             if isinstance(o, asyncio.AbstractEventLoop) and not o.is_closed()]
    try:
        running = asyncio.get_running_loop()  # the main loop, when called from the signal
    except RuntimeError:
        running = None
    if running is not None and all(loop is not running for loop in loops):
        loops.insert(0, running)
    threads = ", ".join(t.name for t in threading.enumerate())
    print(f"crosscheck: task dump: {len(loops)} event loops; threads: {threads}",
          file=sys.stderr, flush=True)
    for n, loop in enumerate(loops):
        tasks = asyncio.all_tasks(loop)
        print(f"--- loop {n} ({'running' if loop.is_running() else 'idle'}): "
              f"{len(tasks)} tasks", file=sys.stderr)
        for task in tasks:
            task.print_stack(limit=12, file=sys.stderr)
    for line in [*faust_flow(objects), *consumer_positions(objects)]:
        print(line, file=sys.stderr)
    sys.stderr.flush()


def faust_flow(objects: list[object]) -> list[str]:
    """Faust's view of its consumer: flow active, recovery, and which partitions it asks the
    fetcher for (active), holds back (paused) or skips while a stream buffer is full."""
    try:
        from faust.transport.consumer import Consumer
    except ImportError:  # pragma: no cover
        return []
    lines: list[str] = []
    for c in [o for o in objects if isinstance(o, Consumer)]:
        try:
            app = c.app
            lines.append(
                f"faust consumer: flow_active={c.flow_active} "
                f"can_resume_flow={c.can_resume_flow.is_set()} in_recovery={app.in_recovery} "
                f"rebalancing={app.rebalancing} "
                f"active={sorted(map(str, c._active_partitions or ()))} "
                f"paused={sorted(map(str, c._paused_partitions))} "
                f"buffer_full={sorted(map(str, c._buffered_partitions))}")
        except Exception as exc:
            lines.append(f"faust consumer: {exc!r}")
    return lines


def consumer_positions(objects: list[object]) -> list[str]:
    """Per assigned partition of every aiokafka consumer: position, highwater, last stable
    offset, paused, and whether fetched records wait unconsumed (why a consumer fetches no
    more: paused, or stuck behind an open transaction's last stable offset)."""
    try:
        from aiokafka import AIOKafkaConsumer
    except ImportError:  # pragma: no cover
        return []
    lines: list[str] = []
    for consumer in [o for o in objects if isinstance(o, AIOKafkaConsumer)]:
        try:
            paused = consumer.paused()
            buffered = set(consumer._fetcher._records or {})
            for tp in sorted(consumer.assignment()):
                state = consumer._subscription.subscription.assignment.state_value(tp)
                position = state.position if state.has_valid_position else None
                lines.append(
                    f"consumer {tp.topic}[{tp.partition}]: position={position} "
                    f"highwater={consumer.highwater(tp)} lso={consumer.last_stable_offset(tp)} "
                    f"paused={tp in paused} buffered={tp in buffered}")
        except Exception as exc:  # a consumer being set up or torn down
            lines.append(f"consumer: {exc!r}")
    return lines


def install() -> None:
    """Dump the tasks on SIGRTMIN+1 (a signal handler: it runs between bytecodes of the main
    thread, so it works even when the main loop is blocked)."""
    signal.signal(signal.SIGRTMIN + 1, lambda *_: dump_tasks())
