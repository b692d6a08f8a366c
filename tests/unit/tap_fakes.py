"""Fakes of the parts of Faust's app and consumer that the batch tap and the fetch loop use."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakSet

from streams.worker.tap import BatchTap


@dataclass(eq=False)
class Msg:
    topic: str
    partition: int
    offset: int
    generation_id: int = 1
    tracked: bool = False
    acked: bool = False

    @property
    def tp(self) -> tuple[str, int]:
        return (self.topic, self.partition)


@dataclass
class FlowControl:
    active: bool = True

    def is_active(self) -> bool:
        return self.active


@dataclass
class Consumer:
    """The parts of faust-streaming 0.15's Consumer that ``Consumer.ack`` works on."""

    app: Any = None
    _unacked_messages: WeakSet[Any] = field(default_factory=WeakSet)
    _acked: defaultdict[Any, list[int]] = field(default_factory=lambda: defaultdict(list))
    _acked_index: defaultdict[Any, set[int]] = field(default_factory=lambda: defaultdict(set))
    _committed_offset: defaultdict[Any, int | None] = field(
        default_factory=lambda: defaultdict(lambda: None))
    _n_acked: int = 0
    _waiting_for_ack: Any = None

    @property
    def acked(self) -> list[Any]:
        """The messages acked so far, in the order they were offered."""
        return [m for m in self.app.offered if m.acked]


@dataclass
class Topics:
    unacked: frozenset[str] = frozenset()

    def acks_enabled_for(self, topic: str) -> bool:
        return topic not in self.unacked


@dataclass
class Monitor:
    stream_inbound_time: dict[Any, float] = field(default_factory=dict)


@dataclass
class App:
    consumer_generation_id: int = 1
    flow_control: FlowControl = field(default_factory=FlowControl)
    consumer: Consumer = field(default_factory=Consumer)
    monitor: Monitor = field(default_factory=Monitor)
    topics: Topics = field(default_factory=Topics)
    #: every record offered to the tap (``RecordingTap``), in order
    offered: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.consumer.app = self


class RecordingTap(BatchTap):
    """A BatchTap that remembers every record offered to it (in ``app.offered``), and takes
    them one at a time too."""

    def offer(self, message: Any) -> bool:
        """``offer_many`` of one record: whether it was added."""
        return self.offer_many([message]) == 1

    def offer_many(self, messages: list[Any]) -> int:
        self.app.offered.extend(messages)
        return super().offer_many(messages)


def make(batch_max: int = 3, within: float = 0.01) -> tuple[App, BatchTap]:
    app = App()
    return app, RecordingTap(app, ["orders", "payments"], batch_max, within)

