"""Input records decoded into Events: the fast path first, then the checked path.

Used by the worker (``streams.worker.runtime``) and the replay (``streams.replay.decode``), so
both read exactly the same events from the same bytes.
"""

from __future__ import annotations

from schemas.codec import Codec
from schemas.errors import DecodeError
from schemas.validation import validate_event
from streams.fastdecode import read_event
from streams.model import Event, Source
from streams.records import event_from_record
from topology.topics import BY_ID, INPUTS, TopicId

#: input topic -> the source of its events
_SOURCES: dict[TopicId, Source] = {t: Source(t.value) for t in INPUTS}


def decode_input(codec: Codec, topic: TopicId, value: bytes | None) -> Event:
    """The Event of an input record's value; DecodeError or ValidationError (with a reason
    naming the field) for anything else: the whole input path before the engine.

    A record of a schema id already seen is read by ``streams.fastdecode`` first; what that
    does not read with certainty (a bad record, or only an unusual one) goes through the
    checked path, which gives the same Event for a valid record, else the reason."""
    if value is not None and codec.known_name(value) == BY_ID[topic].value_schema:
        event = read_event(_SOURCES[topic], value)
        if event is not None:
            return event
    return decode_checked(codec, topic, value)


def framed_id(codec: Codec, topic: TopicId, value: bytes | None) -> int | None:
    """The schema id ``value`` is framed with if ``decode`` has seen it as the id of the
    topic's schema, else None: what the native reading of a topic's records is given (the
    worker's ``on_record``, the replay's ``read_record``)."""
    if value is None or codec.known_name(value) != BY_ID[topic].value_schema:
        return None
    return int.from_bytes(value[1:5], "big")


def decode_checked(codec: Codec, topic: TopicId, value: bytes | None) -> Event:
    """``decode_input`` without the fast path: fastavro (or the strict reader), msgspec's
    validation and the conversion to an Event."""
    info, raw = codec.decode(value)
    expected = BY_ID[topic].value_schema
    if info.name != expected:
        raise DecodeError(f"expected a {expected} record, got {info.name}")
    return event_from_record(_SOURCES[topic], validate_event(topic, raw))
