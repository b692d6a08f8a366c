"""The task dump of a stalled worker: every open event loop's tasks, with their stacks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time

import pytest

from streams.worker import diagnostics


async def waits_for_a_commit_forever(event: asyncio.Event) -> None:
    await event.wait()


def test_dump_shows_the_tasks_of_a_loop_in_another_thread(
        capsys: pytest.CaptureFixture[str]) -> None:
    loop = asyncio.new_event_loop()
    started = threading.Event()
    tasks: list[asyncio.Task[None]] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        event = asyncio.Event()
        tasks.append(loop.create_task(waits_for_a_commit_forever(event), name="the-stuck-one"))
        loop.call_soon(started.set)
        loop.run_forever()
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))

    thread = threading.Thread(target=run, name="consumer-thread", daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        diagnostics.dump_tasks()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
    err = capsys.readouterr().err
    assert "crosscheck: task dump:" in err and "consumer-thread" in err
    assert "(running)" in err
    assert "the-stuck-one" in err and "waits_for_a_commit_forever" in err


def test_the_signal_triggers_the_dump(capsys: pytest.CaptureFixture[str]) -> None:
    previous = signal.getsignal(signal.SIGRTMIN + 1)
    try:
        diagnostics.install()
        os.kill(os.getpid(), signal.SIGRTMIN + 1)
        time.sleep(0.1)  # the handler runs between bytecodes of the main thread
    finally:
        signal.signal(signal.SIGRTMIN + 1, previous)
    assert "crosscheck: task dump:" in capsys.readouterr().err


def test_dump_includes_the_loop_it_runs_on(capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> None:
        task = asyncio.create_task(waits_for_a_commit_forever(asyncio.Event()),
                                   name="on-the-main-loop")
        await asyncio.sleep(0)
        diagnostics.dump_tasks()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    err = capsys.readouterr().err
    assert "on-the-main-loop" in err and "(running)" in err
