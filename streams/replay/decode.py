"""Input records as the replay sees them: the event, or None where the worker would dead-letter."""

from __future__ import annotations

from schemas.codec import Codec
from schemas.errors import DecodeError, ValidationError
from streams.engine.core import partition_of
from streams.inputs import decode_input
from streams.model import Event
from topology.partitioner import KeyPartitions
from topology.topics import TopicId


class InputDecoder:
    """Decodes and validates input records like the worker's Runtime, without dead letters."""

    def __init__(self, codec: Codec, partitions: int) -> None:
        self.codec = codec
        self.partitions = partitions
        self._homes = KeyPartitions(partitions, partition_of=partition_of)

    def event(self, topic: TopicId, partition: int, value: bytes | None) -> Event | None:
        """The event of a record, or None if it is undecodable, invalid or misrouted."""
        try:
            event = decode_input(self.codec, topic, value)
        except (DecodeError, ValidationError):
            return None
        if self._homes.of(event.order_id) != partition:
            return None
        return event

    def event_time(self, value: bytes | None) -> int | None:
        """The event_time of a record value, or None if it cannot be read."""
        try:
            t = self.codec.decode(value)[1].get("event_time")
        except DecodeError:
            return None
        return t if isinstance(t, int) else None
