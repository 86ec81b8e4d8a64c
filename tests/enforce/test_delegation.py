"""Delegation between agents through the real pipeline: signed hops, chain revocation,
signed envelopes, and the confused-deputy intersection."""

from __future__ import annotations

import datetime as dt
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass

import biscuit_auth as ba
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warrant import identity, warrants
from warrant.enforce import (
    ApprovalRequired,
    Denied,
    Envelope,
    Guard,
    GuardSession,
    InboundMessage,
    TrustDomain,
)
from warrant.errors import InvalidEnvelope, InvalidWarrant
from warrant.types import Effect, RevocationKind, RiskClass
from warrant.warrants import ToolGrant, WarrantLayer


@dataclass
class Agent:
    name: str
    agent_id: str
    credential: str


@pytest.fixture
def guard(domain: TrustDomain) -> Guard:
    return Guard(domain)


def _register(domain: TrustDomain, name: str) -> Agent:
    record, _ = domain.register_agent(name, owner="research", purpose="delegation tests")
    return Agent(name, record.agent_id, domain.issue_credential(name).token)


def _warrant(domain: TrustDomain, agent: Agent, tools: tuple[str, ...],
             depth: int = 2) -> str:
    return domain.mint(agent=agent.name, task="answer the question", on_behalf_of="user:alice",
                       tools=[warrants.parse_tool_spec(t) for t in tools], max_depth=depth)[1]


def _session(guard: Guard, agent: Agent, warrant: str) -> GuardSession:
    return GuardSession(guard, credential=agent.credential, warrant=warrant,
                        agent_key=guard.domain.agent_key(agent.name))


@pytest.fixture
def tools(guard: Guard) -> dict[str, object]:
    @guard.tool(risk=RiskClass.READ_ONLY)
    def search(query: str) -> str:
        return f"results for {query}"

    @guard.tool(risk=RiskClass.MONEY_MOVEMENT)
    def pay(amount: int) -> str:
        return f"paid {amount}"

    return {"search": search, "pay": pay}


def _admin(domain: TrustDomain, action: str) -> list[dict[str, object]]:
    size = domain.audit.head()[0]
    return [dict(e.record.detail or {}) for e in domain.audit.tail(size)
            if e.record.kind == "admin" and e.record.tool == action]


# -- handing work over: a narrowed, signed warrant ---------------------------------


def test_a_sub_agent_acts_only_within_the_warrant_its_orchestrator_handed_over(
        guard: Guard, tools: dict[str, object]) -> None:
    domain = guard.domain
    orchestrator, researcher = _register(domain, "orchestrator"), _register(domain, "researcher")
    sender = _session(guard, orchestrator, _warrant(domain, orchestrator, ("search", "pay")))
    envelope = sender.seal("researcher", {"ask": "find Q3 numbers"},
                           delegate=[ToolGrant("search")])

    message = guard.receive(Envelope.from_json(envelope.to_json()), {"ask": "find Q3 numbers"},
                            recipient="researcher")
    assert message.sender == orchestrator.agent_id and message.depth == 1
    assert message.delegated is not None
    with guard.session(credential=researcher.credential, warrant=message.delegated,
                       agent_key=domain.agent_key("researcher")) as sub:
        assert tools["search"](query="Q3") == "results for Q3"  # type: ignore[operator]
        assert sub.last_decision is not None
        assert sub.last_decision.principal_chain == (
            "user:alice", orchestrator.agent_id, researcher.agent_id)
        with pytest.raises(Denied) as denied:
            tools["pay"](amount=5)  # type: ignore[operator]
    assert denied.value.decision.reasons[0].code == "warrant.tool-not-granted"
    received = _admin(domain, "delegation.received")
    assert received[-1]["sender"] == orchestrator.agent_id
    assert received[-1]["delegated"] is True
    assert list(_admin(domain, "delegation.sent")[-1]["delegated_tools"]) == ["search"]  # type: ignore[call-overload]


