"""The one enforcement pipeline, driven as a PEP drives it: tokens, proofs, decisions."""

from __future__ import annotations

import sqlite3
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import AgentKit, make_agent
from warrant import identity, warrants
from warrant.audit import AuditRecord
from warrant.enforce import CallContext, Pipeline, TrustDomain
from warrant.errors import AuditWriteError
from warrant.types import Decision, Effect, RevocationKind, ToolCall


def codes(decision: Decision) -> list[str]:
    return [r.code for r in decision.reasons]


@pytest.mark.claim("pipeline.decision-is-value")
def test_an_allowed_call_says_which_policy_permitted_it(domain: TrustDomain,
                                                         agent: AgentKit) -> None:
    decision = Pipeline(domain).decide(agent.request("read_file", path="/srv/report.csv"))
    assert decision.effect is Effect.ALLOW
    assert codes(decision) == ["policy.permit"]
    assert decision.policy_revision == domain.policies.revision
    assert decision.agent == agent.agent_id
    assert decision.principal_chain == ("user:alice", agent.agent_id)
    assert decision.audit_seq is not None and decision.latency_us > 0


@pytest.mark.claim("warrant.scope")
def test_a_tool_outside_the_warrant_is_denied(domain: TrustDomain, agent: AgentKit) -> None:
    decision = Pipeline(domain).decide(agent.request("drop_table", table="users"))
    assert decision.effect is Effect.DENY
    assert codes(decision) == ["warrant.tool-not-granted"]


@pytest.mark.claim("warrant.argument-constraints")
def test_an_argument_outside_its_constraint_is_denied(domain: TrustDomain, agent: AgentKit) -> None:
    pipeline = Pipeline(domain)
    assert pipeline.decide(agent.request("transfer", amount=100)).effect is Effect.ALLOW
    denied = pipeline.decide(agent.request("transfer", amount=101))
    assert denied.effect is Effect.DENY
    assert codes(denied) == ["warrant.argument-constraint"]
    assert "amount" in denied.reasons[0].message


@pytest.mark.claim("revocation.every-decision")
@pytest.mark.parametrize("kind", ["task", "agent", "credential", "all"])
def test_revocation_denies_the_very_next_call(domain: TrustDomain, agent: AgentKit,
                                               kind: str) -> None:
    pipeline = Pipeline(domain)
    assert pipeline.decide(agent.request("read_file", path="a")).effect is Effect.ALLOW
    credential = identity.verify_credential(agent.credential, domain.public_key,
                                            domain=domain.domain, now=time.time())
    value = {"task": agent.task_id, "agent": agent.agent_id,
             "credential": credential.credential_id, "all": "*"}[kind]
    domain.revoke(RevocationKind(kind), value, "test")
    decision = pipeline.decide(agent.request("read_file", path="a"))
    assert decision.effect is Effect.DENY
    assert codes(decision) == ["revoked"]


@pytest.mark.claim("budget.enforced")
def test_a_tool_budget_runs_out_and_the_next_call_is_denied(domain: TrustDomain,
                                                            agent: AgentKit) -> None:
    pipeline = Pipeline(domain)
    for _ in range(2):
        assert pipeline.decide(agent.request("transfer", amount=5)).effect is Effect.ALLOW
    decision = pipeline.decide(agent.request("transfer", amount=5))
    assert decision.effect is Effect.DENY
    assert codes(decision) == ["policy.permit", "budget.exhausted"]


def test_the_total_budget_counts_every_tool(domain: TrustDomain) -> None:
    kit = make_agent(domain, "reader", tools=("read_file",), total_budget=3)
    pipeline = Pipeline(domain)
    effects = [pipeline.decide(kit.request("read_file", path="x")).effect for _ in range(4)]
    assert effects == [Effect.ALLOW, Effect.ALLOW, Effect.ALLOW, Effect.DENY]


def test_a_tool_missing_from_the_catalogue_is_denied(domain: TrustDomain) -> None:
    kit = make_agent(domain, "shell", tools=("run_shell",))
    decision = Pipeline(domain).decide(kit.request("run_shell", cmd="id"))
    assert decision.effect is Effect.DENY
    assert codes(decision) == ["tool.unknown"]


