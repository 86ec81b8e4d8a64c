"""Proof of possession: each request is signed with the key its credential confirms.

A proof is a small JWT (`typ: warrant-pop+jwt`) signed by the agent's own key
over the call: which tool, a digest of its arguments, a digest of the
credential (`ath`) and of the warrant (`wth`), a timestamp and a nonce. A stolen
credential is useless without the key; a captured proof is useless for any
other call, after the skew window, or a second time (nonce replay check).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from warrant.errors import InvalidCredential

from ._credential import Credential, token_digest

PROOF_TYPE = "warrant-pop+jwt"
#: How old (or how far in the future) a proof may be.
PROOF_WINDOW_SECONDS = 60


class ReplayGuard(Protocol):
    """Remembers nonces until they expire. `first_use` is atomic."""

    def first_use(self, nonce: str, expires_at: float) -> bool:
        """Record `nonce`; return False when it was already seen."""
        ...


class MemoryReplayGuard:
    """In-process nonce memory, bounded by expiry pruning (for one long-lived process)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def first_use(self, nonce: str, expires_at: float) -> bool:
        with self._lock:
            now = time.time()
            if now >= self._next_prune:
                self._seen = {n: e for n, e in self._seen.items() if e > now}
                self._next_prune = now + PROOF_WINDOW_SECONDS
            if nonce in self._seen:
                return False
            self._seen[nonce] = expires_at
            return True


@dataclass(frozen=True, slots=True)
class ProofClaims:
    nonce: str
    issued_at: float


def make_proof(
    agent_key: Ed25519PrivateKey,
    *,
    credential_token: str,
    tool: str,
    argument_digest: str,
    warrant_token: str | None,
    now: float,
    nonce: str | None = None,
) -> str:
    """What an agent (or its SDK) sends with each call."""
    claims = {
        "jti": nonce or secrets.token_urlsafe(16),
        "iat": int(now),
        "ath": token_digest(credential_token),
        "tool": tool,
        "args": argument_digest,
        "wth": token_digest(warrant_token) if warrant_token else "",
    }
    return jwt.encode(claims, agent_key, algorithm="EdDSA", headers={"typ": PROOF_TYPE})


def verify_proof(
    proof: str,
    *,
    credential: Credential,
    tool: str,
    argument_digest: str,
    warrant_token: str | None,
    now: float,
    replay_guard: ReplayGuard,
) -> ProofClaims:
    """Check the proof was made by the credential's key for exactly this call, once."""
    if not isinstance(proof, str) or not proof or len(proof) > 4096:
        raise InvalidCredential("proof of possession missing or oversized")
    try:
        decoded = jwt.decode_complete(  # one parse for header and claims
            proof,
            credential.confirmation_key,
            algorithms=["EdDSA"],
            options={"require": ["jti", "iat"], "verify_iat": False, "verify_exp": False},
        )
    except jwt.InvalidTokenError as exc:
        raise InvalidCredential(f"proof signature invalid: {exc}") from exc
    if decoded["header"].get("typ") != PROOF_TYPE:
        raise InvalidCredential("proof has the wrong token type")
    claims: dict[str, Any] = decoded["payload"]
    iat = claims.get("iat")
    if not isinstance(iat, int) or abs(now - iat) > PROOF_WINDOW_SECONDS:
        raise InvalidCredential("proof timestamp outside the allowed clock skew")
    expected = {
        "ath": credential.token_digest,
        "tool": tool,
        "args": argument_digest,
        "wth": token_digest(warrant_token) if warrant_token else "",
    }
    for claim, value in expected.items():
        if claims.get(claim) != value:
            raise InvalidCredential(f"proof does not cover this call (`{claim}` differs)")
    nonce = claims.get("jti")
    if not isinstance(nonce, str) or not 8 <= len(nonce) <= 128:
        raise InvalidCredential("proof nonce malformed")
    if not replay_guard.first_use(
        f"{credential.credential_id}:{nonce}", float(iat + PROOF_WINDOW_SECONDS)
    ):
        raise InvalidCredential("proof replayed")
    return ProofClaims(nonce=nonce, issued_at=float(iat))
