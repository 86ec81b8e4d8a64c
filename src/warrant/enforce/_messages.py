"""Messages between agents: sealed by the sender, verified and logged on receipt.

    envelope = session.seal(recipient="researcher", body={"ask": "summarise Q3"},
                            delegate=[ToolGrant("search")])          # sender
    message = guard.receive(envelope, body, recipient="researcher")    # recipient
    with researcher_session.acting_for(message): ...   # calls need BOTH warrants
    # or act under the handed-over warrant: guard.session(..., warrant=message.delegated)

An `Envelope` travels beside the body: the sender's credential and warrant,
optionally a warrant attenuated for the recipient, and a seal signed by the
sender's key over all of it and the body's digest. `receive_message` checks
every part; any failure raises `InvalidEnvelope` and is recorded
(`delegation.rejected`, with a reason code the response engine turns into an
event); an accepted message is recorded as `delegation.received` with the
depth and the pair, which is what the unusual-delegation detection reads.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from warrant import identity, warrants
from warrant.errors import InvalidCredential, InvalidEnvelope, InvalidWarrant, WarrantError
from warrant.types import AgentStatus, canonical_json, sha256_hex

from ._delegation import ChainVerifier
from ._domain import TrustDomain
from ._telemetry import current_traceparent

#: Default lifetime of an envelope: a message is acted on promptly or not at all.
DEFAULT_ENVELOPE_TTL_SECONDS = 300
_FIELDS = ("seal", "credential", "warrant", "delegated", "traceparent")
_OPTIONAL = frozenset({"delegated", "traceparent"})
_MAX_FIELD_CHARS = 64 * 1024


@dataclass(frozen=True, slots=True)
class Envelope:
    """What travels beside a message body (e.g. in A2A message metadata)."""

    seal: str
    credential: str
    warrant: str
    delegated: str | None = None
    #: The sender's W3C trace context (sealed): the recipient's decisions join its trace.
    traceparent: str | None = None

    def to_json(self) -> dict[str, str]:
        data = {"seal": self.seal, "credential": self.credential, "warrant": self.warrant}
        if self.delegated is not None:
            data["delegated"] = self.delegated
        if self.traceparent is not None:
            data["traceparent"] = self.traceparent
        return data

    @classmethod
    def from_json(cls, data: object) -> Envelope:
        """Parse an envelope received from another process; `InvalidEnvelope` if malformed."""
        if not isinstance(data, Mapping):
            raise InvalidEnvelope("the envelope is not a JSON object",
                                  reason="delegation.malformed")
        unknown = sorted(str(k) for k in data if k not in _FIELDS)
        if unknown:
            raise InvalidEnvelope(f"the envelope has unknown fields {unknown}",
                                  reason="delegation.malformed")
        for name in _FIELDS:
            value = data.get(name)
            required = name not in _OPTIONAL
            if (value is None and required) or (value is not None and (
                    not isinstance(value, str) or not value or len(value) > _MAX_FIELD_CHARS)):
                raise InvalidEnvelope(f"the envelope's `{name}` must be a non-empty string of at "
                                      f"most {_MAX_FIELD_CHARS} characters",
                                      reason="delegation.malformed")
        return cls(seal=data["seal"], credential=data["credential"], warrant=data["warrant"],
                   delegated=data.get("delegated"), traceparent=data.get("traceparent"))


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A verified message: who sent it, under which warrant, and what it hands over."""

    message_id: str
    sender: str
    recipient: str
    task_id: str
    sender_chain: tuple[str, ...]
    body: Any
    #: The sender's warrant: calls made on its behalf must be allowed by it too.
    requester_warrant: str
    #: A warrant the sender attenuated for the recipient, when it handed work over.
    delegated: str | None
    #: Delegation depth of what the recipient may act under (0: not delegated).
    depth: int
    audit_seq: int
    #: The sender's trace context: calls made on this message join the sender's trace.
    traceparent: str | None = None


def message_source(sender: str) -> str:
    """The data-flow source name for content received from agent `sender`.

    `spiffe://acme.example/agent/bob` becomes `message:acme.example:agent:bob`:
    no `/`, so it can never be mistaken for a `server/tool` name whose last
    part the configuration trusts.
    """
    return "message:" + sender.removeprefix("spiffe://").replace("/", ":")


