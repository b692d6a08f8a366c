"""One partition number of a replay: its input topic-partitions merged by event time.

Each input source of the partition has a buffer of received events. The lane feeds its
PartitionEngine the buffered event with the smallest (event_time, source) as long as every
source that is not finished has one buffered; otherwise it waits for more records. So the
order in which events reach the engine depends only on the records, never on how the
consumer happened to fetch them: a stopped and resumed replay feeds the same sequence.

A source is *finished* when its topic-partition reached the end offset taken at the start,
or at its first event past ``window.stop_after``. A finished source with an empty buffer is
marked idle in the engine (it no longer holds the watermark back). Once every source is
finished and drained, ``finish()`` moves the watermark to ``window.end``.

Positions (for checkpoints) are the offsets of the first record not yet fed: the head of the
buffer, or the offset after the last record received.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import cast

from streams.engine.confirming import Confirming
from streams.engine.core import ReadEvent
from streams.engine.partition import Engine, Output
from streams.model import Event, Source
from streams.replay.window import ReplayWindow


@dataclass
class Feed:
    """One input topic-partition of a lane."""

    source: Source
    position: int  #: offset after the last record received (the start offset at first)
    end: int  #: end offset taken when the replay (re)started
    #: (event_time, offset, event) of the records received and not yet fed
    buffer: deque[tuple[int, int, Event | ReadEvent]] = field(default_factory=deque)
    finished: bool = False
    idle: bool = False  #: marked idle in the engine
    #: largest event time read in this run (None: no decodable record yet)
    last_time: int | None = None

    def __post_init__(self) -> None:
        if self.position >= self.end:
            self.finished = True

    @property
    def next_offset(self) -> int:
        """The first offset not yet fed (where a resumed replay starts reading)."""
        return self.buffer[0][1] if self.buffer else self.position

    def reached(self, offset: int) -> None:
        """The consumer is at ``offset`` (end of partition): finished if past the end."""
        if not self.finished and offset >= self.end:
            self.position = max(self.position, offset)
            self.finished = True


class Lane:
    """The feeds and the engine of one partition number (see the module docstring)."""

    def __init__(self, partition: int, engine: Engine, window: ReplayWindow,
                 feeds: dict[Source, Feed]) -> None:
        self.partition = partition
        self.engine = engine
        self.window = window
        self.feeds = feeds
        self._order = [feeds[s] for s in Source if s in feeds]
        # the window's bounds, read per record
        self._stop_after, self._read_from, self._end = (window.stop_after, window.read_from,
                                                        window.end)
        meta = engine.store.get_meta()
        idle = set(meta.idle) if meta is not None else set()
        for feed in self._order:
            feed.idle = feed.source.value in idle
        self.events_fed = 0
        self.finished_at_end = False

    # -- input --------------------------------------------------------------------------------

    def offer(self, source: Source, offset: int, event: Event | ReadEvent | None) -> bool:
        """Take a record of ``source``'s topic-partition; False if it is not taken.

        ``event`` is None for an undecodable or misrouted record. A record is not taken when
        it is read again, or lies past the end or the stop point.
        """
        feed = self.feeds[source]
        if feed.finished or offset < feed.position or offset >= feed.end:
            return False
        if event is not None:
            t = event.event_time
            if feed.last_time is None or t > feed.last_time:
                feed.last_time = t
            if t > self._stop_after:
                feed.finished = True  # this record is not consumed: a resume reads it again
                return False
            if self._read_from <= t <= self._end:  # window.feeds(t)
                feed.buffer.append((t, offset, event))
        feed.position = offset + 1
        if feed.position >= feed.end:
            feed.finished = True
        return True

    # -- merging ------------------------------------------------------------------------------

    def pump(self) -> list[Output]:
        """Feed every event that can be fed now; return the engine's outputs, in order.

        Events go in (event_time, source) order (the source's place in ``Source``). Once the
        next is chosen, the events after it in the same buffer are fed without looking at
        the other buffers again while they stay ahead of the others' first events."""
        out: list[Output] = []
        on_event = self.engine.on_event
        order = self._order
        fed = 0
        try:
            while True:
                best: deque[tuple[int, int, Event | ReadEvent]] | None = None
                best_time = best_at = 0
                # the first event of the other buffers: (time, place); None: no other
                second: tuple[int, int] | None = None
                for at, feed in enumerate(order):
                    buffer = feed.buffer
                    if buffer:
                        t = buffer[0][0]
                        if best is None or t < best_time:
                            if best is not None:
                                second = (best_time, best_at)
                            best, best_time, best_at = buffer, t, at
                        elif second is None or t < second[0]:
                            second = (t, at)
                    elif not feed.finished:
                        return out  # wait: this source may still have an earlier event
                    elif not feed.idle:
                        feed.idle = True
                        out.extend(self.engine.set_idle(feed.source, True))
                if best is None:
                    return out
                while True:
                    # (a ReadEvent comes only from the native core, whose engine applies it)
                    outputs = on_event(cast(Event, best.popleft()[2]))
                    fed += 1
                    if outputs:
                        out.extend(outputs)
                    if not best:
                        break
                    t = best[0][0]
                    if second is not None and (t > second[0] or (t == second[0]
                                                                 and best_at > second[1])):
                        break
        finally:
            self.events_fed += fed

    @property
    def drained(self) -> bool:
        """Every source finished and fed."""
        return all(f.finished and not f.buffer for f in self._order)

    def finish(self) -> list[Output]:
        """Once drained: mark the sources idle and move the watermark to the window's end."""
        out = self.pump()
        assert self.drained
        if isinstance(self.engine, Confirming):
            # each input's progress is the latest event time read on it, fed or not (the
            # records after the end are read up to the stop point): what a live worker over
            # the same records has read, and confirms commands with
            self.engine.progress_floor = {f.source.value: f.last_time for f in self._order
                                          if f.last_time is not None}
        out.extend(self.engine.advance_to(self.window.end))
        self.finished_at_end = True
        return out

    def short_of_end(self) -> int | None:
        """The largest event time read in this run if the input ended before the stop point.

        Then events of the range may still be to come. None when the input went past
        ``window.stop_after``, or when nothing was read.
        """
        times = [f.last_time for f in self._order if f.last_time is not None]
        if not times or max(times) > self.window.stop_after:
            return None
        return max(times)

    # -- progress -----------------------------------------------------------------------------

    def positions(self) -> dict[Source, int]:
        """Source -> first offset not yet fed."""
        return {f.source: f.next_offset for f in self._order}

    def buffered(self) -> int:
        """Events waiting in the buffers."""
        return sum(len(f.buffer) for f in self._order)