def test_policy_can_hold_a_call_for_approval_and_it_spends_no_budget(domain: TrustDomain) -> None:
    kit = make_agent(domain, "payer", tools=("transfer:amount=0..5000@1",))
    pipeline = Pipeline(domain)
    held = pipeline.decide(kit.request("transfer", amount=2500))
    assert held.effect is Effect.NEEDS_APPROVAL
    assert codes(held) == ["policy.needs-approval", "approval.pending"]
    assert pipeline.decide(kit.request("transfer", amount=10)).effect is Effect.ALLOW


@pytest.mark.claim("authn.proof-of-possession")
def test_a_call_without_proof_of_possession_is_denied(domain: TrustDomain, agent: AgentKit) -> None:
    decision = Pipeline(domain).decide(agent.request("read_file", proof=False, path="a"))
    assert decision.effect is Effect.DENY
    assert codes(decision) == ["authn.credential"]


@pytest.mark.claim("authn.proof-of-possession")
def test_a_replayed_request_is_denied(domain: TrustDomain, agent: AgentKit) -> None:
    pipeline = Pipeline(domain)
    request = agent.request("read_file", path="a")
    assert pipeline.decide(request).effect is Effect.ALLOW
    assert pipeline.decide(request).effect is Effect.DENY


@pytest.mark.claim("authn.proof-of-possession")
def test_a_proof_for_one_call_does_not_authorise_another(domain: TrustDomain,
                                                          agent: AgentKit) -> None:
    signed = agent.request("transfer", amount=1)
    swapped = agent.request("transfer", proof=False, amount=100)
    forged = type(signed)(call=swapped.call, credential=signed.credential,
                          warrant=signed.warrant, proof=signed.proof)
    assert Pipeline(domain).decide(forged).effect is Effect.DENY


@pytest.mark.claim("authn.proof-of-possession")
def test_a_stolen_credential_is_useless_without_the_agent_key(domain: TrustDomain,
                                                               agent: AgentKit) -> None:
    thief_key = identity.generate_key()
    call_request = agent.request("read_file", proof=False, path="a")
    proof = identity.make_proof(thief_key, credential_token=agent.credential, tool="read_file",
                                argument_digest=call_request.call.argument_digest(),
                                warrant_token=agent.warrant, now=time.time())
    stolen = type(call_request)(call=call_request.call, credential=agent.credential,
                                warrant=agent.warrant, proof=proof)
    assert Pipeline(domain).decide(stolen).effect is Effect.DENY


@pytest.mark.claim("authn.no-oracle")
def test_every_credential_failure_looks_the_same_and_the_cause_is_audited(
        domain: TrustDomain, agent: AgentKit) -> None:
    pipeline = Pipeline(domain)
    good = agent.request("read_file", path="a")
    bad_requests = [
        type(good)(call=good.call, credential="not-a-token", warrant=good.warrant,
                   proof=good.proof),
        type(good)(call=good.call, credential=good.credential[:-4] + "AAAA",
                   warrant=good.warrant, proof=good.proof),
        agent.request("read_file", proof=False, path="a"),
    ]
    decisions = [pipeline.decide(r) for r in bad_requests]
    assert {tuple((r.code, r.message) for r in d.reasons) for d in decisions} == {
        (("authn.credential", "credential rejected"),)}
    details = [domain.audit.get(d.audit_seq).record.detail for d in decisions
               if d.audit_seq is not None]
    assert len(details) == 3 and len({str(d) for d in details}) == 3


def test_a_warrant_held_by_another_agent_is_denied(domain: TrustDomain, agent: AgentKit) -> None:
    other = make_agent(domain, "intruder", tools=("read_file",))
    request = other.request("read_file", warrant=agent.warrant, path="a")
    decision = Pipeline(domain).decide(request)
    assert decision.effect is Effect.DENY
    assert codes(decision) == ["warrant.holder"]


def test_a_tampered_warrant_is_rejected_with_one_public_message(domain: TrustDomain,
                                                               agent: AgentKit) -> None:
    token = agent.warrant
    tampered = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    decision = Pipeline(domain).decide(agent.request("read_file", warrant=tampered, path="a"))
    assert decision.effect is Effect.DENY
    assert [(r.code, r.message) for r in decision.reasons] == [
        ("warrant.invalid", "warrant rejected")]


