"""Exceptions of the topology package."""

from __future__ import annotations

from streams.errors import CrosscheckError


class TopologyError(CrosscheckError):
    """Topics are missing, or input topics are not co-partitioned."""