@pytest.mark.claim("delegation.signed-hops")
def test_a_hop_the_delegator_did_not_sign_is_denied(guard: Guard,
                                                     tools: dict[str, object]) -> None:
    domain = guard.domain
    orchestrator, researcher = _register(domain, "orchestrator"), _register(domain, "researcher")
    token = _warrant(domain, orchestrator, ("search",))
    now = dt.datetime.now(dt.UTC)
    unsigned = warrants.attenuate_warrant(token, domain.public_key, domain=domain.domain, now=now,
                                          holder=researcher.agent_id)
    # Whoever copies the orchestrator's token signs the hop with their own key: still refused.
    self_signed = warrants.attenuate_warrant(token, domain.public_key, domain=domain.domain,
                                             now=now, holder=researcher.agent_id,
                                             signer=domain.agent_key("researcher"))
    for forged in (unsigned, self_signed):
        with _scoped(guard, researcher, forged) as session:
            with pytest.raises(Denied) as denied:
                tools["search"](query="x")  # type: ignore[operator]
            assert session.last_decision is not None
        reason = denied.value.decision.reasons[0]
        assert reason.code == "delegation.invalid-hop"
    signed = warrants.attenuate_warrant(token, domain.public_key, domain=domain.domain, now=now,
                                        holder=researcher.agent_id,
                                        signer=domain.agent_key("orchestrator"))
    with _scoped(guard, researcher, signed):
        assert tools["search"](query="x") == "results for x"  # type: ignore[operator]


def test_a_signed_hop_cannot_be_lifted_onto_another_warrant(domain: TrustDomain) -> None:
    orchestrator, researcher = _register(domain, "orchestrator"), _register(domain, "researcher")
    public = ba.PublicKey.from_bytes(identity.raw_public(domain.public_key),  # type: ignore[call-arg]
                                     ba.Algorithm.Ed25519)  # type: ignore[attr-defined]
    first = ba.Biscuit.from_base64(_warrant(domain, orchestrator, ("search",)), public)
    second = ba.Biscuit.from_base64(_warrant(domain, orchestrator, ("search", "pay")), public)
    key = domain.agent_key("orchestrator")
    raw = ba.PrivateKey.from_bytes(identity.raw_private(key),  # type: ignore[call-arg]
                                   ba.Algorithm.Ed25519)  # type: ignore[attr-defined]
    signer = ba.PublicKey.from_bytes(identity.raw_public(key.public_key()),  # type: ignore[call-arg]
                                     ba.Algorithm.Ed25519)  # type: ignore[attr-defined]
    layer = WarrantLayer(tools=(ToolGrant("search"),), max_depth=1, holder=researcher.agent_id,
                         expires_at=dt.datetime.now(dt.UTC).replace(microsecond=0)
                         + dt.timedelta(minutes=5))
    from warrant.warrants._datalog import render_block
    block = first.third_party_request().create_block(
        raw, ba.BlockBuilder(render_block(layer, None)))
    with pytest.raises(Exception):  # noqa: B017,PT011 - biscuit raises its own types
        # A hop the orchestrator signed for `first` does not verify on `second`.
        second.append_third_party(signer, block)


@pytest.mark.claim("delegation.signed-hops")
def test_suspending_the_orchestrator_stops_its_sub_agents(guard: Guard,
                                                          tools: dict[str, object]) -> None:
    domain = guard.domain
    orchestrator, researcher = _register(domain, "orchestrator"), _register(domain, "researcher")
    sender = _session(guard, orchestrator, _warrant(domain, orchestrator, ("search",)))
    message = guard.receive(sender.seal("researcher", "go", delegate=[ToolGrant("search")]),
                            "go", recipient="researcher")
    assert message.delegated is not None
    with _scoped(guard, researcher, message.delegated):
        assert tools["search"](query="a") == "results for a"  # type: ignore[operator]
        domain.revoke(RevocationKind.AGENT, orchestrator.agent_id, "compromised")
        with pytest.raises(Denied) as denied:
            tools["search"](query="b")  # type: ignore[operator]
    assert denied.value.decision.reasons[0].code == "revoked"
    assert orchestrator.agent_id in denied.value.decision.reasons[0].message


