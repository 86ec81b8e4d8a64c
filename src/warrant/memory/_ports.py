"""What the memory guard needs from the rest of Warrant, as small protocols.

`memory` is a leaf: it may not import the audit log, the policy engine or the
trust domain. A composer (`warrant.enforce.GuardedMemory`) plugs them in:

- `SignerFor`  gives the signer of a principal: an agent's own key, or the domain's
               key for a person (`Ed25519Signer` here; `verify_signature` checks);
- `VouchKey`   says whether a key logged for a principal may sign for it;
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
from ._model import KeyKind, Trust, check_key_kind

#: Records an event in the audit log: `(action, detail) -> seq`.
RecordEvent = Callable[[str, Mapping[str, Any]], int]
#: Finding codes for injected instructions in `text` (empty: nothing found).
Scanner = Callable[[str], Sequence[str]]


@dataclass(frozen=True, slots=True)
class LoggedHash:
    """What the log keeps of one item version: where it lives, its digest, its signer; no content.

    `writer` is who signed this version (the agent that wrote it, or the operator
    who rolled it back) and `public_key` the raw Ed25519 key it signed with, as
    registered at write time: the log, not the item store, says which key must
    verify the item, so a rotated key leaves old items readable and a rewritten
    item store cannot name another key.
    """

    op: str
    namespace: str
    key: str
    version: int
    digest: str
    writer: str
    task_id: str = ""
    key_id: str = ""
    public_key: bytes = b""
    key_kind: KeyKind = "agent"


class HashLog(Protocol):
    def append_hash(self, entry: LoggedHash) -> int:
        """Append durably and return the log sequence number (or raise: nothing is stored)."""
        ...

    def logged_hash(self, seq: int) -> LoggedHash | None:
        """The memory entry at `seq`, or None when there is none (or it is not one)."""
        ...

    def newest_version(self, namespace: str, key: str) -> int | None:
        """The highest version of `key` the log holds an entry for (None: none): a store
        whose newest row is older has lost rows (a rollback behind the guard's back)."""
        ...


class Signer(Protocol):
    """One principal's signing key (an agent's own, or the domain's for a person)."""

    @property
    def principal(self) -> str: ...

    @property
    def kind(self) -> KeyKind: ...

    @property
    def key_id(self) -> str:
        """SHA-256 of the raw public key, hex (the key's thumbprint)."""
        ...

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        ...

    def sign(self, data: bytes) -> bytes: ...


class Authorizer(Protocol):
    def authorize(self, agent: str, action: str, namespace: str, labels: frozenset[str],
                  task_id: str) -> str:
        """`agent`'s canonical id if it may do `action` (memory_read|memory_write).

        Raises `MemoryDenied` otherwise (and on any error: errors deny).
        """
        ...


#: The signer for a principal (`MemoryDenied` when it has no usable key).
SignerFor = Callable[[str], Signer]
#: Return only if `public_key` of kind `kind` may sign for `principal` (else raise
#: `MemoryIntegrityError`): an agent's key must be one registered to that agent, a
#: domain key must be the domain's and sign for a non-agent.
VouchKey = Callable[[str, KeyKind, bytes], None]

#: Prefixed to every signed payload: the domain key also signs credentials, warrants
#: and checkpoints, and agent keys sign proofs; a memory signature must never be
#: valid as one of those.
SIGNING_CONTEXT = b"warrant.memory/v2 item signature\x00"


def key_thumbprint(public_key: bytes) -> str:
    return sha256_hex(public_key)


class Ed25519Signer:
    """Signs for `principal` with an Ed25519 private key (domain-separated)."""

    def __init__(self, private_key: Ed25519PrivateKey, *, principal: str,
                 kind: KeyKind = "agent") -> None:
        self._private = private_key
        self._principal = principal
        self._kind = check_key_kind(kind)
        self._public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._key_id = key_thumbprint(self._public)

    @property
    def principal(self) -> str:
        return self._principal

    @property
    def kind(self) -> KeyKind:
        return self._kind

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        return self._public

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(SIGNING_CONTEXT + data)


_KEYS_MAX = 4096
_public_keys: dict[bytes, Ed25519PublicKey] = {}


def verify_signature(public_key: bytes, signature: bytes, data: bytes) -> None:
    """Return only if `signature` by `public_key` is valid over `data`; else raise.

    Parsed public keys are cached (parsing is a third of a cold verify); the
    verification itself always runs.
    """
    key = _public_keys.get(public_key)
    try:
        if key is None:
            key = Ed25519PublicKey.from_public_bytes(public_key)
            if len(_public_keys) >= _KEYS_MAX:
                _public_keys.clear()
            _public_keys[public_key] = key
        key.verify(signature, SIGNING_CONTEXT + data)
    except (InvalidSignature, ValueError):
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
