"""Stable ids of mismatches and commands (the contract's section 4 hashes)."""

from __future__ import annotations

import hashlib


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def mismatch_id(mismatch_type: str, order_id: str, subject_id: str) -> str:
    """sha256 of ``"{type}|{order_id}|{subject_id}"``, first 32 hex digits."""
    return _digest(f"{mismatch_type}|{order_id}|{subject_id}")


def command_id(command_type: str, target_id: str) -> str:
    """sha256 of ``"{command_type}|{target_id}"``, first 32 hex digits."""
    return _digest(f"{command_type}|{target_id}")
