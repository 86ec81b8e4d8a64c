"""`MemoryGuard`: signed writes, verified reads, TTLs, versions, quarantine and purge.

Write path: policy (memory_write) → content checks (JSON, size, secrets; for
untrusted content an injection scan) → sign the canonical payload with the
WRITER's own key (an agent's registered key; the domain key only for a person,
labelled `domain`) → append its digest, signer and public key to the audit log →
store the row. Read path: policy (memory_read) → load the row → find its log
entry → recompute the payload digest → check the signer's key is the one the log
names and may sign for that principal → verify the signature → compare with the
digest the log holds for that version. Any mismatch quarantines the row
(forensic copy), records `memory.integrity-failure` and raises.

INVARIANT: no read returns an item whose signature and logged digest were not
both checked in that read. (The memos below cache pure functions of immutable
inputs — a parsed provenance text, the digest of exact row bytes whose signature
verified under the key the log names, an append-only log entry — so a hit gives
the answer a fresh check would; the logged digest is compared on every read.)
"""

from __future__ import annotations

import builtins
import functools
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from warrant.types import JsonValue, canonical_json, sha256_hex

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
from ._ports import (
    Authorizer,
    HashLog,
    LoggedHash,
    RecordEvent,
    Scanner,
    Signer,
    SignerFor,
    TtlPolicy,
    VouchKey,
    key_thumbprint,
    verify_signature,
)
from ._secrets import find_secrets
from ._store import OK, PURGED, QUARANTINED, SqliteMemoryStore, StoredRow

#: Largest item accepted, as canonical JSON bytes.
MAX_CONTENT_BYTES = 1 << 20
_MEMO_MAX = 16_384
READ, WRITE = "memory_read", "memory_write"
_NO_LABELS: frozenset[str] = frozenset()


