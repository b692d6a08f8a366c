"""Input records as the replay sees them: the event, or None where the worker would dead-letter."""

from __future__ import annotations

from schemas.codec import Codec
from schemas.errors import DecodeError, ValidationError
from streams.engine.core import ReadEvent, partition_of, read_record
from streams.inputs import decode_input, framed_id
from streams.model import Event
from topology.partitioner import KeyPartitions
from topology.topics import TopicId


class InputDecoder:
    """Decodes and validates input records like the worker's Runtime, without dead letters.

    When the native core runs, a record of a topic whose schema id is known is read by it
    (``core.read_record``, the worker's one-call reading): a ReadEvent the native engine
    applies like the Event; what it declines goes through the checked path."""

    def __init__(self, codec: Codec, partitions: int) -> None:
        self.codec = codec
        self.partitions = partitions
        self._homes = KeyPartitions(partitions, partition_of=partition_of)
        #: input topic -> (its source's name, the schema id of the last record of it read by
        #: the checked path with an id of its schema)
        self._known: dict[TopicId, tuple[str, int]] = {}

    def event(self, topic: TopicId, partition: int,
              value: bytes | None) -> Event | ReadEvent | None:
        """The event of a record, or None if it is undecodable, invalid or misrouted."""
        known = self._known.get(topic)
        if known is not None and value is not None and read_record is not None:
            read = read_record(known[0], value, known[1], partition, self.partitions)
            if read is not None:
                return read
        try:
            event = decode_input(self.codec, topic, value)
        except (DecodeError, ValidationError):
            return None
        if self._homes.of(event.order_id) != partition:
            return None
        schema_id = framed_id(self.codec, topic, value) if read_record is not None else None
        if schema_id is not None:
            self._known[topic] = (topic.value, schema_id)
        return event

    def event_time(self, value: bytes | None) -> int | None:
        """The event_time of a record value, or None if it cannot be read."""
        try:
            t = self.codec.decode(value)[1].get("event_time")
        except DecodeError:
            return None
        return t if isinstance(t, int) else None
