"""Inputs from a shop's own topics: the sources file, the mapping of JSON events and Debezium
change events onto the contract's events, and the ingest that writes them to the Avro topics."""

from streams.sources.mapping import MapError, Mapped, RawRecord, Skip, map_event, map_record
from streams.sources.parse import SourcesFileError, load_sources, parse_sources
from streams.sources.spec import Format, InputSpec, SourcesFile

__all__ = ["Format", "InputSpec", "MapError", "Mapped", "RawRecord", "Skip", "SourcesFile",
           "SourcesFileError", "load_sources", "map_event", "map_record", "parse_sources"]
