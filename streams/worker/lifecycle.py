"""Starting and stopping a worker process: topics, partition counts, state directory, Faust."""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streams.clients import admin
from streams.config import Settings
from streams.errors import CrosscheckError
from streams.gctune import tune_gc
from topology.admin import check_topics, create_new, create_topics, input_partition_count
from topology.changelogs import changelog_config
from topology.topics import TOPICS, TopicId, Topology

log = logging.getLogger("crosscheck.worker")

CLEAN_MARKER = "clean-shutdown"
#: the file naming the layout of the local state (``streams/worker/local_state.py``)
STATE_FORMAT_FILE = "state-format"
STATE_FORMAT = "3"


def check_port_free(port: int, bind: str = "127.0.0.1") -> None:
    """CrosscheckError unless bind:port can be bound (the worker's web server)."""
    import socket

    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind, port))
        except OSError as exc:
            raise CrosscheckError(
                f"cannot listen on {bind} port {port} ({exc.strerror}; another worker?): "
                "give each worker its own --web-port or CROSSCHECK_WORKER_PORT"
            ) from None


def web_host_for(bind: str) -> str:
    """The host other workers reach this one's web server at (Faust's canonical URL, used to
    forward /orders requests): the bind address, or this host's name when it binds every
    interface."""
    import socket

    if bind in ("0.0.0.0", "::"):
        return socket.gethostname()
    return f"[{bind}]" if ":" in bind else bind


def data_dir_for(settings: Settings, web_port: int) -> Path:
    """Where one worker keeps its RocksDB tables: one directory per app id and port."""
    return settings.home / "worker" / f"{settings.app_id}-{web_port}"


def prepare_state_dir(data_dir: Path, exactly_once: bool) -> bool:
    """Keep the local table state, unless it is of the earlier layout and that run did not
    stop cleanly under exactly-once; returns True if it was wiped.

    In the current layout (``streams/worker/local_state.py``) every database holds committed
    state once opened (what an aborted transaction wrote is rolled back), so it is kept
    after a crash and the changelogs are read only after its applied offsets. The earlier
    layout had no undo records: after an unclean stop its RocksDB could hold writes of an
    aborted transaction, so it is rebuilt from the changelogs (read_committed); after a clean
    stop it is upgraded in place as its databases open. The clean-stop marker is removed at
    start and written back only after a clean stop.
    """
    marker = data_dir / CLEAN_MARKER
    layout = data_dir / STATE_FORMAT_FILE
    wiped = False
    if layout.exists():
        found = layout.read_text().strip()
        if found != STATE_FORMAT:
            raise CrosscheckError(
                f"{data_dir} holds state format {found}, this worker reads format "
                f"{STATE_FORMAT}: start a worker of that release, or delete the directory "
                "to rebuild the state from the changelog topics")
    elif data_dir.exists() and not marker.exists() and exactly_once:
        for child in data_dir.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
        wiped = True
    data_dir.mkdir(parents=True, exist_ok=True)
    layout.write_text(STATE_FORMAT + "\n")
    marker.unlink(missing_ok=True)
    return wiped


def mark_clean(data_dir: Path) -> None:
    """Record a clean stop."""
    (data_dir / CLEAN_MARKER).write_text("1\n")


def discover_partitions(settings: Settings) -> tuple[int, dict[TopicId, int]]:
    """Create missing topics, check co-partitioning, and read every topic's partition count."""
    client = admin(settings)
    topology = Topology(settings.partitions, settings.topic_prefix, settings.topic_overrides)
    create_topics(client, topology)
    inputs = input_partition_count(client, topology)
    report = check_topics(client, topology)
    ticks = report.partitions.get(topology.name(TopicId.TICKS))
    if ticks != inputs:
        raise CrosscheckError(
            f"topic {topology.name(TopicId.TICKS)} has {ticks} partitions but the inputs have "
            f"{inputs}: recreate it with {inputs} partitions"
        )
    outputs: dict[TopicId, int] = {}
    for t in TOPICS:
        count = report.partitions.get(topology.name(t.id))
        if count is None:
            raise CrosscheckError(f"topic {topology.name(t.id)} is missing")
        outputs[t.id] = count
    return inputs, outputs


