"""Delegation detections: synthetic records for the stateful ones, and a compromised
orchestrator driven through the real pipeline for containment."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import make_agent
from warrant import identity
from warrant.audit import AuditRecord, utc_now
from warrant.enforce import Envelope, Guard, GuardSession, Pipeline, TrustDomain, body_digest
from warrant.errors import InvalidEnvelope
from warrant.response import (
    Alert,
    DelegationConfig,
    Event,
    ResponseEngine,
    delegation_new_pair,
    delegation_unusual,
)
from warrant.warrants import ToolGrant

from .conftest import Watch

A, B = "spiffe://acme.example/agent/a", "spiffe://acme.example/agent/b"


def received(sender: str, recipient: str, depth: int = 1) -> AuditRecord:
    return AuditRecord(kind="admin", time=utc_now(), tool="delegation.received", detail={
        "sender": sender, "recipient": recipient, "depth": depth, "task_id": "task-1"})


def feed(detection: Any, records: list[tuple[AuditRecord, float]]) -> list[Alert]:
    state: dict[str, Any] = {}
    alerts: list[Alert] = []
    for seq, (record, at) in enumerate(records, start=1):
        alerts += detection.detect(Event(seq, record, at), state)
    return alerts


def test_a_deep_chain_is_unusual_and_a_normal_one_is_not() -> None:
    detection = delegation_unusual(DelegationConfig(max_depth=2))
    assert feed(detection, [(received(A, B, depth=2), 0.0)]) == []
    [alert] = feed(detection, [(received(A, B, depth=3), 0.0)])
    assert alert.agent == A and "depth 3" in alert.summary


def test_fanning_out_to_many_agents_in_a_short_window_is_unusual() -> None:
    detection = delegation_unusual(DelegationConfig(fan_out=3, fan_out_window=60))
    spread = [(received(A, f"spiffe://acme.example/agent/r{i}"), float(i)) for i in range(3)]
    [alert] = feed(detection, spread)
    assert "3 agents" in alert.summary
    slow = [(received(A, f"spiffe://acme.example/agent/r{i}"), i * 100.0) for i in range(5)]
    assert feed(detection, slow) == []
    same = [(received(A, B), float(i)) for i in range(10)]
    assert feed(detection, same) == []


def test_a_new_pair_is_reported_only_after_the_usual_pairs_are_learned() -> None:
    detection = delegation_new_pair(DelegationConfig(pairs_warmup=3))
    usual = [(received(A, B), float(i)) for i in range(3)]
    newcomer = (received(B, A), 10.0)
    alerts = feed(detection, [*usual, (received(A, B), 5.0), newcomer, newcomer])
    assert [a.agent for a in alerts] == [B]


@pytest.mark.claim("delegation.sealed-messages")
def test_a_compromised_orchestrator_handing_over_a_widened_warrant_is_contained(
        domain: TrustDomain, engine: ResponseEngine, watch: Watch) -> None:
    guard = Guard(domain)
    orchestrator = make_agent(domain, "orchestrator", tools=("read_file", "transfer"))
    helper = make_agent(domain, "helper", tools=("read_file",))
    session = GuardSession(guard, credential=orchestrator.credential,
                           warrant=orchestrator.warrant, agent_key=orchestrator.key)
    # The orchestrator's own warrant may not be delegated (depth 0): it forges a hand-over.
    forged = _forged_handover(domain, orchestrator.warrant, helper.agent_id)
    seal = identity.seal_envelope(
        orchestrator.key, sender=orchestrator.agent_id,
        credential_token=orchestrator.credential, recipient=helper.agent_id,
        task_id=orchestrator.task_id, warrant_token=orchestrator.warrant,
        delegated_token=forged, body_digest=body_digest("pay"), now=time.time(),
        ttl_seconds=60)
    envelope = Envelope(seal=seal, credential=orchestrator.credential,
                        warrant=orchestrator.warrant, delegated=forged)
    with pytest.raises(InvalidEnvelope) as refused:
        guard.receive(envelope, "pay", recipient="helper")
    assert refused.value.reason in {"delegation.widening", "delegation.bad-warrant"}
    incident_id, detail = watch.wait("contained")
    assert detail["action"] == "revoke_task"
    incident = engine.incidents.get(incident_id)
    assert incident is not None
    assert incident.detections == ["response.delegation-attack"]
    assert incident.agent == orchestrator.agent_id
    after = Pipeline(domain).decide(orchestrator.request("read_file", path="a"))
    assert "revoked" in {r.code for r in after.reasons}
    del session


def test_a_replayed_message_raises_an_alert_but_names_nobody(
        domain: TrustDomain, engine: ResponseEngine, watch: Watch) -> None:
    guard = Guard(domain)
    sender = make_agent(domain, "orchestrator", tools=("read_file",))
    make_agent(domain, "helper", tools=("read_file",))
    session = GuardSession(guard, credential=sender.credential, warrant=sender.warrant,
                           agent_key=sender.key)
    envelope = session.seal("helper", "hello")
    guard.receive(envelope, "hello", recipient="helper")
    with pytest.raises(InvalidEnvelope) as refused:
        guard.receive(envelope, "hello", recipient="helper")
    assert refused.value.reason == "delegation.replay"
    incident_id, _ = watch.wait("alert",
                                lambda i, d: d["detection"] == "response.delegation-attack")
    watch.wait("triaged", lambda i, d: i == incident_id)
    incident = engine.incidents.get(incident_id)
    assert incident is not None
    assert incident.detections == ["response.delegation-attack"]
    assert incident.agent is None
    # Nobody proven, nobody contained: the sender keeps working.
    assert Pipeline(domain).decide(sender.request("read_file", path="a")).allowed


def _forged_handover(domain: TrustDomain, token: str, holder: str) -> str:
    """Append a hand-over block by hand, past the warrant's depth limit."""
    import datetime as dt

    import biscuit_auth as ba

    from warrant.warrants import WarrantLayer
    from warrant.warrants._datalog import render_block

    public = ba.PublicKey.from_bytes(identity.raw_public(domain.public_key),  # type: ignore[call-arg]
                                     ba.Algorithm.Ed25519)  # type: ignore[attr-defined]
    layer = WarrantLayer(tools=(ToolGrant("read_file"), ToolGrant("transfer")), max_depth=0,
                         holder=holder, expires_at=dt.datetime.now(dt.UTC).replace(
                             microsecond=0) + dt.timedelta(minutes=5))
    biscuit = ba.Biscuit.from_base64(token, public)
    forged: str = biscuit.append(ba.BlockBuilder(render_block(layer, None))).to_base64()
    return forged