class MemoryGuard:
    """Agent memory over a `SqliteMemoryStore`, with the ports a composer provides."""

    def __init__(self, store: SqliteMemoryStore, *, signers: SignerFor, vouch: VouchKey,
                 log: HashLog, authorizer: Authorizer, scanner: Scanner,
                 record_event: RecordEvent, ttl: TtlPolicy | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._signers = signers
        self._vouch = vouch
        self._log = log
        self._authz = authorizer
        self._scan = scanner
        self._event = record_event
        self.ttl = ttl or TtlPolicy()
        self._clock = clock
        # Stored row bytes + signer named by the log → the payload digest, for inputs
        # whose signature verified. Hashing and Ed25519 verification are deterministic,
        # so an input seen valid stays valid; any change to the row misses the memo.
        self._verified: dict[tuple[object, ...], str] = {}

    def now(self) -> float:
        """The guard's clock (expiry is judged by it)."""
        return self._clock()

    # -- the agent API (each call is decided by policy) ---------------------------------

    def check_write(self, agent: str, namespace: str, content: JsonValue, *,
                    task_id: str = "", trust: Trust | str = Trust.TRUSTED, source: str = "",
                    labels: Iterable[str] = ()) -> str:
        """Everything `put` checks before signing; the writer's canonical id, or it raises.

        For callers that must vet several items before storing any of them (the
        MCP gateway vets a whole `create_entities` call before forwarding it).
        """
        return self._vet(agent, namespace, content, task_id=task_id, trust=Trust(trust),
                         source=source, labels=frozenset(str(x) for x in labels))[0]

    def put(self, agent: str, namespace: str, key: str, content: JsonValue, *,
            task_id: str = "", trust: Trust | str = Trust.TRUSTED, source: str = "",
            labels: Iterable[str] = (), ttl_seconds: float | None = None) -> MemoryItem:
        """Store a new version of `key`, signed with the writer's own key.

        Refuses secrets and (untrusted) injected text. Untrusted content (anything
        read from a tool result) is stored as data with the short untrusted TTL;
        policy sees the labels `untrusted` and `data`.
        """
        check_key(key)
        trust = Trust(trust)
        extra = frozenset(str(x) for x in labels)
        writer, text = self._vet(agent, namespace, content, task_id=task_id, trust=trust,
                                 source=source, labels=extra)
        signer = self._signers(writer)
        now = self._clock()
        provenance = Provenance(writer=writer, trust=trust, created_at=now, task_id=task_id,
                                source=source, labels=tuple(extra), key_id=signer.key_id,
                                key_kind=signer.kind)
        expires_at = now + self.ttl.ttl(trust, ttl_seconds)
        return self._write("write", signer, namespace, key, text, provenance, expires_at,
                           content=content)

    def _vet(self, agent: str, namespace: str, content: JsonValue, *, task_id: str,
             trust: Trust, source: str, labels: frozenset[str]) -> tuple[str, str]:
        check_namespace(namespace)
        policy_labels = labels | {trust.value} | ({"data"} if trust is Trust.UNTRUSTED else set())
        writer = self._authz.authorize(agent, WRITE, namespace, policy_labels, task_id)
        text = _encoded(content).decode("utf-8")
        where = {"namespace": namespace, "writer": writer, "task_id": task_id}
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
        return writer, text

    def get(self, agent: str, namespace: str, key: str) -> MemoryItem:
        """The newest version of `key`, verified; `MemoryNotFound` if none is live."""
        self._authz.authorize(agent, READ, check_namespace(namespace), _NO_LABELS, "")
        for _ in range(_READ_ATTEMPTS):
            row = self.store.latest(namespace, check_key(key))
            if row is None or row.status == PURGED:
                raise MemoryNotFound(f"no memory item `{key}` in `{namespace}`")
            if row.status == QUARANTINED:
                raise MemoryQuarantined(f"memory item `{key}` in `{namespace}` is quarantined")
            item = self._verify(row)
            try:
                self._check_newest(row)
            except MemoryChanged:  # a newer version landed while reading: read that one
                continue
            if item.deleted or item.expires_at <= self._clock():
                raise MemoryNotFound(f"no memory item `{key}` in `{namespace}`")
            return item
        raise MemoryGuardError(f"memory item `{key}` in `{namespace}` kept changing while "
                               "being read; try again")

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
        signer = self._signers(writer)
        now = self._clock()
        provenance = Provenance(writer=writer, trust=Trust.TRUSTED, created_at=now,
                                task_id=task_id, key_id=signer.key_id, key_kind=signer.kind)
        return self._write("delete", signer, namespace, key, _NULL, provenance,
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
        `at` (re-verified first, expiry and provenance unchanged), or a tombstone
        if the key did not exist then, each signed by `by` (a person: the
        domain key). History is never rewritten.
        """
        check_namespace(namespace)
        signer = self._signers(by)
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
                prov = Provenance(writer=by, trust=Trust.TRUSTED, created_at=self._clock(),
                                  key_id=signer.key_id, key_kind=signer.kind)
                restored.append(self._write("rollback", signer, namespace, name, _NULL, prov,
                                            self._clock() + self.ttl.trusted_seconds,
                                            deleted=True))
                continue
            old = self._verify(target)
            assert target.content is not None  # _verify refuses a row without content
            restored.append(self._write("rollback", signer, namespace, name, target.content,
                                        old.provenance, old.expires_at, deleted=old.deleted,
                                        restored_from=old.version, content=old.content))
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

    def reject_found(self, namespace: str, key: str, found: Mapping[str, Any],
                     reason: str) -> None:
        """Quarantine content found outside the store that no signed version vouches for.

        For a guarded memory server's answer (`warrant.gateway`): the caller
        withholds it; this keeps a forensic copy and records the event.
        """
        check_namespace(namespace)
        check_key(key)
        try:
            self._event("memory.integrity-failure", {
                "namespace": namespace, "key": key, "version": 0, "reason": reason,
                "found_digest": sha256_hex(canonical_json(dict(found)))})
        finally:
            self.store.quarantine_found(namespace, key, reason, self._clock(), dict(found))

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

    def _write(self, op: str, signer: Signer, namespace: str, key: str, text: str,
               provenance: Provenance, expires_at: float, *, deleted: bool = False,
               restored_from: int | None = None, content: JsonValue = None) -> MemoryItem:
        """Sign, log and store one version; `text` is `content` as canonical JSON."""
        stored_at = self._clock()
        # Stored as canonical JSON, so its bytes are also what the payload binds.
        prov_text = canonical_json(provenance.to_json()).decode("utf-8")
        prov_digest = _sha256(prov_text)

        def build(version: int) -> StoredRow:
            payload = signing_payload(namespace=namespace, key=key, version=version,
                                      content_text=text, provenance=provenance,
                                      expires_at=expires_at, deleted=deleted,
                                      restored_from=restored_from, stored_at=stored_at,
                                      signed_by=signer.principal, key_id=signer.key_id,
                                      provenance_sha256=prov_digest)
            digest = payload_digest(payload)
            signature = signer.sign(payload)
            # The digest is logged before the row exists: a row without a log entry
            # never verifies, and a failed append aborts the insert.
            seq = self._log.append_hash(LoggedHash(
                op, namespace, key, version, digest, signer.principal, provenance.task_id,
                signer.key_id, signer.public_key, signer.kind))
            return StoredRow(namespace, key, version, text, prov_text,
                             expires_at, deleted, restored_from, digest, signature,
                             signer.key_id, seq, OK, stored_at)

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
                self._check_newest(row)
            except MemoryChanged:
                continue  # written while listing: the next listing shows the new version
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
        # Every field that reaches the caller is inside the signed payload; the log
        # entry for this exact version names the signer and key, and holds the digest.
        if row.content is None:
            raise MemoryIntegrityError("the item has no content")
        logged = self._log.logged_hash(row.audit_seq)
        if logged is None or (logged.namespace, logged.key, logged.version) != (
                row.namespace, row.key, row.version):
            raise MemoryIntegrityError("the digest does not match the audit log")
        provenance = _provenance(row.provenance)
        if row.key_id != logged.key_id or key_thumbprint(logged.public_key) != row.key_id:
            raise MemoryIntegrityError(f"signed by key `{row.key_id[:16]}`, which the audit "
                                       "log does not name for this version")
        if logged.op != "rollback" and (provenance.writer, provenance.key_id,
                                        provenance.key_kind) != (logged.writer, row.key_id,
                                                                 logged.key_kind):
            # A write names its own signer: a writer swapped in the store shows here.
            raise MemoryIntegrityError(f"the provenance names `{provenance.writer[:80]}`, "
                                       f"but `{logged.writer[:80]}` signed it")
        # The exact stored bytes, the signature and the signer the log names: a memo hit
        # means this very input was hashed and its signature verified before.
        # (Content enters by its hash: the memo must not pin megabytes of content.)
        seen = (row.namespace, row.key, row.version, _sha256(row.content), row.provenance,
                row.expires_at, row.deleted, row.restored_from, row.stored_at, row.signature,
                row.key_id, logged.writer, logged.key_kind, logged.public_key)
        digest = self._verified.get(seen)
        if digest is None:
            payload = signing_payload(
                namespace=row.namespace, key=row.key, version=row.version,
                content_text=row.content, provenance=provenance, expires_at=row.expires_at,
                deleted=row.deleted, restored_from=row.restored_from, stored_at=row.stored_at,
                signed_by=logged.writer, key_id=row.key_id)
            self._vouch(logged.writer, logged.key_kind, logged.public_key)
            verify_signature(logged.public_key, row.signature, payload)
            digest = payload_digest(payload)
            if len(self._verified) >= _MEMO_MAX:
                self._verified.clear()
            self._verified[seen] = digest
        if logged.digest != digest:
            raise MemoryIntegrityError("the digest does not match the audit log")
        return MemoryItem(row.namespace, row.key, row.version, json.loads(row.content),
                          provenance, row.expires_at, digest, row.audit_seq, row.stored_at,
                          row.deleted, row.restored_from)

    def _check_newest(self, row: StoredRow) -> None:
        """`row` must be the newest version the log knows: rows are never removed (purge
        keeps them), so an older newest row means the newer ones were deleted from the
        store, rolling the item back. Such a row is quarantined instead of served."""
        newest = self._log.newest_version(row.namespace, row.key)
        if newest is None or newest <= row.version:
            return
        # A writer elsewhere logs its version before its row commits: wait for it once.
        settled = self.store.latest_settled(row.namespace, row.key)
        if settled is not None and settled.version >= newest:
            raise MemoryChanged(row.namespace, row.key)
        reason = (f"the audit log holds version {newest}, the store's newest is "
                  f"{row.version}: newer versions were removed (rolled back), or a "
                  "write failed between logging and storing it")
        self._reject(row, reason)
        raise MemoryIntegrityError(_REJECTED.format(row.key, row.namespace), detail=reason)

    def _reject(self, row: StoredRow, reason: str) -> None:
        try:
            self._event("memory.integrity-failure", {
                "namespace": row.namespace, "key": row.key, "version": row.version,
                "audit_seq": row.audit_seq, "stored_digest": row.digest, "reason": reason})
        finally:
            # Quarantine even if the event could not be written: never serve it again.
            self.store.quarantine(row, reason, self._clock())


_REJECTED = "memory item `{}` in `{}` failed verification and was quarantined"
#: Reads of an item that a writer elsewhere keeps replacing, before giving up.
_READ_ATTEMPTS = 3


class MemoryChanged(Exception):  # noqa: N818 - a signal between two methods, not an error
    """A newer version of the item was committed while it was being read."""
_NULL = "null"


def _sha256(text: str) -> str:
    return sha256_hex(text.encode("utf-8"))


@functools.lru_cache(maxsize=4096)
def _provenance(text: str) -> Provenance:
    """Parse a stored provenance (memoised: the value is frozen, so sharing it is safe)."""
    return Provenance.from_json(json.loads(text))


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