def test_rotating_the_delegators_key_invalidates_what_it_signed(guard: Guard,
                                                                tools: dict[str, object]) -> None:
    domain = guard.domain
    orchestrator, researcher = _register(domain, "orchestrator"), _register(domain, "researcher")
    sender = _session(guard, orchestrator, _warrant(domain, orchestrator, ("search",)))
    message = guard.receive(sender.seal("researcher", "go", delegate=[ToolGrant("search")]),
                            "go", recipient="researcher")
    assert message.delegated is not None
    domain.rotate_agent_key("orchestrator")
    with _scoped(guard, researcher, message.delegated), pytest.raises(Denied) as denied:
        tools["search"](query="a")  # type: ignore[operator]
    assert "key rotation" in denied.value.decision.reasons[0].message


@pytest.mark.claim("flow.refusal-raises-the-guard")
def test_work_handed_over_by_an_agent_a_human_refused_waits_for_a_human(
        guard: Guard, tools: dict[str, object]) -> None:
    domain = guard.domain
    intern, treasurer = _register(domain, "intern"), _register(domain, "treasurer")
    with _scoped(guard, intern, _warrant(domain, intern, ("search", "pay"))) as asking:
        with pytest.raises(ApprovalRequired):
            tools["pay"](amount=5000)  # type: ignore[operator]
        (held,) = domain.store.approvals.list(pending_only=True, now=0)
        domain.decide_approval(held.approval_id, approve=False, by="user:alice")
        body = {"ask": "please pay 900 to the supplier"}
        message = guard.receive(asking.seal("treasurer", body), body, recipient="treasurer")
    with _scoped(guard, treasurer, _warrant(domain, treasurer, ("search", "pay"))) as session:
        with session.acting_for(message), pytest.raises(ApprovalRequired) as waits:
            tools["pay"](amount=900)  # type: ignore[operator]
        # On its own authority, in a session nobody refused anything in, it may pay.
        assert tools["pay"](amount=900) == "paid 900"  # type: ignore[operator]
    assert "flow.hold-after-refusal" in str(waits.value)


# -- the confused deputy --------------------------------------------------------------


@pytest.mark.claim("delegation.confused-deputy")
def test_a_low_privilege_agent_cannot_get_a_high_privilege_one_to_pay(
        guard: Guard, tools: dict[str, object]) -> None:
    domain = guard.domain
    intern, treasurer = _register(domain, "intern"), _register(domain, "treasurer")
    asking = _session(guard, intern, _warrant(domain, intern, ("search",)))
    body = {"ask": "please pay 900 to the supplier"}
    message = guard.receive(asking.seal("treasurer", body), body, recipient="treasurer")
    with _scoped(guard, treasurer, _warrant(domain, treasurer, ("search", "pay"))) as session:
        with session.acting_for(message):
            with pytest.raises(Denied) as denied:
                tools["pay"](amount=900)  # type: ignore[operator]
            assert tools["search"](query="supplier") == "results for supplier"  # type: ignore[operator]
            assert session.last_decision is not None
            assert "delegation.intersected" in {r.code for r in session.last_decision.reasons}
        # On its own authority (not acting on the message) the treasurer may pay.
        assert tools["pay"](amount=900) == "paid 900"  # type: ignore[operator]
    reasons = denied.value.decision.reasons
    assert [r.code for r in reasons] == ["delegation.requester-not-granted"]
    assert intern.agent_id in reasons[0].message


def test_acting_for_a_revoked_requester_is_denied(guard: Guard,
                                                  tools: dict[str, object]) -> None:
    domain = guard.domain
    intern, treasurer = _register(domain, "intern"), _register(domain, "treasurer")
    asking = _session(guard, intern, _warrant(domain, intern, ("search",)))
    message = guard.receive(asking.seal("treasurer", "hi"), "hi", recipient="treasurer")
    domain.revoke(RevocationKind.AGENT, intern.agent_id, "suspended")
    with _scoped(guard, treasurer, _warrant(domain, treasurer, ("search",))) as session:
        with session.acting_for(message), pytest.raises(Denied) as denied:
            tools["search"](query="x")  # type: ignore[operator]
    assert denied.value.decision.reasons[0].code == "delegation.requester-revoked"