def test_a_retired_agent_is_denied_with_its_still_unexpired_credential(
        domain: TrustDomain, agent: AgentKit) -> None:
    domain.retire_agent(agent.name)
    decision = Pipeline(domain).decide(agent.request("read_file", path="a"))
    assert decision.effect is Effect.DENY


@pytest.mark.claim("pipeline.errors-deny")
def test_a_stage_that_crashes_denies_and_says_so(domain: TrustDomain, agent: AgentKit) -> None:
    def broken(ctx: CallContext) -> Effect | None:
        raise RuntimeError("scanner crashed")

    from warrant.enforce import default_stages

    stages = [*default_stages(domain, domain.store)[:-1], broken]
    decision = Pipeline(domain, stages=stages).decide(agent.request("read_file", path="a"))
    assert decision.effect is Effect.DENY
    assert codes(decision)[-1] == "pipeline.error"


@pytest.mark.claim("pipeline.errors-deny")
def test_a_pipeline_with_no_stages_never_allows(domain: TrustDomain, agent: AgentKit) -> None:
    decision = Pipeline(domain, stages=[]).decide(agent.request("read_file", path="a"))
    assert decision.effect is Effect.DENY
    assert codes(decision) == ["pipeline.no-reason"]


@pytest.mark.claim("audit.fail-closed")
def test_when_the_audit_record_cannot_be_written_the_call_is_denied(
        domain: TrustDomain, agent: AgentKit, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_record: AuditRecord) -> int:
        raise AuditWriteError("disk full")

    monkeypatch.setattr(domain.audit, "append", refuse)
    decision = Pipeline(domain).decide(agent.request("read_file", path="a"))
    assert decision.effect is Effect.DENY
    assert codes(decision)[-1] == "audit.write-failed"
    assert decision.audit_seq is None


@pytest.mark.claim("audit.fail-closed")
def test_a_full_disk_under_the_audit_log_denies_the_call(domain: TrustDomain,
                                                         agent: AgentKit) -> None:
    pipeline = Pipeline(domain)
    assert pipeline.decide(agent.request("read_file", path="a")).effect is Effect.ALLOW
    # Simulate a full disk: cap the database at the pages it already uses.
    with sqlite3.connect(domain.home / "state.db") as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    backend = domain.audit._backend
    # The SQLite backend's private write connection; the backend protocol does not expose it.
    backend._wconn.execute(  # type: ignore[attr-defined]  # private to the SQLite backend
        f"PRAGMA max_page_count = {pages}")
    # A record that needs new pages (arguments are redacted to 64 x 256 chars).
    big = {f"field{i}": f"{i}" * 250 for i in range(64)}
    decision = pipeline.decide(agent.request_call(ToolCall(tool="read_file", arguments=big)))
    assert decision.effect is Effect.DENY
    assert codes(decision)[-1] == "audit.write-failed"


@pytest.mark.claim("warrant.expiry")
def test_an_expired_warrant_never_authorises(domain: TrustDomain, agent: AgentKit,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = Pipeline(domain)
    assert pipeline.decide(agent.request("read_file", path="a")).effect is Effect.ALLOW
    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)
    decision = pipeline.decide(agent.request("read_file", path="a"))
    assert decision.effect is Effect.DENY


def test_every_decision_lands_in_the_audit_log_with_redacted_arguments(
        domain: TrustDomain, agent: AgentKit) -> None:
    decision = Pipeline(domain).decide(agent.request("send_email", to="ops@acme.example",
                                                     api_key="sk-live-123"))
    assert decision.audit_seq is not None
    record = domain.audit.get(decision.audit_seq).record
    assert record.decision_id == decision.decision_id
    # An API key on its way out of the organisation: denied (and nobody gave the address).
    assert record.effect == "deny"
    assert any("flow.forbid-secret-leaving" in reason.message for reason in decision.reasons)
    assert record.arguments_redacted["api_key"] == "[redacted]"
    assert "sk-live-123" not in record.to_bytes().decode()
    domain.verify_audit()


