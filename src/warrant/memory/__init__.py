"""Memory guard: agent memory that is signed on write and verified on every read.

Every item carries provenance (writer, task, trust, source tool, time) and is
signed over its namespace, key and version, so it cannot be replayed elsewhere;
its digest goes to the tamper-evident audit log, apart from the data. A read
that fails verification quarantines the item and records an event. Untrusted
content is scanned for injected instructions, stored only as data and expires
sooner; secrets are refused; every change is a version that can be rolled back.

This package is a leaf: the audit log, policy and signing key are plugged in
through the protocols in `_ports` (see `warrant.enforce.GuardedMemory`).
"""

from ._errors import (
    MemoryDenied,
    MemoryGuardError,
    MemoryIntegrityError,
    MemoryNotFound,
    MemoryQuarantined,
    MemoryRefused,
)
from ._guard import MAX_CONTENT_BYTES, MemoryGuard
from ._model import (
    NAMESPACE_KINDS,
    MemoryItem,
    Provenance,
    Trust,
    VersionInfo,
    check_key,
    check_namespace,
)
from ._ports import (
    Authorizer,
    Ed25519Signer,
    HashLog,
    LoggedHash,
    RecordEvent,
    Scanner,
    Signer,
    TtlPolicy,
)
from ._secrets import SecretHit, find_secrets
from ._store import SqliteMemoryStore

__all__ = [
    "MAX_CONTENT_BYTES",
    "NAMESPACE_KINDS",
    "Authorizer",
    "Ed25519Signer",
    "HashLog",
    "LoggedHash",
    "MemoryDenied",
    "MemoryGuard",
    "MemoryGuardError",
    "MemoryIntegrityError",
    "MemoryItem",
    "MemoryNotFound",
    "MemoryQuarantined",
    "MemoryRefused",
    "Provenance",
    "RecordEvent",
    "Scanner",
    "SecretHit",
    "Signer",
    "SqliteMemoryStore",
    "Trust",
    "TtlPolicy",
    "VersionInfo",
    "check_key",
    "check_namespace",
    "find_secrets",
]
