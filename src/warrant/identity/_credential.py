"""Short-lived agent credentials: JWT-SVID-style tokens signed with EdDSA.

A credential names the agent (`sub`, a SPIFFE ID), the domain (`iss`, `aud`),
a lifetime of minutes, and the agent's own public key (`cnf.jwk`, RFC 7800).
Holding the token is not enough: each request also carries a proof signed with
the confirmed key (see `_proof`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from warrant.errors import IdentityError, InvalidCredential, WarrantSpecError
from warrant.types import AgentRecord, AgentStatus, SpiffeId

from ._keys import _b64url, public_from_jwk, public_from_raw, public_jwk

DEFAULT_TTL_SECONDS = 10 * 60
MAX_TTL_SECONDS = 60 * 60
#: Tolerated difference between the issuer's clock and ours.
CLOCK_SKEW_SECONDS = 30
AUDIENCE = "warrant"
TOKEN_TYPE = "JWT"  # noqa: S105 - the JOSE `typ` header value, not a secret


def domain_issuer(domain: str) -> str:
    return f"spiffe://{domain}"


def token_digest(token: str) -> str:
    """The value proofs bind to (`ath`): base64url SHA-256 of the token text."""
    return _b64url(hashlib.sha256(token.encode("ascii", "replace")).digest())


@dataclass(frozen=True, slots=True)
class Credential:
    """A verified credential: who it names, until when, and the key it is bound to."""

    agent_id: str
    credential_id: str
    issued_at: float
    expires_at: float
    confirmation_key: Ed25519PublicKey
    attestation: str | None
    token_digest: str

    def to_json(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "credential_id": self.credential_id,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "attestation": self.attestation,
        }


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    token: str
    credential: Credential


def issue_credential(
    signing_key: Ed25519PrivateKey,
    *,
    domain: str,
    agent: AgentRecord,
    now: float,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    attestation: str | None = None,
    key_id: str | None = None,
) -> IssuedCredential:
    """Sign a credential for an active agent.

    The attestation presented now must equal the one bound at registration;
    retired agents get nothing.
    """
    if agent.status is AgentStatus.SUSPENDED:
        raise IdentityError(f"agent `{agent.agent_id}` is suspended and gets no credentials",
                            hint="a person lifts it with `warrant agent resume NAME --by "
                                 "user:NAME` once the incident is understood")
    if agent.status is not AgentStatus.ACTIVE:
        raise IdentityError(f"agent `{agent.agent_id}` is retired and gets no credentials")
    if not 0 < ttl_seconds <= MAX_TTL_SECONDS:
        raise WarrantSpecError(
            f"credential lifetime must be between 1 second and {MAX_TTL_SECONDS // 60} minutes, "
            f"got {ttl_seconds} seconds"
        )
    if agent.attestation is not None and attestation != agent.attestation:
        raise IdentityError(
            f"attestation for `{agent.agent_id}` does not match the one bound at registration",
            hint="issue the credential with --attestation set to the registered digest",
        )
    jti = secrets.token_urlsafe(16)
    claims: dict[str, Any] = {
        "iss": domain_issuer(domain),
        "sub": agent.agent_id,
        "aud": AUDIENCE,
        "iat": int(now),
        "nbf": int(now),
        "exp": int(now) + ttl_seconds,
        "jti": jti,
        "cnf": {"jwk": public_jwk(public_from_raw(agent.public_key))},
    }
    if agent.attestation is not None:
        claims["att"] = agent.attestation
    headers = {"typ": TOKEN_TYPE, "kid": key_id} if key_id else {"typ": TOKEN_TYPE}
    token = jwt.encode(claims, signing_key, algorithm="EdDSA", headers=headers)
    credential = Credential(
        agent_id=agent.agent_id,
        credential_id=jti,
        issued_at=float(claims["iat"]),
        expires_at=float(claims["exp"]),
        confirmation_key=public_from_raw(agent.public_key),
        attestation=agent.attestation,
        token_digest=token_digest(token),
    )
    return IssuedCredential(token=token, credential=credential)


def verify_credential(
    token: str, public_key: Ed25519PublicKey, *, domain: str, now: float
) -> Credential:
    """Check signature, issuer, audience, lifetime and shape; raise `InvalidCredential`.

    INVARIANT: only EdDSA is accepted (no `none`, no algorithm confusion), and
    a token living longer than the cap is refused even if correctly signed.
    """
    if not isinstance(token, str) or not token or len(token) > 8192:
        raise InvalidCredential("credential is empty, not text, or oversized")
    try:
        # One parse for header and claims (PyJWT validates base64 per character,
        # so parsing twice doubles the cost).
        decoded = jwt.decode_complete(
            token,
            public_key,
            algorithms=["EdDSA"],
            audience=AUDIENCE,
            issuer=domain_issuer(domain),
            # Times are checked below against the caller's `now`: one clock for
            # every check, so tests and replays of history behave like production.
            options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"],
                     "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidIssuerError as exc:
        raise InvalidCredential("credential from another trust domain") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidCredential(f"credential invalid: {exc}") from exc
    typ = decoded["header"].get("typ")
    if typ != TOKEN_TYPE:
        raise InvalidCredential(f"unexpected token type {typ!r}")
    claims: dict[str, Any] = decoded["payload"]
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int):
        raise InvalidCredential("credential times are not integers")
    if exp - iat > MAX_TTL_SECONDS:
        raise InvalidCredential("credential lifetime exceeds the domain cap")
    if now > exp + CLOCK_SKEW_SECONDS:
        raise InvalidCredential("credential expired")
    if now < iat - CLOCK_SKEW_SECONDS:
        raise InvalidCredential("credential issued in the future (clock skew too large)")
    subject = claims.get("sub")
    try:
        agent_id = SpiffeId.parse(str(subject))
    except ValueError as exc:
        raise InvalidCredential("credential subject is not a SPIFFE ID") from exc
    if agent_id.domain != domain:
        raise InvalidCredential("credential subject belongs to another trust domain")
    cnf = claims.get("cnf")
    try:
        key = public_from_jwk(cnf.get("jwk") if isinstance(cnf, dict) else None)
    except IdentityError as exc:
        raise InvalidCredential(f"credential confirmation key invalid: {exc.message}") from exc
    attestation = claims.get("att")
    return Credential(
        agent_id=str(agent_id),
        credential_id=str(claims["jti"]),
        issued_at=float(iat),
        expires_at=float(exp),
        confirmation_key=key,
        attestation=attestation if isinstance(attestation, str) else None,
        token_digest=token_digest(token),
    )
