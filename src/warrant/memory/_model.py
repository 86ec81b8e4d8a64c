"""Memory values: namespaces, provenance, stored items, and the bytes a writer signs.

Everything here is a frozen value valid by construction. The signed payload
binds the content (by its SHA-256) to its namespace, key, version, provenance,
expiry and the key that signed it, so an item copied into another namespace,
renumbered, or claimed for another writer no longer verifies.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from warrant.types import JsonValue, canonical_json, sha256_hex

from ._errors import MemoryGuardError

#: Version of the signed payload; a change of shape is a new version. v2 (per-writer
#: keys): the signer and its key are signed, the content is signed by its digest.
#: v1 rows (signed with the domain key, no key in the provenance) no longer verify.
PAYLOAD_SCHEMA = "warrant.memory/v2"

_NAMESPACE = re.compile(r"^(agent|user|session):[A-Za-z0-9._@\-]{1,128}$")
_KEY = re.compile(r"^[A-Za-z0-9._:/@\-]{1,200}$")
NAMESPACE_KINDS = ("agent", "session", "user")


#: Whose key signed a version: the writing agent's own, or the domain's. Operators
#: (`user:NAME`: the CLI's rollback) have no key pair of their own, so the domain signs.
KeyKind = Literal["agent", "domain"]
KEY_KINDS: tuple[KeyKind, ...] = ("agent", "domain")


def check_key_kind(kind: str) -> KeyKind:
    for known in KEY_KINDS:
        if kind == known:
            return known
    raise ValueError(f"`{kind[:40]}` is not a key kind")


class Trust(str, enum.Enum):
    """Where content came from: the writer itself, or something it read (a tool result)."""

    TRUSTED = "trusted"
    UNTRUSTED = "untrusted"


def check_namespace(namespace: str) -> str:
    """`agent:NAME`, `user:NAME` or `session:ID`; raises `MemoryGuardError` otherwise."""
    if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
        raise MemoryGuardError(
            f"`{str(namespace)[:80]}` is not a memory namespace",
            hint="use `agent:NAME`, `user:NAME` or `session:ID` (letters, digits, `._@-`)")
    return namespace


def check_key(key: str) -> str:
    """An item key: 1-200 of letters, digits and `._:/@-`."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise MemoryGuardError(f"`{str(key)[:80]}` is not a memory key",
                               hint="use 1-200 letters, digits and `._:/@-`")
    return key


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who wrote an item, for which task, from which source, how trusted, and when."""

    writer: str
    trust: Trust
    created_at: float
    task_id: str = ""
    #: The tool the content came from ("" when the writer produced it itself).
    source: str = ""
    labels: tuple[str, ...] = ()
    #: Thumbprint (SHA-256 of the raw public key) of the key the writer signed with,
    #: and whose key it was: a later rotation leaves the item verifiable against the
    #: key registered when it was written.
    key_id: str = ""
    key_kind: KeyKind = "agent"

    def __post_init__(self) -> None:
        object.__setattr__(self, "trust", Trust(self.trust))
        object.__setattr__(self, "key_kind", check_key_kind(self.key_kind))
        object.__setattr__(self, "labels", tuple(sorted(set(self.labels))))

    def to_json(self) -> dict[str, Any]:
        return {"writer": self.writer, "trust": self.trust.value, "created_at": self.created_at,
                "task_id": self.task_id, "source": self.source, "labels": list(self.labels),
                "key_id": self.key_id, "key_kind": self.key_kind}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Provenance:
        return cls(writer=str(data["writer"]), trust=Trust(data["trust"]),
                   created_at=float(data["created_at"]), task_id=str(data["task_id"]),
                   source=str(data["source"]), labels=tuple(str(x) for x in data["labels"]),
                   key_id=str(data["key_id"]), key_kind=check_key_kind(str(data["key_kind"])))


@dataclass(frozen=True, slots=True)
class MemoryItem:
    """One verified version of an item, as a read returns it.

    `is_data` items came from untrusted content: callers must treat them as
    data to look at, never as instructions to follow.
    """

    namespace: str
    key: str
    version: int
    content: JsonValue
    provenance: Provenance
    expires_at: float
    digest: str
    audit_seq: int
    stored_at: float
    deleted: bool = False
    #: The version this one restored, when it was written by a rollback.
    restored_from: int | None = None

    @property
    def is_data(self) -> bool:
        return self.provenance.trust is Trust.UNTRUSTED

    def to_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "key": self.key, "version": self.version,
                "content": self.content, "provenance": self.provenance.to_json(),
                "expires_at": self.expires_at, "digest": self.digest,
                "audit_seq": self.audit_seq, "stored_at": self.stored_at,
                "deleted": self.deleted, "restored_from": self.restored_from,
                "is_data": self.is_data}


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One version in an item's history: metadata only (content may be purged)."""

    version: int
    status: str
    digest: str
    provenance: Provenance
    expires_at: float
    deleted: bool
    restored_from: int | None
    audit_seq: int
    stored_at: float

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "status": self.status, "digest": self.digest,
                "provenance": self.provenance.to_json(), "expires_at": self.expires_at,
                "deleted": self.deleted, "restored_from": self.restored_from,
                "audit_seq": self.audit_seq, "stored_at": self.stored_at}


def signing_payload(*, namespace: str, key: str, version: int, content_text: str,
                    provenance: Provenance, expires_at: float, deleted: bool,
                    restored_from: int | None, stored_at: float, signed_by: str,
                    key_id: str, provenance_sha256: str | None = None) -> bytes:
    """The canonical bytes a writer signs and whose SHA-256 the audit log keeps.

    A flat record binding the content and the provenance by their SHA-256:
    `content_text` is the content's canonical JSON exactly as stored (a read
    hashes the stored text rather than re-encoding it), the provenance is bound
    through its canonical JSON. `signed_by` and `key_id` name who signed this
    version (the writer, or the operator who rolled it back) and with which key.
    `stored_at` is signed too, because rollback picks versions by it: a
    rewritten time must not steer one. `provenance_sha256`, when given, must be
    `provenance_digest(provenance)` (a writer that already has the bytes).
    """
    return canonical_json({
        "schema": PAYLOAD_SCHEMA, "namespace": namespace, "key": key, "version": version,
        "content_sha256": sha256_hex(content_text.encode("utf-8")),
        "provenance_sha256": provenance_sha256 or provenance_digest(provenance),
        "expires_at": expires_at,
        "deleted": deleted, "restored_from": restored_from, "stored_at": stored_at,
        "signed_by": signed_by, "key_id": key_id,
    })


@functools.lru_cache(maxsize=4096)
def provenance_digest(provenance: Provenance) -> str:
    """SHA-256 of the provenance's canonical JSON (memoised: the value is frozen)."""
    return sha256_hex(canonical_json(provenance.to_json()))


def payload_digest(payload: bytes) -> str:
    return sha256_hex(payload)
