"""`run_agentdojo`: the whole benchmark, from suite names to a `Report`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from ._agent import Order
from ._report import Report
from ._run import MODES, ORDERS, Harness, Mode, Progress, RunResult, run_suite
from ._suites import SUITE_NAMES, load_suite


def run_agentdojo(suites: Sequence[str] = SUITE_NAMES, *, modes: Sequence[Mode] = MODES,
                  orders: Sequence[Order] = ORDERS, limit: int | None = None,
                  policy_dir: Path | None = None, user_tasks: Sequence[str] | None = None,
                  injection_tasks: Sequence[str] | None = None,
                  progress: Progress | None = None, detector: str | None = None) -> Report:
    """Replay AgentDojo as a fully compromised agent, with and without Warrant.

    `limit` caps the pairs per suite (a quick run); `policy_dir` replaces the
    default policy pack; `user_tasks`/`injection_tasks` select task ids.
    Raises `RedteamError` when AgentDojo is missing or a suite or tool is unknown.
    """
    started = time.perf_counter()
    for name in suites:
        load_suite(name)  # fail before any work on an unknown suite or a missing extra
    results: list[RunResult] = []
    with Harness.create(policy_dir, detector) as harness:
        revision = harness.domain.policies.revision
        detector_used = harness.domain.config.flow_injection_detector
        for name in suites:
            results.extend(run_suite(name, harness, modes=modes, orders=orders, limit=limit,
                                     user_tasks=user_tasks, injection_tasks=injection_tasks,
                                     progress=progress))
    return Report(results=tuple(results), suites=tuple(suites), modes=tuple(modes),
                  orders=tuple(orders), seconds=time.perf_counter() - started,
                  policy_revision=revision, detector=detector_used)
