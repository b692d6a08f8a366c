"""Inputs from a shop's own topics: the sources file, the mapping of JSON events and Debezium
change events onto the contract's events, and the ingest that writes them to the Avro topics."""

from streams.sources.parse import SourcesFileError, load_sources, parse_sources
from streams.sources.spec import Format, InputSpec, SourcesFile

__all__ = ["Format", "InputSpec", "SourcesFile", "SourcesFileError", "load_sources",
           "parse_sources"]
