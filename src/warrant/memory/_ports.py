"""What the memory guard needs from the rest of Warrant, as small protocols.

`memory` is a leaf: it may not import the audit log, the policy engine or the
trust domain. A composer (`warrant.enforce.GuardedMemory`) plugs them in:

- `Signer`     signs payloads and verifies signatures (`Ed25519Signer` here);
- `HashLog`    appends item digests to the tamper-evident log and reads them back;
- `Authorizer` asks policy whether an agent may read or write a namespace;
- `Scanner`    finds injected instructions in untrusted text;
- `RecordEvent` records an event (integrity failure, refusal, admin action).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from warrant.types import sha256_hex

from ._errors import MemoryIntegrityError
from ._model import Trust

#: Records an event in the audit log: `(action, detail) -> seq`.
RecordEvent = Callable[[str, Mapping[str, Any]], int]
#: Finding codes for injected instructions in `text` (empty: nothing found).
Scanner = Callable[[str], Sequence[str]]


@dataclass(frozen=True, slots=True)
class LoggedHash:
    """What the log keeps of one item version: where it lives and its digest, no content."""

    op: str
    namespace: str
    key: str
    version: int
    digest: str
    writer: str
    task_id: str = ""


class HashLog(Protocol):
    def append_hash(self, entry: LoggedHash) -> int:
        """Append durably and return the log sequence number (or raise: nothing is stored)."""
        ...

    def logged_hash(self, seq: int) -> LoggedHash | None:
        """The memory entry at `seq`, or None when there is none (or it is not one)."""
        ...


class Signer(Protocol):
    @property
    def key_id(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...

    def verify(self, signature: bytes, data: bytes) -> None:
        """Return only if `signature` is valid over `data`; else raise `MemoryIntegrityError`."""
        ...


class Authorizer(Protocol):
    def authorize(self, agent: str, action: str, namespace: str, labels: frozenset[str],
                  task_id: str) -> str:
        """`agent`'s canonical id if it may do `action` (memory_read|memory_write).

        Raises `MemoryDenied` otherwise (and on any error: errors deny).
        """
        ...


#: Prefixed to every signed payload: the domain key also signs credentials, warrants
#: and checkpoints, and a memory signature must never be valid as one of those.
SIGNING_CONTEXT = b"warrant.memory/v1 item signature\x00"


class Ed25519Signer:
    """Signs with an Ed25519 private key; verifies with its public key (domain-separated)."""

    def __init__(self, private_key: Ed25519PrivateKey,
                 public_key: Ed25519PublicKey | None = None) -> None:
        self._private = private_key
        self._public = public_key or private_key.public_key()
        raw = self._public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._key_id = sha256_hex(raw)[:16]

    @property
    def key_id(self) -> str:
        return self._key_id

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(SIGNING_CONTEXT + data)

    def verify(self, signature: bytes, data: bytes) -> None:
        try:
            self._public.verify(signature, SIGNING_CONTEXT + data)
        except InvalidSignature:
            raise MemoryIntegrityError("memory item signature does not verify") from None


@dataclass(frozen=True, slots=True)
class TtlPolicy:
    """Longest lifetime per trust level; untrusted content expires much sooner."""

    trusted_seconds: float = 30 * 86400
    untrusted_seconds: float = 86400

    def __post_init__(self) -> None:
        if not 0 < self.untrusted_seconds <= self.trusted_seconds:
            raise ValueError("TTLs must be positive, untrusted no longer than trusted")

    def ttl(self, trust: Trust, requested: float | None) -> float:
        """The requested TTL, capped by the trust level's maximum (never longer)."""
        cap = self.trusted_seconds if trust is Trust.TRUSTED else self.untrusted_seconds
        if requested is None:
            return cap
        if requested <= 0:
            raise ValueError("a TTL must be positive")
        return min(requested, cap)
