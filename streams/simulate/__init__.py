"""Realistic order traffic with injected faults, and the mismatches it should produce.

Library use::

    from streams.simulate import SimConfig, generate, simulate, expected_outputs
    events = generate(SimConfig(orders=500, seed=7, faults={"double_charge": 0.01}))
    # [(TopicId.ORDERS, {"event_id": ..., "event_time": 1795219200000, ...}), ...]

See ``generator`` for the time model and ``faults.FAULTS`` for the injectable faults.
"""

from streams.simulate.faults import FAULTS, Fault, parse_faults
from streams.simulate.generator import (
    DEFAULT_START,
    DEFAULT_START_TEXT,
    SimConfig,
    Traffic,
    expected_outputs,
    fault_orders,
    generate,
    simulate,
)

__all__ = [
    "DEFAULT_START",
    "DEFAULT_START_TEXT",
    "FAULTS",
    "Fault",
    "SimConfig",
    "Traffic",
    "expected_outputs",
    "fault_orders",
    "generate",
    "parse_faults",
    "simulate",
]
