"""Input records as the replay sees them: the event, or None where the worker would dead-letter."""

from __future__ import annotations

from schemas.codec import Codec
from schemas.errors import DecodeError, ValidationError
from schemas.validation import validate_event
from streams.model import Event, Source
from streams.records import event_from_record
from topology.partitioner import partition_for
from topology.topics import BY_ID, TopicId


class InputDecoder:
    """Decodes and validates input records like the worker's Runtime, without dead letters."""

    def __init__(self, codec: Codec, partitions: int) -> None:
        self.codec = codec
        self.partitions = partitions

    def event(self, topic: TopicId, partition: int, value: bytes | None) -> Event | None:
        """The event of a record, or None if it is undecodable, invalid or misrouted."""
        try:
            info, raw = self.codec.decode(value)
            if info.name != BY_ID[topic].value_schema:
                return None
            event = event_from_record(Source(topic.value), validate_event(topic, raw))
        except (DecodeError, ValidationError):
            return None
        if partition_for(event.order_id, self.partitions) != partition:
            return None
        return event

    def event_time(self, value: bytes | None) -> int | None:
        """The event_time of a record value, or None if it cannot be read."""
        try:
            t = self.codec.decode(value)[1].get("event_time")
        except DecodeError:
            return None
        return t if isinstance(t, int) else None
