"""The `narrow` step: a task loses every risk class but read-only, enforced by the pipeline."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.conftest import AgentKit
from warrant.enforce import Pipeline, TrustDomain
from warrant.errors import StoreError
from warrant.response import DetectionConfig, ResponseEngine, parse_playbook
from warrant.types import Effect, RevocationKind, RiskClass, thaw

from .conftest import CANARY, Watch

NARROW_ON_CANARY = """
id: narrow
match: {severities: [critical]}
steps: [{action: narrow}]
"""


def codes(pipeline: Pipeline, agent: AgentKit, tool: str, **arguments: Any) -> list[str]:
    return [r.code for r in pipeline.decide(agent.request(tool, **arguments)).reasons]


def revocations(domain: TrustDomain) -> set[tuple[str, str]]:
    return {(k, v) for k, v, _, _ in domain.store.list_revocations()}


def narrow_engine(domain: TrustDomain, watch: Watch) -> ResponseEngine:
    engine = ResponseEngine(domain, playbooks=[parse_playbook(NARROW_ON_CANARY)],
                            config=DetectionConfig(canaries=(CANARY,)))
    engine.observe(watch)
    return engine


@pytest.mark.claim("response.auto-containment")
def test_a_narrowed_task_keeps_reading_and_loses_everything_else_from_the_next_call(
        domain: TrustDomain, watch: Watch, pipeline: Pipeline, agent: AgentKit) -> None:
    with narrow_engine(domain, watch) as engine:
        pipeline.decide(agent.request("send_email", to="ops@acme.example", body=CANARY))
        # The canary detection runs inline: the narrowing is in force before the
        # offending call's decision is returned, so nothing waits here.
        assert codes(pipeline, agent, "send_email", to="ops@acme.example") == ["narrowed"]
        assert codes(pipeline, agent, "transfer", amount=5) == ["narrowed"]
        assert pipeline.decide(agent.request("read_file", path="report.txt")).allowed
        incident_id, done = watch.wait("contained")
        assert done["action"] == "narrow"
        assert "narrowed to read-only tools (keeps read_file; loses send_email, transfer)" \
            in str(done["outcome"])
        assert engine.drain()
    narrowed = {RevocationKind.parse_narrowing(v) for k, v in revocations(domain)
                if k == RevocationKind.NARROW.value}
    assert narrowed == {("task", agent.task_id, c) for c in RiskClass
                        if c is not RiskClass.READ_ONLY}
    # The task itself is not revoked: the agent can still finish reading and answer.
    assert (RevocationKind.TASK.value, agent.task_id) not in revocations(domain)
    [record] = [thaw(e.record.detail) for e in domain.audit.tail(5_000)
                if e.record.kind == "admin" and e.record.tool == "response.narrow"]
    assert record["incident_id"] == incident_id and record["keep"] == ["read_file"]
    assert sorted(record["drop"]) == ["send_email", "transfer"]


@pytest.mark.claim("response.fail-safe-playbooks")
def test_a_narrowing_that_cannot_be_recorded_revokes_the_task_instead(
        domain: TrustDomain, watch: Watch, pipeline: Pipeline, agent: AgentKit,
        monkeypatch: pytest.MonkeyPatch) -> None:
    real_revoke = domain.revoke

    def revoke(kind: RevocationKind, value: str, reason: str) -> bool:
        if kind is RevocationKind.NARROW and value.endswith("|destructive"):
            raise StoreError("state database write failed: disk full")  # halfway through
        return real_revoke(kind, value, reason)

    monkeypatch.setattr(domain, "revoke", revoke)
    with narrow_engine(domain, watch):
        pipeline.decide(agent.request("send_email", to="ops@acme.example", body=CANARY))
        assert codes(pipeline, agent, "read_file", path="a") == ["revoked"]
        _, done = watch.wait("contained")
    assert "failed" in str(done["outcome"]) and "revoked instead" in str(done["outcome"])
    [(_, _, _, reason)] = [r for r in domain.store.list_revocations()
                           if r[:2] == (RevocationKind.TASK.value, agent.task_id)]
    assert "narrowing failed" in reason and "disk full" in reason


@pytest.mark.claim("response.fail-safe-playbooks")
def test_a_narrow_step_that_can_record_nothing_fails_loudly_and_takes_nothing_away(
        domain: TrustDomain, watch: Watch, pipeline: Pipeline, agent: AgentKit,
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = revocations(domain)

    def revoke(kind: RevocationKind, value: str, reason: str) -> bool:
        raise StoreError("state database write failed: disk full")

    monkeypatch.setattr(domain, "revoke", revoke)
    with narrow_engine(domain, watch) as engine:
        pipeline.decide(agent.request("send_email", to="ops@acme.example", body=CANARY))
        incident_id, failed = watch.wait("step-failed")
        assert failed["action"] == "narrow" and "disk full" in str(failed["error"])
        assert engine.drain()
        assert "response.step-failed" in {a["detection"]
                                          for a in engine.incidents.alerts(incident_id)}
    assert before <= revocations(domain)  # never fewer revocations than before
    email = pipeline.decide(agent.request("send_email", to="ops@acme.example"))
    assert email.effect is Effect.NEEDS_APPROVAL  # no more privileged than before either


def outside_now() -> tuple[int, int]:
    """Declared hours that start two hours from now (an hour boundary mid-test keeps us out)."""
    hour = dt.datetime.now(dt.UTC).hour
    return (hour + 2) % 24, (hour + 3) % 24


@pytest.mark.claim("response.auto-containment")
def test_the_shipped_medium_playbook_narrows_the_task_and_narrowed_retries_do_not_escalate(
        domain: TrustDomain, watch: Watch, pipeline: Pipeline, agent: AgentKit) -> None:
    engine = ResponseEngine(domain, config=DetectionConfig(declared_hours={"*": outside_now()}))
    engine.observe(watch)
    with engine:
        assert pipeline.decide(agent.request("read_file", path="a")).allowed
        incident_id, done = watch.wait("contained")
        assert done["action"] == "narrow"
        for _ in range(6):  # a narrowed agent retrying what it may no longer do
            assert codes(pipeline, agent, "send_email", to="ops@acme.example") == ["narrowed"]
        assert pipeline.decide(agent.request("read_file", path="b")).allowed
        assert engine.drain()
        incidents = engine.incidents.list(status=None, limit=100)
    assert [i.detections for i in incidents] == [["response.outside-hours"]]
    incident = incidents[0]
    assert incident.incident_id == incident_id and incident.severity == "medium"
    assert (RevocationKind.TASK.value, agent.task_id) not in revocations(domain)