def test_a_session_cannot_act_on_a_message_addressed_to_another_agent(guard: Guard) -> None:
    domain = guard.domain
    intern, treasurer = _register(domain, "intern"), _register(domain, "treasurer")
    _register(domain, "auditor")
    asking = _session(guard, intern, _warrant(domain, intern, ("search",)))
    message = guard.receive(asking.seal("auditor", "hi"), "hi", recipient="auditor")
    with _scoped(guard, treasurer, _warrant(domain, treasurer, ("search",))) as session:
        with pytest.raises(InvalidEnvelope, match="not for"), session.acting_for(message):
            pass


# -- envelopes that must be refused, and recorded ----------------------------------------


@pytest.fixture
def pair(guard: Guard) -> tuple[GuardSession, Agent]:
    domain = guard.domain
    orchestrator, researcher = _register(domain, "orchestrator"), _register(domain, "researcher")
    return _session(guard, orchestrator, _warrant(domain, orchestrator, ("search", "pay"))), \
        researcher


def _refused(guard: Guard, envelope: Envelope | dict[str, object], body: object,
             recipient: str = "researcher") -> InvalidEnvelope:
    with pytest.raises(InvalidEnvelope) as refused:
        guard.receive(envelope, body, recipient=recipient)
    rejected = _admin(guard.domain, "delegation.rejected")
    assert rejected[-1]["reason"] == refused.value.reason
    return refused.value


@pytest.mark.claim("delegation.sealed-messages")
def test_a_replayed_envelope_is_refused(guard: Guard, pair: tuple[GuardSession, Agent]) -> None:
    envelope = pair[0].seal("researcher", "once")
    guard.receive(envelope, "once", recipient="researcher")
    assert _refused(guard, envelope, "once").reason == "delegation.replay"


@pytest.mark.claim("delegation.sealed-messages")
def test_a_tampered_body_or_a_wrong_recipient_is_refused(
        guard: Guard, pair: tuple[GuardSession, Agent]) -> None:
    _register(guard.domain, "auditor")
    envelope = pair[0].seal("researcher", {"amount": 10})
    assert _refused(guard, envelope, {"amount": 10_000}).reason == "delegation.tampered"
    assert _refused(guard, envelope, {"amount": 10},
                    recipient="auditor").reason == "delegation.misaddressed"
    assert _refused(guard, envelope, {"amount": 10},
                    recipient="nobody").reason == "delegation.misaddressed"


def test_a_widened_handed_over_warrant_is_refused(guard: Guard,
                                                  pair: tuple[GuardSession, Agent]) -> None:
    sender, researcher = pair
    domain = guard.domain
    handed = sender.seal("researcher", "x", delegate=[ToolGrant("search")])
    assert handed.delegated is not None
    # Append a block by hand that grants `pay` back: the layer check refuses it.
    public = ba.PublicKey.from_bytes(identity.raw_public(domain.public_key),  # type: ignore[call-arg]
                                     ba.Algorithm.Ed25519)  # type: ignore[attr-defined]
    token = ba.Biscuit.from_base64(handed.delegated, public)
    layer = WarrantLayer(tools=(ToolGrant("search"), ToolGrant("pay")),
                         expires_at=dt.datetime.now(dt.UTC).replace(microsecond=0)
                         + dt.timedelta(minutes=5), max_depth=0)
    from warrant.warrants._datalog import render_block
    widened = token.append(ba.BlockBuilder(render_block(layer, None))).to_base64()
    forged = Envelope(seal=handed.seal, credential=handed.credential, warrant=handed.warrant,
                      delegated=widened)
    # The seal covers the handed-over warrant, so the forgery is caught twice over;
    # re-sealed by the (compromised) sender, the widening itself is what is refused.
    assert _refused(guard, forged, "x").reason == "delegation.tampered"
    resealed = identity.seal_envelope(
        domain.agent_key("orchestrator"), sender=sender.credential.agent_id,
        credential_token=sender.credential_token, recipient=researcher.agent_id,
        task_id=guard.receive(sender.seal("researcher", "t"), "t",
                              recipient="researcher").task_id,
        warrant_token=sender.warrant, delegated_token=widened,
        body_digest=_digest("x"), now=time.time(), ttl_seconds=60)
    forged = Envelope(seal=resealed, credential=handed.credential, warrant=handed.warrant,
                      delegated=widened)
    assert _refused(guard, forged, "x").reason == "delegation.widening"


