"""`Guard` as a library user writes it: decorate tools, open a session, call them."""

from __future__ import annotations

import pytest

from tests.conftest import AgentKit, make_agent
from warrant import identity
from warrant.enforce import ApprovalRequired, Denied, Guard, TrustDomain
from warrant.errors import InvalidCredential
from warrant.types import Effect


@pytest.fixture
def guard(domain: TrustDomain) -> Guard:
    return Guard(domain)


def test_a_guarded_tool_runs_when_allowed_and_its_outcome_is_audited(
        guard: Guard, agent: AgentKit) -> None:
    ran: list[str] = []

    @guard.tool(risk="read-only")
    def read_file(path: str) -> str:
        ran.append(path)
        return f"contents of {path}"

    with guard.session(credential=agent.credential, warrant=agent.warrant,
                       agent_key=agent.key) as session:
        assert read_file(path="/srv/a.txt") == "contents of /srv/a.txt"
    assert ran == ["/srv/a.txt"]
    decision = session.last_decision
    assert decision is not None and decision.effect is Effect.ALLOW
    records = [e.record for e in guard.domain.audit.tail(2)]
    assert [r.kind for r in records] == ["decision", "outcome"]
    assert records[1].decision_id == decision.decision_id
    assert records[1].outcome is not None and records[1].outcome["status"] == "ok"


@pytest.mark.claim("pipeline.tool-runs-only-when-allowed")
def test_a_denied_tool_never_runs(guard: Guard, agent: AgentKit) -> None:
    ran: list[str] = []

    @guard.tool(risk="destructive")
    def drop_table(table: str) -> None:
        ran.append(table)

    with guard.session(credential=agent.credential, warrant=agent.warrant, agent_key=agent.key):
        with pytest.raises(Denied) as caught:
            drop_table(table="users")
    assert ran == []
    assert caught.value.decision.reasons[0].code == "warrant.tool-not-granted"


@pytest.mark.claim("pipeline.tool-runs-only-when-allowed")
def test_a_guarded_tool_called_outside_any_session_is_denied(guard: Guard) -> None:
    @guard.tool(risk="read-only")
    def read_file(path: str) -> str:
        raise AssertionError("must not run")

    with pytest.raises(Denied, match="no warrant session"):
        read_file(path="a")


def test_a_call_that_needs_approval_does_not_run(guard: Guard, domain: TrustDomain) -> None:
    kit = make_agent(domain, "payer", tools=("transfer:amount=0..5000",))

    @guard.tool(risk="money-movement")
    def transfer(amount: int) -> str:
        raise AssertionError("must not run")

    with guard.session(credential=kit.credential, warrant=kit.warrant, agent_key=kit.key):
        with pytest.raises(ApprovalRequired):
            transfer(amount=2500)


def test_a_tool_error_is_recorded_as_an_error_outcome_and_re_raised(
        guard: Guard, agent: AgentKit) -> None:
    @guard.tool(risk="read-only")
    def read_file(path: str) -> str:
        raise FileNotFoundError(path)

    with guard.session(credential=agent.credential, warrant=agent.warrant, agent_key=agent.key):
        with pytest.raises(FileNotFoundError):
            read_file(path="missing")
    outcome = guard.domain.audit.tail(1)[0].record.outcome
    assert outcome is not None and outcome["status"] == "error"


def test_a_session_cannot_open_with_someone_elses_key(guard: Guard, agent: AgentKit) -> None:
    with pytest.raises(InvalidCredential), guard.session(
            credential=agent.credential, warrant=agent.warrant,
            agent_key=identity.generate_key()):
        pass


def test_positional_arguments_are_refused_so_constraints_see_every_value(
        guard: Guard, agent: AgentKit) -> None:
    @guard.tool(risk="read-only")
    def read_file(path: str) -> str:
        return path

    with guard.session(credential=agent.credential, warrant=agent.warrant, agent_key=agent.key):
        with pytest.raises(TypeError, match="keyword arguments only"):
            read_file("a")


@pytest.mark.claim("identity.short-lived")
def test_a_session_stops_working_when_its_credential_expires(
        guard: Guard, agent: AgentKit, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    @guard.tool(risk="read-only")
    def read_file(path: str) -> str:
        return path

    with guard.session(credential=agent.credential, warrant=agent.warrant, agent_key=agent.key):
        assert read_file(path="a") == "a"
        later = time.time() + 2 * 3600
        monkeypatch.setattr(time, "time", lambda: later)
        with pytest.raises(Denied, match="credential rejected"):
            read_file(path="a")
