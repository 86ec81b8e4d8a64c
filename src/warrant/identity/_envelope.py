"""Signed envelopes for messages between agents.

An envelope's seal is a small JWT (`typ: warrant-envelope+jwt`) signed by the
sending agent's own key (the key its credential confirms) over who sends, to
whom, for which task, under which warrant, which warrant it hands over (if
any), a digest of the body, a nonce and a lifetime. The body travels beside
the seal and is checked against the digest, so the seal stays small and the
body can be any JSON value the transport carries.

A seal is useless for another recipient, another body, another warrant, after
its expiry, or a second time (nonce replay check).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from warrant.errors import InvalidEnvelope

from ._credential import CLOCK_SKEW_SECONDS, Credential, token_digest
from ._proof import ReplayGuard

ENVELOPE_TYPE = "warrant-envelope+jwt"
#: Longest lifetime a seal may claim: messages are acted on promptly or not at all.
MAX_ENVELOPE_TTL_SECONDS = 60 * 60
MAX_SEAL_CHARS = 8192


@dataclass(frozen=True, slots=True)
class SealClaims:
    """What a verified seal says."""

    message_id: str
    sender: str
    recipient: str
    task_id: str
    issued_at: float
    expires_at: float


def seal_envelope(
    agent_key: Ed25519PrivateKey,
    *,
    sender: str,
    credential_token: str,
    recipient: str,
    task_id: str,
    warrant_token: str,
    delegated_token: str | None,
    body_digest: str,
    now: float,
    ttl_seconds: int,
    message_id: str | None = None,
    traceparent: str | None = None,
) -> str:
    """Sign a message header with the sending agent's key.

    `traceparent` (the sender's W3C trace context) is sealed too, so the
    recipient's decisions join the sender's trace and nobody in between can
    move them to another.
    """
    if not 1 <= ttl_seconds <= MAX_ENVELOPE_TTL_SECONDS:
        raise InvalidEnvelope(f"envelope lifetime `{ttl_seconds}` s is outside 1..."
                              f"{MAX_ENVELOPE_TTL_SECONDS} s", reason="delegation.invalid")
    claims = {
        "jti": message_id or secrets.token_urlsafe(16),
        "iss": sender,
        "aud": recipient,
        "task": task_id,
        "iat": int(now),
        "exp": int(now) + ttl_seconds,
        "ath": token_digest(credential_token),
        "wth": token_digest(warrant_token),
        "dth": token_digest(delegated_token) if delegated_token else "",
        "body": body_digest,
        "tp": traceparent or "",
    }
    return jwt.encode(claims, agent_key, algorithm="EdDSA", headers={"typ": ENVELOPE_TYPE})


def open_envelope(
    seal: str,
    *,
    credential: Credential,
    recipient: str,
    warrant_token: str,
    delegated_token: str | None,
    body_digest: str,
    now: float,
    replay_guard: ReplayGuard,
    traceparent: str | None = None,
) -> SealClaims:
    """Check the seal was made by the credential's key for exactly this message, once.

    Raises `InvalidEnvelope` with `reason` `delegation.bad-seal`,
    `delegation.misaddressed`, `delegation.tampered`, `delegation.expired` or
    `delegation.replay`.
    """
    if not isinstance(seal, str) or not seal or len(seal) > MAX_SEAL_CHARS:
        raise InvalidEnvelope("the envelope's seal is missing or oversized",
                              reason="delegation.bad-seal")
    try:
        decoded = jwt.decode_complete(
            seal, credential.confirmation_key, algorithms=["EdDSA"],
            options={"require": ["jti", "iat", "exp", "iss", "aud"], "verify_exp": False,
                     "verify_iat": False, "verify_aud": False})
    except jwt.InvalidTokenError as exc:
        raise InvalidEnvelope("the envelope's seal is not signed by the sender's key",
                              reason="delegation.bad-seal", detail=str(exc)) from None
    if decoded["header"].get("typ") != ENVELOPE_TYPE:
        raise InvalidEnvelope("the envelope's seal has the wrong token type",
                              reason="delegation.bad-seal")
    claims: dict[str, Any] = decoded["payload"]
    if claims.get("iss") != credential.agent_id or claims.get("ath") != credential.token_digest:
        raise InvalidEnvelope("the envelope was sealed by another agent than its credential "
                              "names", reason="delegation.bad-seal")
    if claims.get("aud") != recipient:
        raise InvalidEnvelope(f"the envelope is addressed to `{claims.get('aud')}`, "
                              f"not to `{recipient}`", reason="delegation.misaddressed")
    expected = {
        "wth": token_digest(warrant_token),
        "dth": token_digest(delegated_token) if delegated_token else "",
        "body": body_digest,
        "tp": traceparent or "",
    }
    for claim, value in expected.items():
        if claims.get(claim, "") != value:
            what = {"wth": "sender's warrant", "dth": "handed-over warrant",
                    "body": "message body", "tp": "trace context"}[claim]
            raise InvalidEnvelope(f"the {what} does not match the envelope's seal",
                                  reason="delegation.tampered")
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int) or not iat < exp:
        raise InvalidEnvelope("the envelope's lifetime is malformed", reason="delegation.bad-seal")
    if exp - iat > MAX_ENVELOPE_TTL_SECONDS or iat > now + CLOCK_SKEW_SECONDS:
        raise InvalidEnvelope("the envelope's lifetime is too long or starts in the future",
                              reason="delegation.bad-seal")
    if now > exp + CLOCK_SKEW_SECONDS:
        raise InvalidEnvelope("the envelope expired", reason="delegation.expired")
    nonce, task = claims.get("jti"), claims.get("task")
    if not isinstance(nonce, str) or not 8 <= len(nonce) <= 128 or not isinstance(task, str):
        raise InvalidEnvelope("the envelope's id or task is malformed",
                              reason="delegation.bad-seal")
    if not replay_guard.first_use(f"envelope:{credential.agent_id}:{nonce}",
                                  float(exp + CLOCK_SKEW_SECONDS)):
        raise InvalidEnvelope("the envelope was already received once (replay)",
                              reason="delegation.replay")
    return SealClaims(message_id=nonce, sender=credential.agent_id, recipient=recipient,
                      task_id=task, issued_at=float(iat), expires_at=float(exp))
