"""Agent identities: naming rules and registration records."""

from __future__ import annotations

import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from warrant.errors import IdentityError
from warrant.types import AgentRecord, SpiffeId

from ._keys import generate_key, raw_public

_NAME = re.compile(r"^[a-z0-9][a-z0-9._\-]{0,62}$")
_DIGEST = re.compile(r"^(sha256|sha384|sha512):[0-9a-f]{64,128}$")
RISK_TIERS = ("low", "standard", "high")


def is_person(principal: str) -> bool:
    """`principal` names a person as `user:NAME` (no whitespace): who may approve, lift
    or decide what an agent may not (agents are `spiffe://` IDs)."""
    return (principal.startswith("user:") and len(principal) > len("user:")
            and not any(c.isspace() for c in principal))


def agent_id_for(domain: str, name: str) -> str:
    if not _NAME.match(name):
        raise IdentityError(
            f"invalid agent name `{name}`: use 1-63 lowercase letters, digits, `.`, `_` or `-`"
        )
    return str(SpiffeId.agent(domain, name))


def new_agent(
    *,
    domain: str,
    name: str,
    owner: str,
    purpose: str,
    now: float,
    public_key: Ed25519PublicKey | None = None,
    attestation: str | None = None,
    risk_tier: str = "standard",
) -> tuple[AgentRecord, Ed25519PrivateKey | None]:
    """Build the record for a new agent; generate its key pair unless it brought one.

    Returns the private key only when Warrant generated it, so the caller can
    hand it to the agent (and must not keep it).
    """
    agent_id = agent_id_for(domain, name)
    if not owner.strip():
        raise IdentityError("an agent needs an owner (a person or team accountable for it)")
    if not purpose.strip():
        raise IdentityError("an agent needs a purpose (what it is for, in a sentence)")
    if attestation is not None and not _DIGEST.match(attestation):
        raise IdentityError(
            f"attestation `{attestation}` is not a digest like `sha256:<64 hex>`"
        )
    if risk_tier not in RISK_TIERS:
        raise IdentityError(f"risk tier `{risk_tier}` is not one of {', '.join(RISK_TIERS)}")
    private: Ed25519PrivateKey | None = None
    if public_key is None:
        private = generate_key()
        public_key = private.public_key()
    record = AgentRecord(
        agent_id=agent_id,
        name=name,
        owner=owner.strip(),
        purpose=purpose.strip(),
        public_key=raw_public(public_key),
        created_at=now,
        attestation=attestation,
        risk_tier=risk_tier,
        key_generated_by_domain=private is not None,
    )
    return record, private
