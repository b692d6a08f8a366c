"""Shared pytest configuration: integration tests are marked by their folder; under
pytest-xdist the slowest modules are collected first."""

from __future__ import annotations

import pytest

#: About how many seconds the slowest test modules take (tests/integration, on the 2-core CI
#: machine). Under pytest-xdist (`make test`: whole modules per process, handed out in
#: collection order with --no-loadscope-reorder) they come first, longest first, and the
#: short modules fill in at the end, so that the processes finish together. A module not
#: listed counts as 10 s under tests/integration and 0 s elsewhere; ties keep their order.
MODULE_SECONDS = {
    "test_chaos_run.py": 115,
    "test_worker_arrival.py": 105,
    "test_refused_output.py": 100,
    "test_worker_abort.py": 95,
    "test_worker_recovery.py": 75,
    "test_metrics_alerts.py": 75,
    "test_bench_smoke.py": 65,
    "test_cdc_end_to_end.py": 55,
    "test_worker_rules.py": 50,
    "test_worker_scale.py": 50,
    "test_worker_standby.py": 55,
    "test_worker_shadow.py": 45,
    "test_sources_ingest.py": 45,
    "test_replay.py": 45,
    "test_produce_export.py": 45,
    "test_web.py": 40,
    "test_broker_lifecycle.py": 35,
    "test_cdc_stack.py": 30,
    "test_wheel.py": 22,
    "test_worker_stream_path.py": 20,
    "test_dashboard.py": 20,
    "test_security.py": 18,
}


def module_seconds(item: pytest.Item) -> int:
    """The time the item's module takes, about (see MODULE_SECONDS)."""
    integration = "integration" in item.path.parts
    return MODULE_SECONDS.get(item.path.name, 10 if integration else 0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/integration as `integration`; in a pytest-xdist process,
    order the modules longest first."""
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: -module_seconds(item))
