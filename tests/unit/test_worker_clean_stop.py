"""The clean-stop check: which judged topic-partitions the group's commits do not cover, and
that a broker which cannot answer means the local state is not trusted."""

from __future__ import annotations

import socket
from dataclasses import replace

from streams.config import load_settings
from streams.worker.clean_stop import uncommitted, unsettled


def test_a_partition_is_behind_unless_committed_past_its_last_judged_record() -> None:
    judged = {("a", 0): 10, ("a", 1): 5, ("b", 0): 7, ("b", 1): 1}
    committed: dict[tuple[str, int], int | None] = {
        ("a", 0): 10,   # committed up to the offset after the last judged record: covered
        ("a", 1): 4,    # one judged record not committed
        ("b", 0): None,  # nothing committed
        # ("b", 1) missing from the answer: not covered either
    }
    assert uncommitted(judged, committed) == [("a", 1), ("b", 0), ("b", 1)]
    assert uncommitted(judged, {tp: 99 for tp in judged}) == []


def test_nothing_judged_needs_no_broker() -> None:
    settings = replace(load_settings({}), bootstrap_servers="127.0.0.1:1")
    assert unsettled(settings, "g", {}) is None


def test_a_broker_that_does_not_answer_means_the_state_is_not_trusted() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    settings = replace(load_settings({}), bootstrap_servers=f"127.0.0.1:{port}")
    reason = unsettled(settings, "g", {("a", 0): 1}, timeout=1.0)
    assert reason is not None and "could not be read" in reason