def body_digest(body: object) -> str:
    """SHA-256 (hex) of the body's canonical JSON: what the seal covers."""
    try:
        return sha256_hex(canonical_json(body))
    except (TypeError, ValueError) as exc:
        raise InvalidEnvelope(f"the message body is not JSON: {exc}",
                              reason="delegation.malformed") from None


def seal_message(domain: TrustDomain, *, agent_key: Ed25519PrivateKey,
                 credential: identity.Credential, credential_token: str, warrant: str,
                 recipient: str, body: Any,
                 delegate: Sequence[warrants.ToolGrant] | None = None,
                 delegate_ttl_seconds: int | None = None,
                 ttl_seconds: int = DEFAULT_ENVELOPE_TTL_SECONDS) -> Envelope:
    """Seal `body` for `recipient` (an agent name or id); optionally hand over a narrowed
    warrant naming the recipient as holder, signed with the sender's key."""
    target = domain.agent(recipient)
    if target.status is not AgentStatus.ACTIVE:
        raise InvalidEnvelope(f"agent `{target.agent_id}` is retired and receives no messages",
                              reason="delegation.misaddressed")
    now = dt.datetime.now(dt.UTC)
    current = warrants.verify_warrant(warrant, domain.public_key, domain=domain.domain, now=now)
    delegated = None
    if delegate is not None:
        expires = None if delegate_ttl_seconds is None else min(
            current.expires_at, now + dt.timedelta(seconds=delegate_ttl_seconds))
        delegated = warrants.attenuate_warrant(
            warrant, domain.public_key, domain=domain.domain, now=now, tools=delegate,
            holder=target.agent_id, expires_at=expires, signer=agent_key)
    digest = body_digest(body)
    traceparent = current_traceparent()
    seal = identity.seal_envelope(
        agent_key, sender=credential.agent_id, credential_token=credential_token,
        recipient=target.agent_id, task_id=current.task_id, warrant_token=warrant,
        delegated_token=delegated, body_digest=digest, now=time.time(),
        ttl_seconds=ttl_seconds, traceparent=traceparent)
    detail: dict[str, Any] = {"sender": credential.agent_id, "recipient": target.agent_id,
                              "task_id": current.task_id, "body_digest": digest}
    if delegated is not None:
        detail["delegated_tools"] = [g.name for g in delegate or ()]
    domain.record_admin("delegation.sent", detail)
    return Envelope(seal=seal, credential=credential_token, warrant=warrant, delegated=delegated,
                    traceparent=traceparent)


def receive_message(domain: TrustDomain, envelope: Envelope | Mapping[str, Any], body: Any,
                    *, recipient: str,
                    replay_guard: identity.ReplayGuard | None = None) -> InboundMessage:
    """Verify a message for `recipient` and record it; `InvalidEnvelope` (recorded) if not."""
    try:
        message = _open(domain, envelope, body, recipient, replay_guard or domain.store)
    except InvalidEnvelope as exc:
        domain.record_admin("delegation.rejected", {
            "reason": exc.reason, "message": exc.message, "detail": exc.detail,
            "recipient": _agent_id(domain, recipient), "sender": exc.sender,
            "task_id": exc.task_id})
        raise
    seq = domain.record_admin("delegation.received", {
        "message_id": message.message_id, "sender": message.sender,
        "recipient": message.recipient, "task_id": message.task_id,
        "chain": list(message.sender_chain), "depth": message.depth,
        "delegated": message.delegated is not None, "body_digest": body_digest(body)})
    return replace(message, audit_seq=seq)


def _open(domain: TrustDomain, raw: Envelope | Mapping[str, Any], body: Any,
          recipient: str, replay_guard: identity.ReplayGuard) -> InboundMessage:
    envelope = raw if isinstance(raw, Envelope) else Envelope.from_json(raw)
    try:
        target = domain.agent(recipient)
    except WarrantError:
        raise InvalidEnvelope(f"`{recipient}` is not a registered agent",
                              reason="delegation.misaddressed") from None
    now = time.time()
    sender = _sender_credential(domain, envelope.credential, now)
    claims = identity.open_envelope(
        envelope.seal, credential=sender, recipient=target.agent_id,
        warrant_token=envelope.warrant, delegated_token=envelope.delegated,
        body_digest=body_digest(body), now=now, replay_guard=replay_guard,
        traceparent=envelope.traceparent)
    try:
        return _authorised(domain, envelope, body, sender, claims, target.agent_id, now)
    except InvalidEnvelope as exc:
        # The seal verified: the sender itself sent what is refused below.
        exc.sender, exc.task_id = sender.agent_id, claims.task_id
        raise