def test_attenuated_warrant_for_a_sub_agent_is_enforced_at_its_narrower_scope(
        domain: TrustDomain) -> None:
    import datetime as dt

    parent = make_agent(domain, "orchestrator", tools=("read_file", "transfer:amount=0..100"))
    domain.close()  # the fixture's domain instance keeps working below via a fresh open
    reopened = TrustDomain.open(domain.home)
    sub = reopened.register_agent("helper", owner="finance", purpose="reads files")[0]
    # Parent warrant must allow delegation: mint one with depth 1.
    task_id, token = reopened.mint(agent="orchestrator", task="t",
                                   tools=[warrants.parse_tool_spec("read_file"),
                                          warrants.parse_tool_spec("transfer:amount=0..100")],
                                   max_depth=1)
    narrowed = warrants.attenuate_warrant(
        token, reopened.public_key, domain=reopened.domain, now=dt.datetime.now(dt.UTC),
        tools=[warrants.parse_tool_spec("read_file")], holder=sub.agent_id,
        signer=reopened.agent_key("orchestrator"))
    helper_cred = reopened.issue_credential("helper").token
    kit = AgentKit(name="helper", agent_id=sub.agent_id, key=reopened.agent_key("helper"),
                   credential=helper_cred, warrant=narrowed, task_id=task_id)
    pipeline = Pipeline(reopened)
    allowed = pipeline.decide(kit.request("read_file", path="a"))
    assert allowed.effect is Effect.ALLOW
    assert allowed.principal_chain == (parent.agent_id, sub.agent_id)
    assert pipeline.decide(kit.request("transfer", amount=1)).effect is Effect.DENY
    reopened.close()


def test_rotating_an_agents_key_cuts_off_credentials_bound_to_the_old_key(
        domain: TrustDomain, agent: AgentKit) -> None:
    pipeline = Pipeline(domain)
    assert pipeline.decide(agent.request("read_file", path="a")).effect is Effect.ALLOW
    domain.rotate_agent_key(agent.name)
    decision = pipeline.decide(agent.request("read_file", path="a"))
    assert decision.effect is Effect.DENY


@pytest.mark.claim("revocation.every-decision")
@pytest.mark.claim("warrant.expiry")
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(revocation=st.sampled_from(["task", "agent", "credential", "all", None]),
       seconds_later=st.integers(min_value=0, max_value=4 * 3600))
def test_expired_or_revoked_never_authorises(domain: TrustDomain, revocation: str | None,
                                             seconds_later: int) -> None:
    kit = make_agent(domain, f"agent-{len(domain.store.list_agents())}", tools=("read_file",),
                     total_budget=None)
    if revocation is not None:
        credential = identity.verify_credential(kit.credential, domain.public_key,
                                                domain=domain.domain, now=time.time())
        value = {"task": kit.task_id, "agent": kit.agent_id,
                 "credential": credential.credential_id, "all": "*"}[revocation]
        domain.revoke(RevocationKind(revocation), value, "property test")
    moment = time.time() + seconds_later
    real_time = time.time
    time.time = lambda: moment  # the pipeline's clock
    try:
        # The agent signs its proof at that moment too: only expiry can stop it.
        decision = Pipeline(domain).decide(kit.request("read_file", path="a"))
    finally:
        time.time = real_time
    # Credentials live 600 s (+30 s skew), warrants 900 s, by the default config.
    expired = seconds_later > 600 + identity.CLOCK_SKEW_SECONDS
    if revocation is not None or expired:
        assert decision.effect is Effect.DENY
    elif seconds_later < 590:
        assert decision.effect is Effect.ALLOW
    if revocation == "all":
        # Lift the kill switch behind Warrant's back so the next example starts clean.
        with sqlite3.connect(domain.home / "state.db") as conn:
            conn.execute("DELETE FROM revocations WHERE kind = 'all'")


def test_every_durable_record_is_published_to_listeners_and_a_broken_one_changes_nothing(
        domain: TrustDomain, agent: AgentKit) -> None:
    seen: list[tuple[int, str]] = []

    def broken(seq: int, record: object) -> None:
        raise RuntimeError("listener bug")

    domain.subscribe(broken)
    domain.subscribe(lambda seq, record: seen.append((seq, record.kind)))
    decision = Pipeline(domain).decide(agent.request("read_file", path="a"))
    assert decision.effect is Effect.ALLOW
    assert seen == [(decision.audit_seq, "decision")]
