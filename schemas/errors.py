"""Exceptions of the schemas package: undecodable payloads and invalid events."""

from __future__ import annotations

from streams.errors import CrosscheckError


class SchemaError(CrosscheckError):
    """A schema could not be loaded or registered."""


class DecodeError(CrosscheckError):
    """Bytes that are not a valid Confluent-framed Avro record of a known schema."""


class ValidationError(CrosscheckError):
    """An event that breaks the contract; `field` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")