def _authorised(domain: TrustDomain, envelope: Envelope, body: Any,
                sender: identity.Credential, claims: identity.SealClaims, recipient: str,
                now: float) -> InboundMessage:
    """The sender's warrant (and the one it hands over) are genuine, held and unrevoked."""
    chain = ChainVerifier(domain.store)
    at = dt.datetime.fromtimestamp(now, dt.UTC)
    warrant = _warrant(domain, envelope.warrant, at, chain, "the sender's warrant")
    if warrant.holder != sender.agent_id:
        raise InvalidEnvelope(f"the sender's warrant is held by {warrant.holder}, not by the "
                              f"sender {sender.agent_id}", reason="delegation.stolen-warrant")
    if claims.task_id != warrant.task_id:
        raise InvalidEnvelope("the envelope's task is not the sender's warrant's task",
                              reason="delegation.tampered")
    _not_revoked(domain, warrant, sender.credential_id)
    depth = len(warrant.agents) - 1
    delegated = envelope.delegated
    if delegated is not None:
        handed = _warrant(domain, delegated, at, chain, "the handed-over warrant")
        _check_handover(warrant, handed, recipient)
        depth = len(handed.agents) - 1
    return InboundMessage(
        message_id=claims.message_id, sender=sender.agent_id, recipient=recipient,
        task_id=warrant.task_id, sender_chain=warrant.principal_chain, body=body,
        requester_warrant=envelope.warrant, delegated=delegated, depth=depth, audit_seq=0,
        traceparent=envelope.traceparent)


def _agent_id(domain: TrustDomain, name_or_id: str) -> str:
    try:
        return domain.agent(name_or_id).agent_id
    except WarrantError:
        return name_or_id[:200]


def _sender_credential(domain: TrustDomain, token: str, now: float) -> identity.Credential:
    try:
        credential = identity.verify_credential(token, domain.public_key, domain=domain.domain,
                                                now=now)
    except InvalidCredential as exc:
        raise InvalidEnvelope("the sender's credential was rejected",
                              reason="delegation.bad-credential", detail=exc.detail) from None
    record = domain.store.get_agent(credential.agent_id)
    if record is None or record.status is not AgentStatus.ACTIVE:
        raise InvalidEnvelope("the sender is not an active agent",
                              reason="delegation.bad-credential")
    if identity.raw_public(credential.confirmation_key) != record.public_key:
        raise InvalidEnvelope("the sender's credential is bound to a key it no longer holds",
                              reason="delegation.bad-credential")
    return credential


def _warrant(domain: TrustDomain, token: str, at: dt.datetime, chain: ChainVerifier,
             what: str) -> warrants.Warrant:
    try:
        warrant = warrants.verify_warrant(token, domain.public_key, domain=domain.domain, now=at)
        chain.check(warrant)
    except InvalidWarrant as exc:
        detail = exc.detail or ""
        reason = "delegation.widening" if "widens" in detail else "delegation.bad-warrant"
        raise InvalidEnvelope(f"{what} was rejected: {detail}", reason=reason,
                              detail=detail) from None
    return warrant


def _not_revoked(domain: TrustDomain, warrant: warrants.Warrant, credential_id: str) -> None:
    found = domain.store.revoked(task_id=warrant.task_id, agent_id=warrant.holder,
                                 credential_id=credential_id, agent_ids=warrant.agents)
    if found is not None:
        raise InvalidEnvelope(f"the sender's warrant is revoked: {found}",
                              reason="delegation.revoked")


def _check_handover(sender: warrants.Warrant, handed: warrants.Warrant, recipient: str) -> None:
    """The handed-over warrant extends the sender's exact token and names the recipient."""
    prefix = len(sender.revocation_ids)
    if (handed.revocation_ids[:prefix] != sender.revocation_ids
            or len(handed.revocation_ids) == prefix):
        raise InvalidEnvelope("the handed-over warrant is not derived from the sender's warrant",
                              reason="delegation.widening")
    if handed.holder != recipient:
        raise InvalidEnvelope(f"the handed-over warrant is held by {handed.holder}, not by the "
                              f"recipient {recipient}", reason="delegation.misaddressed")
