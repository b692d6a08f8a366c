"""Quiet and stalled inputs: caught up, no record for idle_timeout; quiet while others advance."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class IdleTracker:
    """Tracks processed offsets and the wall time of the last record of each topic-partition.

    ``candidates`` returns the topic-partitions that have had no record for the idle timeout
    while their processed position is at the end of the log (they are *quiet*); each is
    reported once until a new record arrives on it. A quiet input topic-partition is
    *stalled* from the moment a record of another input of its partition number is
    processed; ``releases`` returns those stalled for ``source_hold``, once each.
    """

    idle_timeout_ms: int
    started_at: int
    next_offset: dict[tuple[str, int], int] = field(default_factory=dict)
    last_record_at: dict[tuple[str, int], int] = field(default_factory=dict)
    reported: set[tuple[str, int]] = field(default_factory=set)
    #: tp -> (position, end, when) of the last quiet_behind answer, so each is probed once
    probed: dict[tuple[str, int], tuple[int, int, int]] = field(default_factory=dict)
    #: the input topics (a record of one of them advances its partition number)
    inputs: frozenset[str] = frozenset()
    #: quiet input tp -> wall time it was reported quiet
    quiet_since: dict[tuple[str, int], int] = field(default_factory=dict)
    #: quiet input tp -> wall time another input of its partition number first advanced
    stalled_since: dict[tuple[str, int], int] = field(default_factory=dict)
    #: stalled input tps reported released (past source_hold)
    released: set[tuple[str, int]] = field(default_factory=set)

    last_progress: int = 0

    def saw(self, tp: tuple[str, int], offset: int, now: int) -> None:
        """A record of tp at offset was processed."""
        self.next_offset[tp] = offset + 1
        self.last_record_at[tp] = now
        self.last_progress = now
        if not self.quiet_since:
            self.reported.discard(tp)
        else:
            self.unreport(tp)
            if tp[0] in self.inputs:
                for other in self.quiet_since:
                    if other[1] == tp[1] and other not in self.stalled_since:
                        self.stalled_since[other] = now

    def releases(self, now: int, source_hold_ms: int) -> list[tuple[tuple[str, int], int]]:
        """(tp, position) of the quiet input topic-partitions stalled for source_hold and
        not released yet (each once until it has a record again)."""
        result: list[tuple[tuple[str, int], int]] = []
        for tp, since in sorted(self.stalled_since.items()):
            if tp in self.released or now - since < source_hold_ms or tp not in self.reported:
                continue
            position = self.next_offset.get(tp)
            if position is None:
                continue
            self.released.add(tp)
            result.append((tp, position))
        return result

    def unreport(self, tp: tuple[str, int]) -> None:
        """tp is not quiet (a record came, or records turned out to wait for it)."""
        self.reported.discard(tp)
        self.quiet_since.pop(tp, None)
        self.stalled_since.pop(tp, None)
        self.released.discard(tp)

    def stall_states(self, now: int) -> dict[tuple[str, int], tuple[str, int]]:
        """tp -> (quiet | stalled | released, since when) of the input tps not active."""
        states: dict[tuple[str, int], tuple[str, int]] = {}
        for tp, since in self.quiet_since.items():
            stalled = self.stalled_since.get(tp)
            state = ("released" if tp in self.released else
                     "stalled" if stalled is not None else "quiet")
            states[tp] = (state, since if stalled is None else stalled)
        return states

    def stalled(self, assigned: list[tuple[str, int]], end_offsets: dict[tuple[str, int], int],
                committed: dict[tuple[str, int], int], now: int, limit_ms: int
                ) -> list[tuple[str, int]]:
        """Topic-partitions with records waiting while nothing at all was processed for
        limit_ms: the worker is stuck (a liveness failure to escalate, not to wait out)."""
        if now - max(self.last_progress, self.started_at) < limit_ms:
            return []
        return [tp for tp in assigned
                if (end := end_offsets.get(tp)) is not None
                and (pos := self._position(tp, committed)) is not None
                and pos < end]

    def candidates(self, assigned: list[tuple[str, int]], end_offsets: dict[tuple[str, int], int],
                   committed: dict[tuple[str, int], int], now: int
                   ) -> list[tuple[tuple[str, int], int]]:
        """(topic-partition, caught-up offset) of those that just became idle (once each)."""
        result: list[tuple[tuple[str, int], int]] = []
        for tp in assigned:
            quiet = self._quiet(tp, end_offsets, committed, now)
            if quiet is None or quiet[0] < quiet[1]:
                continue
            position = quiet[0]
            self.next_offset[tp] = position  # known now, even with no record processed
            result.append((tp, position))
            self.reported.add(tp)
            if tp[0] in self.inputs:
                self.quiet_since[tp] = now
        return result

    def quiet_behind(self, assigned: list[tuple[str, int]],
                     end_offsets: dict[tuple[str, int], int],
                     committed: dict[tuple[str, int], int], now: int
                     ) -> list[tuple[tuple[str, int], int, int]]:
        """(tp, position, end) of partitions quiet for the idle timeout yet below their end
        offset: records are waiting, or only offsets no read_committed consumer sees (see
        streams.worker.offsets.TailProbe). Each (position, end) is returned once per idle
        timeout."""
        result: list[tuple[tuple[str, int], int, int]] = []
        for tp in assigned:
            quiet = self._quiet(tp, end_offsets, committed, now)
            if quiet is None or quiet[0] >= quiet[1]:
                continue
            position, end = quiet
            last = self.probed.get(tp)
            if last is not None and last[:2] == (position, end) and \
                    now - last[2] < self.idle_timeout_ms:
                continue
            self.probed[tp] = (position, end, now)
            result.append((tp, position, end))
        return result

    def _quiet(self, tp: tuple[str, int], end_offsets: dict[tuple[str, int], int],
               committed: dict[tuple[str, int], int], now: int) -> tuple[int, int] | None:
        """(position, end) of tp if it is not reported idle yet, has had no record for the
        idle timeout, and both offsets are known; else None."""
        if tp in self.reported:
            return None
        if now - self.last_record_at.get(tp, self.started_at) < self.idle_timeout_ms:
            return None
        end = end_offsets.get(tp)
        position = self._position(tp, committed)
        if end is None or position is None:
            return None
        return position, end

    def _position(self, tp: tuple[str, int], committed: dict[tuple[str, int], int]
                  ) -> int | None:
        """Next offset to process: after the last record seen, else where the group resumes."""
        return self.next_offset.get(tp, committed.get(tp))

    def caught_up_at(self, tp: tuple[str, int], end: int) -> None:
        """Nothing a consumer can read lies below `end`: tp's position is `end` now."""
        if self.next_offset.get(tp, -1) < end:
            self.next_offset[tp] = end

    def position(self, tp: tuple[str, int]) -> int | None:
        """Next offset to process of tp, if this worker knows it (None after a revoke)."""
        return self.next_offset.get(tp)

    def forget(self, tps: list[tuple[str, int]]) -> None:
        """Partitions were revoked: start over for them if they come back."""
        for tp in tps:
            self.next_offset.pop(tp, None)
            self.last_record_at.pop(tp, None)
            self.probed.pop(tp, None)
            self.unreport(tp)
