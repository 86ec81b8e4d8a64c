"""Memory values: namespaces, provenance, stored items, and the bytes a writer signs.

Everything here is a frozen value valid by construction. The signed payload
binds the content to its namespace, key, version, provenance and expiry, so an
item copied into another namespace (or renumbered) no longer verifies.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from warrant.types import JsonValue, canonical_json, sha256_hex

from ._errors import MemoryGuardError

#: Version of the signed payload; a change of shape is a new version.
PAYLOAD_SCHEMA = "warrant.memory/v1"

_NAMESPACE = re.compile(r"^(agent|user|session):[A-Za-z0-9._@\-]{1,128}$")
_KEY = re.compile(r"^[A-Za-z0-9._:/@\-]{1,200}$")
NAMESPACE_KINDS = ("agent", "session", "user")


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "trust", Trust(self.trust))
        object.__setattr__(self, "labels", tuple(sorted(set(self.labels))))

    def to_json(self) -> dict[str, Any]:
        return {"writer": self.writer, "trust": self.trust.value, "created_at": self.created_at,
                "task_id": self.task_id, "source": self.source, "labels": list(self.labels)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Provenance:
        return cls(writer=str(data["writer"]), trust=Trust(data["trust"]),
                   created_at=float(data["created_at"]), task_id=str(data["task_id"]),
                   source=str(data["source"]), labels=tuple(str(x) for x in data["labels"]))


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


def signing_payload(*, namespace: str, key: str, version: int, content: JsonValue,
                    provenance: Provenance, expires_at: float, deleted: bool,
                    restored_from: int | None, stored_at: float) -> bytes:
    """The canonical bytes a writer signs and whose SHA-256 the audit log keeps.

    `stored_at` (when this version was written) is signed too, because rollback
    picks versions by it: a rewritten time must not steer a rollback.
    """
    return canonical_json({
        "schema": PAYLOAD_SCHEMA, "namespace": namespace, "key": key, "version": version,
        "content": content, "provenance": provenance.to_json(), "expires_at": expires_at,
        "deleted": deleted, "restored_from": restored_from, "stored_at": stored_at,
    })


def payload_digest(payload: bytes) -> str:
    return sha256_hex(payload)
