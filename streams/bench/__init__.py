"""`crosscheck bench`: throughput, decision latency and memory against the raw-consumer ceiling.

``run_bench(settings, BenchConfig(events=...))`` returns the results as a dict;
``report.table(results)`` renders them. See ``runner`` for the phases.
"""

from streams.bench.report import table
from streams.bench.runner import BenchConfig, run_bench

__all__ = ["BenchConfig", "run_bench", "table"]
