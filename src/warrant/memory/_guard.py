"""`MemoryGuard`: signed writes, verified reads, TTLs, versions, quarantine and purge.

Write path: policy (memory_write) → content checks (JSON, size, secrets; for
untrusted content an injection scan) → sign the canonical payload → append its
digest to the audit log → store the row. Read path: policy (memory_read) →
load the row → recompute the payload digest → verify the signature → compare
with the digest the log holds for that version. Any mismatch quarantines the
row (forensic copy), records `memory.integrity-failure` and raises.

INVARIANT: no read returns an item whose signature and logged digest were not
both checked in that read.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from warrant.types import JsonValue, canonical_json

from ._errors import (
    MemoryGuardError,
    MemoryIntegrityError,
    MemoryNotFound,
    MemoryQuarantined,
    MemoryRefused,
)
from ._model import (
    MemoryItem,
    Provenance,
    Trust,
    VersionInfo,
    check_key,
    check_namespace,
    payload_digest,
    signing_payload,
)
from ._ports import Authorizer, HashLog, LoggedHash, RecordEvent, Scanner, Signer, TtlPolicy
from ._secrets import find_secrets
from ._store import OK, PURGED, QUARANTINED, SqliteMemoryStore, StoredRow

#: Largest item accepted, as canonical JSON bytes.
MAX_CONTENT_BYTES = 1 << 20
_MEMO_MAX = 65_536
READ, WRITE = "memory_read", "memory_write"
_NO_LABELS: frozenset[str] = frozenset()


class MemoryGuard:
    """Agent memory over a `SqliteMemoryStore`, with the ports a composer provides."""

    def __init__(self, store: SqliteMemoryStore, *, signer: Signer, log: HashLog,
                 authorizer: Authorizer, scanner: Scanner, record_event: RecordEvent,
                 ttl: TtlPolicy | None = None, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._signer = signer
        self._log = log
        self._authz = authorizer
        self._scan = scanner
        self._event = record_event
        self.ttl = ttl or TtlPolicy()
        self._clock = clock
        # (key id, signature, payload digest) triples whose signature verified. Ed25519
        # verification is deterministic, so a triple seen valid stays valid; any change
        # to the row changes the recomputed digest and misses the memo.
        self._verified: set[tuple[str, bytes, str]] = set()

    # -- the agent API (each call is decided by policy) ---------------------------------

    def put(self, agent: str, namespace: str, key: str, content: JsonValue, *,
            task_id: str = "", trust: Trust | str = Trust.TRUSTED, source: str = "",
            labels: Iterable[str] = (), ttl_seconds: float | None = None) -> MemoryItem:
        """Store a new version of `key`; refuses secrets and (untrusted) injected text.

        Untrusted content (anything read from a tool result) is stored as data
        with the short untrusted TTL; policy sees the labels `untrusted` and `data`.
        """
        check_namespace(namespace)
        check_key(key)
        trust = Trust(trust)
        extra = frozenset(str(x) for x in labels)
        policy_labels = extra | {trust.value} | ({"data"} if trust is Trust.UNTRUSTED else set())
        writer = self._authz.authorize(agent, WRITE, namespace, policy_labels, task_id)
        _encoded(content)
        where = {"namespace": namespace, "key": key, "writer": writer, "task_id": task_id}
        if hits := find_secrets(content):
            self._event("memory.secret-refused", {**where, "findings": [
                {"kind": h.kind, "path": h.path} for h in hits]})
            first = hits[0]
            raise MemoryRefused(f"secrets never enter memory: a {first.kind} at `{first.path}`",
                                hint="store a reference to a secret manager entry instead")
        if trust is Trust.UNTRUSTED and (codes := sorted(set(self._scan(_text_of(content))))):
            self._event("memory.injection-refused", {**where, "source": source,
                                                     "findings": codes})
            raise MemoryRefused("untrusted content holds instructions to an agent "
                                f"({', '.join(codes)}); it was not stored")
        now = self._clock()
        provenance = Provenance(writer=writer, trust=trust, created_at=now, task_id=task_id,
                                source=source, labels=tuple(extra))
        expires_at = now + self.ttl.ttl(trust, ttl_seconds)
        return self._write("write", writer, namespace, key, content, provenance, expires_at)

    def get(self, agent: str, namespace: str, key: str) -> MemoryItem:
        """The newest version of `key`, verified; `MemoryNotFound` if none is live."""
        self._authz.authorize(agent, READ, check_namespace(namespace), _NO_LABELS, "")
        row = self.store.latest(namespace, check_key(key))
        if row is None or row.status == PURGED:
            raise MemoryNotFound(f"no memory item `{key}` in `{namespace}`")
        if row.status == QUARANTINED:
            raise MemoryQuarantined(f"memory item `{key}` in `{namespace}` is quarantined")
        item = self._verify(row)
        if item.deleted or item.expires_at <= self._clock():
            raise MemoryNotFound(f"no memory item `{key}` in `{namespace}`")
        return item

    def search(self, agent: str, namespace: str, query: str, *,
               limit: int = 20) -> list[MemoryItem]:
        """Live items whose content contains `query` (case-insensitive), each verified."""
        self._authz.authorize(agent, READ, check_namespace(namespace), _NO_LABELS, "")
        needle = query.casefold()
        rows = [r for r in self.store.latest_all(namespace)
                if r.content is not None and needle in r.content.casefold()]
        return self._live(rows)[:limit]

    def list(self, agent: str, namespace: str) -> builtins.list[MemoryItem]:
        """Every live item of `namespace` (newest versions), each verified."""
        self._authz.authorize(agent, READ, check_namespace(namespace), _NO_LABELS, "")
        return self._live(self.store.latest_all(namespace))

    def delete(self, agent: str, namespace: str, key: str, *, task_id: str = "") -> MemoryItem:
        """Write a signed tombstone version; earlier versions stay for rollback."""
        check_key(key)
        writer = self._authz.authorize(agent, WRITE, check_namespace(namespace),
                                       frozenset({Trust.TRUSTED.value}), task_id)
        now = self._clock()
        provenance = Provenance(writer=writer, trust=Trust.TRUSTED, created_at=now,
                                task_id=task_id)
        return self._write("delete", writer, namespace, key, None, provenance,
                           now + self.ttl.trusted_seconds, deleted=True)

    # -- operator actions (audited as events; the CLI calls these) -----------------------

    def history(self, namespace: str, key: str) -> builtins.list[VersionInfo]:
        """Every version of `key`, oldest first, with status; content is not included."""
        return [VersionInfo(r.version, r.status, r.digest,
                            Provenance.from_json(json.loads(r.provenance)), r.expires_at,
                            r.deleted, r.restored_from, r.audit_seq, r.stored_at)
                for r in self.store.versions(check_namespace(namespace), check_key(key))]

    def rollback(self, namespace: str, at: float, *, by: str,
                 key: str | None = None) -> builtins.list[MemoryItem]:
        """Make each key (or just `key`) read as it did at time `at`.

        Writes a new version per changed key: a copy of the version current at
        `at` (re-verified first, expiry unchanged), or a tombstone if the key did
        not exist then. History is never rewritten.
        """
        check_namespace(namespace)
        keys = [check_key(key)] if key else [r.key for r in self.store.latest_all(namespace)]
        self._event("memory.rollback", {"namespace": namespace, "key": key, "at": at, "by": by})
        restored = []
        for name in keys:
            versions = self.store.versions(namespace, name)
            good = [v for v in versions if v.stored_at <= at and v.status == OK]
            target = good[-1] if good else None
            current = versions[-1] if versions else None
            if current is None or (target is not None and current.version == target.version):
                continue
            if target is None:
                if current.deleted:
                    continue
                prov = Provenance(writer=by, trust=Trust.TRUSTED, created_at=self._clock())
                restored.append(self._write("rollback", by, namespace, name, None, prov,
                                            self._clock() + self.ttl.trusted_seconds,
                                            deleted=True))
                continue
            old = self._verify(target)
            restored.append(self._write("rollback", by, namespace, name, old.content,
                                        old.provenance, old.expires_at, deleted=old.deleted,
                                        restored_from=old.version))
        return restored

    def quarantine(self, namespace: str, key: str, *, by: str, reason: str,
                   version: int | None = None) -> int:
        """Stop serving a version (default: the newest); a forensic copy is kept."""
        rows = self.store.versions(check_namespace(namespace), check_key(key))
        chosen = [r for r in rows if version is None or r.version == version][-1:]
        if not chosen:
            raise MemoryNotFound(f"no version {version or ''} of `{key}` in `{namespace}`")
        row = chosen[0]
        self._event("memory.quarantine", {"namespace": namespace, "key": key,
                                          "version": row.version, "by": by, "reason": reason})
        self.store.quarantine(row, f"by {by}: {reason}", self._clock())
        return row.version

    def quarantined(self, namespace: str | None = None) -> builtins.list[dict[str, Any]]:
        return self.store.quarantined(namespace)

    def purge(self, namespace: str, key: str, *, by: str, version: int | None = None) -> int:
        """Remove content (all versions, or one); digests and provenance stay as evidence."""
        check_namespace(namespace)
        check_key(key)
        self._event("memory.purge", {"namespace": namespace, "key": key, "version": version,
                                     "by": by})
        return self.store.purge(namespace, key, version)

    # -- internals ---------------------------------------------------------------------

    def _write(self, op: str, writer: str, namespace: str, key: str, content: JsonValue,
               provenance: Provenance, expires_at: float, *, deleted: bool = False,
               restored_from: int | None = None) -> MemoryItem:
        text = _encoded(content).decode("utf-8")
        stored_at = self._clock()

        def build(version: int) -> StoredRow:
            payload = signing_payload(namespace=namespace, key=key, version=version,
                                      content=content, provenance=provenance,
                                      expires_at=expires_at, deleted=deleted,
                                      restored_from=restored_from, stored_at=stored_at)
            digest = payload_digest(payload)
            signature = self._signer.sign(payload)
            # The digest is logged before the row exists: a row without a log entry
            # never verifies, a log entry without a row is harmless.
            seq = self._log.append_hash(LoggedHash(op, namespace, key, version, digest, writer,
                                                   provenance.task_id))
            return StoredRow(namespace, key, version, text,
                             canonical_json(provenance.to_json()).decode("utf-8"), expires_at,
                             deleted, restored_from, digest, signature, self._signer.key_id,
                             seq, OK, stored_at)

        row = self.store.insert_next(namespace, key, build)
        return MemoryItem(namespace, key, row.version, content, provenance, expires_at,
                          row.digest, row.audit_seq, stored_at, deleted, restored_from)

    def _live(self, rows: builtins.list[StoredRow]) -> builtins.list[MemoryItem]:
        now, items = self._clock(), []
        for row in rows:
            if row.status != OK:
                continue
            try:
                item = self._verify(row)
            except MemoryIntegrityError:
                continue  # quarantined and recorded; one bad item must not hide the rest
            if not item.deleted and item.expires_at > now:
                items.append(item)
        return items

    def _verify(self, row: StoredRow) -> MemoryItem:
        """Check signature and logged digest of `row`; on failure quarantine and raise."""
        try:
            return self._checked(row)
        except MemoryIntegrityError as exc:
            self._reject(row, exc.message)
            raise MemoryIntegrityError(_REJECTED.format(row.key, row.namespace),
                                       detail=exc.message) from None
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            self._reject(row, f"unreadable row: {type(exc).__name__}")
            raise MemoryIntegrityError(_REJECTED.format(row.key, row.namespace),
                                       detail=str(exc)[:200]) from None

    def _checked(self, row: StoredRow) -> MemoryItem:
        # Every field that reaches the caller is inside the signed payload, and the
        # payload's digest must be the one the log holds for this exact version.
        if row.content is None:
            raise MemoryIntegrityError("the item has no content")
        content = json.loads(row.content)
        provenance = Provenance.from_json(json.loads(row.provenance))
        payload = signing_payload(namespace=row.namespace, key=row.key, version=row.version,
                                  content=content, provenance=provenance,
                                  expires_at=row.expires_at, deleted=row.deleted,
                                  restored_from=row.restored_from, stored_at=row.stored_at)
        digest = payload_digest(payload)
        if row.key_id != self._signer.key_id:
            raise MemoryIntegrityError(f"signed by unknown key `{row.key_id[:32]}`")
        seen = (row.key_id, row.signature, digest)
        if seen not in self._verified:
            self._signer.verify(row.signature, payload)
            if len(self._verified) >= _MEMO_MAX:
                self._verified.clear()
            self._verified.add(seen)
        logged = self._log.logged_hash(row.audit_seq)
        if logged is None or (logged.namespace, logged.key, logged.version, logged.digest
                              ) != (row.namespace, row.key, row.version, digest):
            raise MemoryIntegrityError("the digest does not match the audit log")
        return MemoryItem(row.namespace, row.key, row.version, content, provenance,
                          row.expires_at, digest, row.audit_seq, row.stored_at, row.deleted,
                          row.restored_from)

    def _reject(self, row: StoredRow, reason: str) -> None:
        try:
            self._event("memory.integrity-failure", {
                "namespace": row.namespace, "key": row.key, "version": row.version,
                "audit_seq": row.audit_seq, "stored_digest": row.digest, "reason": reason})
        finally:
            # Quarantine even if the event could not be written: never serve it again.
            self.store.quarantine(row, reason, self._clock())


_REJECTED = "memory item `{}` in `{}` failed verification and was quarantined"


def _encoded(content: Any) -> bytes:
    try:
        data = canonical_json(content)
    except (TypeError, ValueError, RecursionError) as exc:
        raise MemoryGuardError(f"memory content must be JSON: {exc}") from None
    if len(data) > MAX_CONTENT_BYTES:
        raise MemoryGuardError(f"memory content is {len(data)} bytes; the limit is "
                               f"{MAX_CONTENT_BYTES}")
    return data


def _text_of(value: Any) -> str:
    """Every string and object key of `value`, one per line, for the injection scanner."""
    parts: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str):
            parts.append(v)
        elif isinstance(v, Mapping):
            for k, item in v.items():
                parts.append(str(k))
                walk(item)
        elif isinstance(v, list | tuple):
            for item in v:
                walk(item)

    walk(value)
    return "\n".join(parts)