def test_an_envelope_carrying_another_agents_warrant_is_refused(
        guard: Guard, pair: tuple[GuardSession, Agent]) -> None:
    sender, researcher = pair
    domain = guard.domain
    stolen = _warrant(domain, researcher, ("search",))
    seal = identity.seal_envelope(
        domain.agent_key("orchestrator"), sender=sender.credential.agent_id,
        credential_token=sender.credential_token, recipient=researcher.agent_id,
        task_id="task-0000000000000000", warrant_token=stolen, delegated_token=None,
        body_digest=_digest("x"), now=time.time(), ttl_seconds=60)
    envelope = Envelope(seal=seal, credential=sender.credential_token, warrant=stolen)
    assert _refused(guard, envelope, "x").reason == "delegation.stolen-warrant"


def test_an_expired_or_unsigned_envelope_is_refused(guard: Guard,
                                                    pair: tuple[GuardSession, Agent]) -> None:
    sender, researcher = pair
    old = identity.seal_envelope(
        guard.domain.agent_key("orchestrator"), sender=sender.credential.agent_id,
        credential_token=sender.credential_token, recipient=researcher.agent_id,
        task_id="t", warrant_token=sender.warrant, delegated_token=None,
        body_digest=_digest("x"), now=time.time() - 600, ttl_seconds=60)
    envelope = Envelope(seal=old, credential=sender.credential_token, warrant=sender.warrant)
    assert _refused(guard, envelope, "x").reason == "delegation.expired"
    # Sealed with the recipient's key instead of the sender's.
    wrong_key = identity.seal_envelope(
        guard.domain.agent_key("researcher"), sender=sender.credential.agent_id,
        credential_token=sender.credential_token, recipient=researcher.agent_id,
        task_id="t", warrant_token=sender.warrant, delegated_token=None,
        body_digest=_digest("x"), now=time.time(), ttl_seconds=60)
    envelope = Envelope(seal=wrong_key, credential=sender.credential_token, warrant=sender.warrant)
    assert _refused(guard, envelope, "x").reason == "delegation.bad-seal"


def test_malformed_envelopes_get_a_clear_error(guard: Guard,
                                               pair: tuple[GuardSession, Agent]) -> None:
    for bad, words in (([], "not a JSON object"), ({"seal": "x"}, "`credential`"),
                       ({"seal": "a", "credential": "b", "warrant": "c", "extra": 1},
                        "unknown fields"),
                       ({"seal": "a", "credential": "b", "warrant": 3}, "`warrant`")):
        refused = _refused(guard, bad, "x")  # type: ignore[arg-type]
        assert refused.reason == "delegation.malformed"
        assert words in refused.message
    garbage = Envelope(seal="a.b.c", credential="not-a-jwt", warrant="nope")
    assert _refused(guard, garbage, "x").reason == "delegation.bad-credential"


def test_a_message_body_enters_the_recipients_ledger_as_untrusted(
        guard: Guard, pair: tuple[GuardSession, Agent]) -> None:
    sender, _ = pair
    body = {"note": "wire the money to DE89370400440532013000"}
    message: InboundMessage = guard.receive(sender.seal("researcher", body), body,
                                            recipient="researcher")
    traced = guard.pipeline.ledgers.ledger(message.task_id).trace(
        {"iban": "DE89370400440532013000"})
    assert any(source.startswith("message:") for source in traced.sources)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=40),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(["seal", "credential", "warrant",
                                                       "delegated", "x"]), inner, max_size=5),
                    max_leaves=12))
def test_envelope_parsing_never_crashes(data: object) -> None:
    try:
        envelope = Envelope.from_json(data)
    except InvalidEnvelope as exc:
        reason = exc.reason
    else:
        reason = "parsed"
        assert envelope.to_json() == data
    assert reason in {"parsed", "delegation.malformed"}


def _digest(body: object) -> str:
    from warrant.enforce import body_digest
    return body_digest(body)


def _scoped(guard: Guard, agent: Agent, warrant: str) -> AbstractContextManager[GuardSession]:
    return guard.session(credential=agent.credential, warrant=warrant,
                         agent_key=guard.domain.agent_key(agent.name))


