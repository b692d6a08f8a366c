"""`crosscheck chaos`: a simulated scenario with known output judged under injected faults.

``run_chaos(settings, ChaosConfig(...), log, broker)`` returns the results as a dict;
``table(results)`` renders them. See ``runner`` for the run, ``plan`` for the schedule.
"""

from streams.chaos.plan import ChaosConfig
from streams.chaos.report import table
from streams.chaos.runner import BrokerControl, run_chaos

__all__ = ["BrokerControl", "ChaosConfig", "run_chaos", "table"]
