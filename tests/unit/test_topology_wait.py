"""wait_visible: created topics are waited for until the broker's metadata lists them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from topology.admin import wait_visible
from topology.errors import TopologyError


@dataclass
class Topic:
    partitions: dict[int, Any]
    error: Any = None


@dataclass
class Metadata:
    topics: dict[str, Topic]


@dataclass
class Client:
    """Metadata that lists a topic only from the n-th look on (first without a leader)."""

    appears_at: dict[str, int]
    looks: int = 0
    seen: list[int] = field(default_factory=list)

    def list_topics(self, timeout: float) -> Metadata:
        self.looks += 1
        topics = {}
        for name, at in self.appears_at.items():
            if self.looks == at - 1:
                topics[name] = Topic({0: None}, error="LEADER_NOT_AVAILABLE")
            elif self.looks >= at:
                topics[name] = Topic({0: None, 1: None})
        return Metadata(topics)


def test_returns_once_every_topic_is_listed_with_a_leader() -> None:
    client = Client({"a": 1, "b": 4})
    wait_visible(client, ["a", "b"])  # type: ignore[arg-type]
    assert client.looks == 4


def test_nothing_to_wait_for_asks_nothing() -> None:
    client = Client({})
    wait_visible(client, [])  # type: ignore[arg-type]
    assert client.looks == 0


def test_a_topic_that_never_shows_up_is_named() -> None:
    client = Client({"a": 1, "late": 10**9})
    with pytest.raises(TopologyError, match=r"after 0\.3s: late"):
        wait_visible(client, ["a", "late"], timeout=0.3)  # type: ignore[arg-type]