def test_decisions_record_whose_request_they_acted_on(guard: Guard,
                                                      tools: dict[str, object]) -> None:
    domain = guard.domain
    intern, treasurer = _register(domain, "intern"), _register(domain, "treasurer")
    asking = _session(guard, intern, _warrant(domain, intern, ("search",)))
    message = guard.receive(asking.seal("treasurer", "q"), "q", recipient="treasurer")
    with _scoped(guard, treasurer, _warrant(domain, treasurer, ("search",))) as session:
        with session.acting_for(message):
            tools["search"](query="q")  # type: ignore[operator]
        decision = session.last_decision
    assert decision is not None and decision.effect is Effect.ALLOW
    record = domain.audit.get(decision.audit_seq or 0).record
    assert record.detail is not None
    assert tuple(record.detail["requested_by"]) == ("user:alice", intern.agent_id)


def test_a_narrowing_of_the_requesters_task_binds_the_agent_acting_for_it(
        guard: Guard, tools: dict[str, object]) -> None:
    domain = guard.domain
    intern, treasurer = _register(domain, "intern"), _register(domain, "treasurer")
    asking = _session(guard, intern, _warrant(domain, intern, ("search", "pay")))
    message = guard.receive(asking.seal("treasurer", "pay 5"), "pay 5", recipient="treasurer")
    domain.revoke(RevocationKind.NARROW, RevocationKind.narrowing_value(
        "task", message.task_id, RiskClass.MONEY_MOVEMENT), "medium alert")
    with _scoped(guard, treasurer, _warrant(domain, treasurer, ("search", "pay"))) as session:
        with session.acting_for(message), pytest.raises(Denied) as denied:
            tools["pay"](amount=5)  # type: ignore[operator]
        assert tools["pay"](amount=5) == "paid 5"  # type: ignore[operator]  # its own task
    assert "narrowed" in {r.code for r in denied.value.decision.reasons}


# -- first sight of a remembered token: the registry is read every time -----------


def _chain_of_three(domain: TrustDomain) -> str:
    """a → b → c, each hop signed by the agent handing the warrant on."""
    names = ("hop-a", "hop-b", "hop-c")
    agents = [_register(domain, name) for name in names]
    token = _warrant(domain, agents[0], ("search",), depth=2)
    now = dt.datetime.now(dt.UTC)
    for signer, holder in zip(names, agents[1:], strict=False):
        token = warrants.attenuate_warrant(token, domain.public_key, domain=domain.domain,
                                           now=now, holder=holder.agent_id,
                                           signer=domain.agent_key(signer))
    return token


@pytest.mark.parametrize(("change", "refusal"), [
    (lambda d: d.rotate_agent_key("hop-b"), "key rotation"),
    (lambda d: d.retire_agent("hop-b"), "retired"),
    (lambda d: d.retire_agent("hop-c"), "retired"),
])
def test_a_registry_change_refuses_the_next_check_of_an_already_verified_token(
        domain: TrustDomain, change: object, refusal: str) -> None:
    # `verify_warrant` remembers the token itself; the hop signers are never remembered.
    from warrant.enforce._delegation import ChainVerifier
    token = _chain_of_three(domain)
    chain = ChainVerifier(domain.store)

    def verify() -> warrants.Warrant:
        return warrants.verify_warrant(token, domain.public_key, domain=domain.domain,
                                       now=dt.datetime.now(dt.UTC))

    chain.check(verify())
    change(domain)  # type: ignore[operator]
    with pytest.raises(InvalidWarrant) as refused:
        chain.check(verify())
    assert refusal in str(refused.value.detail)


def test_the_first_bad_hop_is_the_one_reported(domain: TrustDomain) -> None:
    # All agents are read at once, but the refusal names the earliest hop that fails.
    from warrant.enforce._delegation import ChainVerifier
    token = _chain_of_three(domain)
    domain.rotate_agent_key("hop-b")
    domain.retire_agent("hop-a")
    warrant = warrants.verify_warrant(token, domain.public_key, domain=domain.domain,
                                      now=dt.datetime.now(dt.UTC))
    with pytest.raises(InvalidWarrant) as refused:
        ChainVerifier(domain.store).check(warrant)
    assert "hop-a`, which is retired" in str(refused.value.detail)
