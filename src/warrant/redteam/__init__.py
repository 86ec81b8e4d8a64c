"""Red-team benchmarks run against Warrant's real pipeline (optional extra `redteam`).

`run_agentdojo` replays AgentDojo's suites offline, with no LLM, as a fully
compromised agent: the user task's ground-truth calls and the attacker's go
through Warrant (and, as a baseline, through nothing) and AgentDojo's own
checks score the result.
"""

from ._agent import Order, PlannedCall, Step, replay
from ._benchmark import run_agentdojo
from ._report import MODE_LABELS, Report, Row, summarise
from ._risk import RISK_TABLE, risk_of
from ._run import MODES, ORDERS, Mode, RunResult
from ._suites import BENCHMARK_VERSION, SUITE_NAMES, RedteamError, agentdojo_available, load_suite

__all__ = [
    "BENCHMARK_VERSION",
    "MODES",
    "MODE_LABELS",
    "ORDERS",
    "RISK_TABLE",
    "SUITE_NAMES",
    "Mode",
    "Order",
    "PlannedCall",
    "RedteamError",
    "Report",
    "Row",
    "RunResult",
    "Step",
    "agentdojo_available",
    "load_suite",
    "replay",
    "risk_of",
    "run_agentdojo",
    "summarise",
]