def create_changelogs(settings: Settings, app: Any, timeout: float = 30.0) -> list[str]:
    """Create the app's missing table changelog topics before Faust starts; their names.

    Faust creates them itself as it starts, while its consumer joins the group; a group
    leader whose metadata does not list a new topic yet assigns without it ("Ignoring
    missing topic") until the next rebalance, and the table is then neither recovered from
    its changelog nor routable (a CI run: ``/api/windows`` answered 503 for the whole test).
    Created here first, with what Faust would give them (the table's partitions, else the
    app's; its replication factor; ``CHANGELOG_CONFIG``, compacted to about the live state,
    plus the table's extra configs), they are in every member's metadata when the group
    forms. Faust leaves existing topics as they are, and so does this (docs/operations.md
    says how to give an existing changelog the configs).
    TopologyError names a topic that could not be created.
    """
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

    client = admin(settings)
    existing = set(client.list_topics(timeout=timeout).topics)
    new = []
    for table in app.tables.values():
        topic = table.changelog_topic
        name = topic.get_topic_name()
        if name in existing:
            continue
        new.append(NewTopic(name, num_partitions=topic.partitions or app.conf.topic_partitions,
                            replication_factor=app.conf.topic_replication_factor,
                            config=changelog_config(table.extra_topic_configs)))
    return create_new(client, new, timeout)


#: seconds a stopping worker gets before the process is ended regardless
SHUTDOWN_GRACE = 60.0


def _watchdog(seconds: float) -> None:
    """End the process if a shutdown has not finished in time (Faust can hang when a
    transaction is in a bad state); nothing committed is lost, the rest is redone."""
    import os
    import threading

    def expire() -> None:
        print(f"crosscheck: worker did not stop within {seconds:.0f}s; exiting", file=sys.stderr,
              flush=True)
        os._exit(3)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


def run_faust(worker_app: object, loglevel: str, data_dir: Path,
              unsettled: Callable[[], str | None] = lambda: None) -> int:
    """Run the Faust worker until SIGTERM/SIGINT; returns the exit code. After a clean stop
    the state directory is marked clean unless ``unsettled`` gives a reason not to trust it
    (see clean_stop.py)."""
    import faust
    from mode.utils.loops import get_event_loop

    from streams.worker import clean_stop, diagnostics, tap

    app: faust.App = worker_app  # type: ignore[assignment]
    app.finalize()  # what Faust's own CLI does before starting a Worker
    # The loop must be handed over explicitly, as Faust's CLI does: without it the
    # worker runs on a loop the agent's stream never sees records on.
    class GuardedWorker(faust.Worker):
        def _schedule_shutdown(self, signal: Any) -> None:
            _watchdog(SHUTDOWN_GRACE)
            super()._schedule_shutdown(signal)

        async def on_stop(self) -> None:
            _watchdog(SHUTDOWN_GRACE)  # also after a crash
            # before the app stops: the batch being judged ends and is acked, so Faust's
            # final commit covers it with its outputs (see BatchTap.close)
            await tap.close(app)
            # ... and is committed: Faust's final commit can skip it (clean_stop.py)
            await clean_stop.settle_commits(app)
            await super().on_stop()

    worker = GuardedWorker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False,
                           loop=get_event_loop())
    # No start-up spinner: to spin it, Faust sets the root logger to DEBUG for the whole
    # life of the worker, so every debug call of aiokafka and Faust (one per record sent)
    # built a LogRecord that no handler kept (4 % of the worker's CPU in a profile), and
    # the spinner's terminal escapes went into the log files.
    worker.spinner = None
    tune_gc()
    diagnostics.install()
    code = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    reason = unsettled() if code == 0 else None
    if reason is not None:
        print(f"crosscheck: stopped with judged records not committed: {reason}; the next "
              "start rolls back what they wrote locally and judges them again",
              file=sys.stderr, flush=True)
    elif code == 0:
        mark_clean(data_dir)
    else:
        print(f"crosscheck: worker stopped with exit code {code}", file=sys.stderr)
    return code
