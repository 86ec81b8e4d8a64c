"""A restarted engine learns the per-agent rate baseline from the log's history."""

from __future__ import annotations

import datetime as dt
import time

from warrant.audit import AuditRecord
from warrant.enforce import TrustDomain
from warrant.response import DetectionConfig, ResponseEngine

from .conftest import Watch

AGENT = "spiffe://acme.example/agent/steady"


def _decision(at: float) -> AuditRecord:
    when = dt.datetime.fromtimestamp(at, dt.UTC)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    return AuditRecord(kind="decision", time=stamp, effect="allow", agent=AGENT,
                       task_id="task-steady", tool="read_file", arguments_redacted={},
                       reasons=({"code": "policy.permit", "message": "m", "source": "s"},))


def _burst(domain: TrustDomain, calls: int) -> None:
    for _ in range(calls):
        domain.append(_decision(time.time()))


def test_a_burst_right_after_a_restart_is_measured_against_the_learned_baseline(
        domain: TrustDomain) -> None:
    # Ten minutes of history: two calls a minute, every minute.
    start = (time.time() // 60 - 11) * 60
    for minute in range(10):
        for second in (5, 35):
            domain.append(_decision(start + minute * 60 + second))
    config = DetectionConfig(rate_min_calls=20)
    primed, watch = ResponseEngine(domain, config=config), Watch()
    primed.observe(watch)
    with primed:
        _burst(domain, 40)
        _, alert = watch.wait("alert", lambda i, d: d["detection"] == "response.rate-anomaly")
    assert "baseline" in str(alert["summary"])


def test_without_history_the_same_burst_is_still_warming_up(domain: TrustDomain) -> None:
    config = DetectionConfig(rate_min_calls=20)
    engine, watch = ResponseEngine(domain, config=config), Watch()
    engine.observe(watch)
    with engine:
        _burst(domain, 40)
        assert engine.drain()
    assert "response.rate-anomaly" not in {d.get("detection") for _, _, d in watch.seen}
