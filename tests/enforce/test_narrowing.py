"""Narrowing through the real pipeline: a task or agent loses risk classes, keeps the rest."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import AgentKit
from warrant.enforce import Denied, Envelope, Guard, Pipeline, TrustDomain
from warrant.errors import StoreError
from warrant.store import StateStore
from warrant.types import Effect, RevocationKind, RiskClass
from warrant.warrants import ToolGrant

#: Every class the response engine's `narrow` step takes away (all but read-only).
SIDE_EFFECTS = tuple(c for c in RiskClass if c is not RiskClass.READ_ONLY)


def narrow(domain: TrustDomain, scope: str, subject: str,
           classes: tuple[RiskClass, ...] = SIDE_EFFECTS) -> None:
    for risk in classes:
        domain.revoke(RevocationKind.NARROW,
                      RevocationKind.narrowing_value(scope, subject, risk), "incident inc-1")


def codes(pipeline: Pipeline, agent: AgentKit, tool: str, **arguments: Any) -> list[str]:
    return [r.code for r in pipeline.decide(agent.request(tool, **arguments)).reasons]


@pytest.mark.claim("revocation.every-decision")
def test_a_narrowed_task_keeps_its_read_only_tools_and_loses_the_others(
        domain: TrustDomain, agent: AgentKit) -> None:
    pipeline = Pipeline(domain)
    before = pipeline.decide(agent.request("send_email", to="ops@acme.example"))
    assert before.effect is Effect.NEEDS_APPROVAL  # the default policy asks a human
    narrow(domain, "task", agent.task_id)

    # In force on the very next decision: no cache sits between the store and the stage.
    email = pipeline.decide(agent.request("send_email", to="ops@acme.example"))
    assert email.effect is Effect.DENY
    [reason] = email.reasons
    assert reason.code == "narrowed" and reason.source == "revocation"
    assert reason.message == (f"narrowed: task `{agent.task_id}` may no longer use "
                              "external-communication tools (incident inc-1)")
    assert "narrowed" in codes(pipeline, agent, "transfer", amount=5)
    assert pipeline.decide(agent.request("read_file", path="report.txt")).allowed


def test_a_narrowing_takes_away_only_the_classes_it_names(
        domain: TrustDomain, agent: AgentKit) -> None:
    pipeline = Pipeline(domain)
    narrow(domain, "task", agent.task_id, (RiskClass.MONEY_MOVEMENT,))
    assert "narrowed" in codes(pipeline, agent, "transfer", amount=5)
    email = pipeline.decide(agent.request("send_email", to="ops@acme.example"))
    assert email.effect is Effect.NEEDS_APPROVAL  # as before the narrowing


def test_narrowing_an_agent_covers_every_task_it_holds(domain: TrustDomain,
                                                       agent: AgentKit) -> None:
    pipeline = Pipeline(domain)
    narrow(domain, "agent", agent.agent_id)
    assert "narrowed" in codes(pipeline, agent, "send_email", to="ops@acme.example")
    assert pipeline.decide(agent.request("read_file", path="a")).allowed


def test_a_narrowing_of_another_task_or_agent_changes_nothing(
        domain: TrustDomain, agent: AgentKit) -> None:
    pipeline = Pipeline(domain)
    narrow(domain, "task", "some-other-task")
    narrow(domain, "agent", "spiffe://acme.example/agent/someone-else")
    email = pipeline.decide(agent.request("send_email", to="ops@acme.example"))
    assert email.effect is Effect.NEEDS_APPROVAL  # as without any narrowing


def test_a_narrowing_is_no_revocation_of_the_whole_task_for_other_checks(
        domain: TrustDomain, agent: AgentKit) -> None:
    narrow(domain, "task", agent.task_id)
    # Callers that ask about the task as a whole (`warrant inspect`, the gateway,
    # messages between agents) do not see one class's narrowing as a revocation ...
    assert domain.store.revoked(task_id=agent.task_id, agent_id=agent.agent_id,
                                credential_id=None) is None
    # ... and callers that name the class see it, while a whole revocation still wins.
    found = domain.store.revoked(task_id=agent.task_id, agent_id=agent.agent_id,
                                 credential_id=None, risk_class=RiskClass.WRITE)
    assert found is not None and found.startswith("narrowed: task")
    assert domain.store.revoked(task_id=agent.task_id, agent_id=agent.agent_id,
                                credential_id=None, risk_class=RiskClass.READ_ONLY) is None


def test_a_revoked_task_is_still_denied_revoked_after_a_narrowing(
        domain: TrustDomain, agent: AgentKit) -> None:
    pipeline = Pipeline(domain)
    narrow(domain, "task", agent.task_id)
    domain.revoke(RevocationKind.TASK, agent.task_id, "incident inc-2")
    assert codes(pipeline, agent, "read_file", path="a") == ["revoked"]
    assert codes(pipeline, agent, "send_email", to="ops@acme.example") == ["revoked"]


def test_narrowing_an_orchestrator_narrows_the_sub_agents_it_delegated_to(
        domain: TrustDomain) -> None:
    guard = Guard(domain)

    @guard.tool(risk=RiskClass.READ_ONLY)
    def search(query: str) -> str:
        return f"results for {query}"

    @guard.tool(risk=RiskClass.MONEY_MOVEMENT)
    def pay(amount: int) -> str:
        return f"paid {amount}"

    for name in ("orchestrator", "researcher"):
        domain.register_agent(name, owner="research", purpose="narrowing tests")
    orchestrator = domain.agent("orchestrator").agent_id
    _, token = domain.mint(agent="orchestrator", task="answer", on_behalf_of="user:alice",
                           tools=[ToolGrant("search"), ToolGrant("pay")], max_depth=2)
    with guard.session(credential=domain.issue_credential("orchestrator").token,
                       warrant=token, agent_key=domain.agent_key("orchestrator")) as sender:
        envelope = sender.seal("researcher", {"ask": "pay it"},
                               delegate=[ToolGrant("search"), ToolGrant("pay")])
    message = guard.receive(Envelope.from_json(envelope.to_json()), {"ask": "pay it"},
                            recipient="researcher")
    assert message.delegated is not None
    with guard.session(credential=domain.issue_credential("researcher").token,
                       warrant=message.delegated, agent_key=domain.agent_key("researcher")):
        assert pay(amount=5) == "paid 5"
        narrow(domain, "agent", orchestrator)
        assert search(query="q") == "results for q"
        with pytest.raises(Denied) as denied:
            pay(amount=5)
    assert [r.code for r in denied.value.decision.reasons] == ["narrowed"]
    assert orchestrator in denied.value.decision.reasons[0].message


class _BrokenNarrowings:
    """The real store, except that every narrowing lookup fails (a lost database)."""

    def __init__(self, store: StateStore):
        self._store = store

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def revoked(self, **query: object) -> str | None:
        if query.get("risk_class") is not None:
            raise StoreError("state database read failed: disk I/O error")
        return self._store.revoked(**query)  # type: ignore[arg-type]


@pytest.mark.claim("pipeline.errors-deny")
def test_a_narrowing_lookup_that_fails_denies_the_call(domain: TrustDomain,
                                                       agent: AgentKit,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(domain, "store", _BrokenNarrowings(domain.store))
    decision = Pipeline(domain).decide(agent.request("read_file", path="a"))
    assert decision.effect is Effect.DENY
    assert decision.reasons[-1].code == "pipeline.error"
    assert "disk I/O error" in decision.reasons[-1].message


@pytest.mark.parametrize(("scope", "subject"), [
    ("credential", "c1"), ("task", ""), ("task", "a|b"),
])
def test_a_narrowing_names_a_task_or_an_agent(scope: str, subject: str) -> None:
    with pytest.raises(ValueError, match="narrow"):
        RevocationKind.narrowing_value(scope, subject, RiskClass.WRITE)


@pytest.mark.parametrize("value", ["t1|write", "task:|write", "task:t1|teleport", "all:*|write"])
def test_a_malformed_narrowing_value_is_refused(value: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - message varies (enum or ours)
        RevocationKind.parse_narrowing(value)


def test_a_narrowing_value_parses_back() -> None:
    value = RevocationKind.narrowing_value("agent", "spiffe://acme.example/agent/x",
                                           RiskClass.CODE_EXECUTION)
    assert RevocationKind.parse_narrowing(value) == (
        "agent", "spiffe://acme.example/agent/x", RiskClass.CODE_EXECUTION)
