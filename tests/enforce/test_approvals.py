"""Held calls: policy says needs-approval, a human decides, the retried call runs once."""

from __future__ import annotations

import pytest

from tests.conftest import AgentKit, make_agent
from warrant.enforce import Pipeline, TrustDomain
from warrant.errors import IdentityError
from warrant.types import Effect


@pytest.fixture
def payer(domain: TrustDomain) -> AgentKit:
    return make_agent(domain, "payer", tools=("transfer:amount=0..5000",), total_budget=None)


def held(domain: TrustDomain, kit: AgentKit, amount: int = 2500) -> str:
    decision = Pipeline(domain).decide(kit.request("transfer", amount=amount))
    assert decision.effect is Effect.NEEDS_APPROVAL
    assert [r.code for r in decision.reasons] == ["policy.needs-approval", "approval.pending"]
    (pending,) = domain.store.approvals.list(pending_only=True, now=0)
    return pending.approval_id


@pytest.mark.claim("approval.exact-call-once")
def test_an_approved_call_goes_through_exactly_once(domain: TrustDomain, payer: AgentKit) -> None:
    approval_id = held(domain, payer)
    domain.decide_approval(approval_id, approve=True, by="user:alice", note="invoice 7")
    pipeline = Pipeline(domain)
    first = pipeline.decide(payer.request("transfer", amount=2500))
    assert first.effect is Effect.ALLOW
    assert first.reasons[-1].code == "approval.granted"
    assert "user:alice" in first.reasons[-1].message
    again = pipeline.decide(payer.request("transfer", amount=2500))
    assert again.effect is Effect.NEEDS_APPROVAL


@pytest.mark.claim("approval.exact-call-once")
def test_an_approval_does_not_cover_a_different_amount(domain: TrustDomain,
                                                       payer: AgentKit) -> None:
    approval_id = held(domain, payer, amount=2500)
    domain.decide_approval(approval_id, approve=True, by="user:alice")
    other = Pipeline(domain).decide(payer.request("transfer", amount=4999))
    assert other.effect is Effect.NEEDS_APPROVAL


def test_retrying_while_pending_keeps_one_pending_approval(domain: TrustDomain,
                                                          payer: AgentKit) -> None:
    first = held(domain, payer)
    Pipeline(domain).decide(payer.request("transfer", amount=2500))
    pending = domain.store.approvals.list(pending_only=True, now=0)
    assert [a.approval_id for a in pending] == [first]


def test_a_denied_approval_is_never_used(domain: TrustDomain, payer: AgentKit) -> None:
    approval_id = held(domain, payer)
    domain.decide_approval(approval_id, approve=False, by="user:bob")
    retry = Pipeline(domain).decide(payer.request("transfer", amount=2500))
    assert retry.effect is Effect.NEEDS_APPROVAL
    with pytest.raises(IdentityError, match="denied, not pending"):
        domain.decide_approval(approval_id, approve=True, by="user:alice")


@pytest.mark.claim("approval.humans-only")
@pytest.mark.parametrize("approver", ["spiffe://acme.example/agent/payer", "payer", "user:",
                                      "user:al ice"])
def test_only_a_named_person_can_decide_an_approval(domain: TrustDomain, payer: AgentKit,
                                                    approver: str) -> None:
    approval_id = held(domain, payer)
    with pytest.raises(IdentityError, match="must name a person"):
        domain.decide_approval(approval_id, approve=True, by=approver)
    assert domain.store.approvals.get(approval_id).status == "pending"  # type: ignore[union-attr]


def test_deciding_an_unknown_approval_is_a_clear_error(domain: TrustDomain) -> None:
    with pytest.raises(IdentityError, match="no approval `apr-nope`"):
        domain.decide_approval("apr-nope", approve=True, by="user:alice")


def test_an_expired_hold_cannot_be_approved_but_can_still_be_refused(
        domain: TrustDomain, payer: AgentKit) -> None:
    approval_id = held(domain, payer)
    with domain.store._conn:  # type: ignore[attr-defined]  # the clock moves on: it expired
        domain.store._conn.execute(  # type: ignore[attr-defined]
            "UPDATE approvals SET expires_at = 0 WHERE approval_id = ?", (approval_id,))
    with pytest.raises(IdentityError, match="expired, not pending"):
        domain.decide_approval(approval_id, approve=True, by="user:alice")
    # The person who answers late still says no, and that counts for the rest of the task.
    domain.decide_approval(approval_id, approve=False, by="user:alice", note="late, but no")
    assert domain.store.approvals.get(approval_id).status == "denied"  # type: ignore[union-attr]
    assert domain.store.approvals.refused_tools(payer.task_id) == ["transfer"]
