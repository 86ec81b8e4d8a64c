"""`GuardedMemory`: the memory guard wired to a trust domain.

`warrant.memory` is a leaf that knows nothing of the domain; this module plugs
in what it needs:

- each agent signs its items with its OWN registered key (its key file when
  Warrant generated it, or a key handed to `use_agent_key`); a write whose key is
  not the agent's registered key is denied. Operators (`user:NAME`, e.g. a
  rollback from the CLI) have no key pair: the domain key signs, labelled `domain`;
- each item version's digest, signer and signer's public key are appended to the
  domain's audit log as an `event` record (`tool` = `memory.write|delete|rollback`,
  no content), and reads look it up by seq — the log lives in `state.db`, the
  data in `memory.db`, so hashes and data are kept apart, and a key rotated later
  still verifies the items it signed;
- Cedar decides `memory_read` / `memory_write` on `Warrant::MemoryNamespace`;
- `warrant.scanners` looks for injected instructions in untrusted content;
- integrity failures, refusals and operator actions are admin records.

The MCP gateway puts the same guard in front of the published
`@modelcontextprotocol/server-memory` server (`warrant.gateway`); `GuardedMemory`
is also the Python store.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from warrant import audit, identity, policy, scanners
from warrant.errors import WarrantError
from warrant.memory import (
    Ed25519Signer,
    LoggedHash,
    MemoryDenied,
    MemoryGuard,
    MemoryIntegrityError,
    SqliteMemoryStore,
    TtlPolicy,
)
from warrant.types import AgentRecord, AgentStatus, Effect, sha256_hex

from ._domain import STATE_DB, TrustDomain

MEMORY_DB = "memory.db"
_MEMORY_TOOL = "memory."
#: How a memory entry's record shows in its canonical bytes (a cheap test before parsing).
_MEMORY_TOOL_BYTES = b'"memory.'
_BLOCKING = frozenset({scanners.Severity.HIGH, scanners.Severity.CRITICAL})
_CACHE_MAX = 4096


class _Agents:
    """Agent records, re-read whenever `state.db` changed since the last look.

    `PRAGMA data_version` on a private connection changes whenever any other
    connection commits to the file, so a retirement or key rotation (by this
    process or any other) is seen on the next call, at the price of one pragma
    instead of a query, a row parse and two regexes. Without a SQLite state
    file every call reads the store.
    """

    def __init__(self, domain: TrustDomain) -> None:
        self._domain = domain
        self._lock = threading.Lock()
        self._records: dict[str, AgentRecord] = {}
        self._revoked: dict[tuple[str, str], str | None] = {}
        self._ids: dict[str, str] = {}
        self._version: int | None = None
        self._conn: sqlite3.Connection | None = None
        path = domain.home / STATE_DB
        if path.exists():
            with contextlib.suppress(sqlite3.Error):
                self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                             check_same_thread=False, isolation_level=None)

    def get(self, name_or_id: str) -> AgentRecord:
        # A name's SPIFFE id never changes: look it up by id (no name check per call).
        name_or_id = self._ids.get(name_or_id, name_or_id)
        with self._lock:
            version = self._data_version()
            if version is None or version != self._version:
                self._records.clear()
                self._revoked.clear()
                self._version = version
            record = self._records.get(name_or_id)
        if record is None:
            # Read after the version above: a commit in between is seen next time.
            record = self._domain.agent(name_or_id)
            with self._lock:
                if version is not None and self._version == version:
                    if len(self._records) >= _CACHE_MAX:
                        self._records.clear()
                    self._records[record.agent_id] = record
                if len(self._ids) < _CACHE_MAX:
                    self._ids[name_or_id] = record.agent_id
        return record

    def revoked(self, agent_id: str, task_id: str) -> str | None:
        """The revocation covering this agent (suspended) or task, if any.

        Cached like the records: valid until `state.db` changes, so a suspension
        by the response engine or a person stops memory use on the very next call.
        Call right after `get` (which refreshed the version).
        """
        key = (agent_id, task_id)
        with self._lock:
            version = self._version
            if version is not None and key in self._revoked:
                return self._revoked[key]
        found = self._domain.store.revoked(task_id=task_id or None, agent_id=agent_id,
                                           credential_id=None)
        with self._lock:
            if version is not None and self._version == version:
                if len(self._revoked) >= _CACHE_MAX:
                    self._revoked.clear()
                self._revoked[key] = found
        return found

    def just_checked(self, agent_id: str) -> AgentRecord:
        """The record the last `get` of this agent returned (else a fresh `get`).

        For the step right after an authorisation in the same call (the signer
        check of a write): the record was current when the call was authorised.
        """
        with self._lock:
            record = self._records.get(agent_id)
        return record if record is not None else self.get(agent_id)

    def _data_version(self) -> int | None:
        if self._conn is None:
            return None
        try:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            return None  # cannot tell: read the store every time

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class _Keys:
    """Which key signs for whom (`SignerFor`) and which logged keys are acceptable (`VouchKey`)."""

    def __init__(self, domain: TrustDomain, agents: _Agents,
                 agent_keys: Mapping[str, Ed25519PrivateKey]) -> None:
        self._domain = domain
        self._agents = agents
        self._given: dict[str, Ed25519Signer] = {}
        self._from_file: dict[str, Ed25519Signer] = {}
        self._domain_public = identity.raw_public(domain.public_key)
        for agent, key in agent_keys.items():
            self.use(agent, key)

    def use(self, agent: str, private_key: Ed25519PrivateKey) -> None:
        record = self._agents.get(agent)
        signer = Ed25519Signer(private_key, principal=record.agent_id)
        if signer.public_key != record.public_key:
            raise MemoryDenied(f"that key is not the registered key of `{record.agent_id}`")
        self._given[record.agent_id] = signer

    def signer(self, principal: str) -> Ed25519Signer:
        if not principal.startswith("spiffe://"):
            if not principal.startswith("user:") or len(principal) < 6:
                raise MemoryDenied(f"`{principal[:80]}` has no memory signing key",
                                   hint="operators act as `user:NAME`; agents by name or id")
            # A person has no key pair of their own: the domain signs, labelled as such.
            return Ed25519Signer(self._domain.keys.signing_key, principal=principal,
                                 kind="domain")
        # Called right after `authorize` admitted this agent in the same write.
        record = self._agents.just_checked(principal)
        for source in (self._given, self._from_file):
            found = source.get(record.agent_id)
            if found is not None and found.public_key == record.public_key:
                return found
        try:  # a key Warrant generated (and perhaps rotated): read it again
            key = self._domain.agent_key(record.name)
        except WarrantError as exc:
            raise MemoryDenied(f"`{record.agent_id}` has no signing key here",
                               detail=exc.message,
                               hint="give GuardedMemory the agent's private key "
                                    "(agent_keys= or use_agent_key)") from None
        signer = Ed25519Signer(key, principal=record.agent_id)
        if signer.public_key != record.public_key:
            raise MemoryDenied(f"the key file of `{record.agent_id}` is not its registered key")
        self._from_file[record.agent_id] = signer
        return signer

    def vouch(self, principal: str, kind: Literal["agent", "domain"], public_key: bytes) -> None:
        match kind:
            case "domain":  # only for people, and only the domain's own key
                if principal.startswith("spiffe://") or public_key != self._domain_public:
                    raise MemoryIntegrityError(
                        f"`{principal[:80]}` cannot sign with the domain key")
            case "agent":
                # The log recorded this key when the agent wrote, after checking it was
                # the agent's registered key then; a later rotation does not undo that.
                # The agent must still be one of this domain's.
                try:
                    self._agents.get(principal)
                except WarrantError:
                    raise MemoryIntegrityError(
                        f"`{principal[:80]}` is not an agent of this domain") from None


class _AuditHashes:
    """The `HashLog` port over the domain's audit log.

    Entries read from the log are memoised by seq: the log is append-only and a
    record never changes once committed (rewriting one is what `warrant audit
    verify` catches), so each read still compares the digest recomputed from the
    stored item with the digest the log holds for that exact version.
    """

    def __init__(self, domain: TrustDomain) -> None:
        self._domain = domain
        self._memo: dict[int, LoggedHash] = {}
        # Newest logged version per (namespace, key), kept up to date by reading only
        # the records appended since the last look (the log only grows).
        self._newest: dict[tuple[str, str], int] = {}
        self._scanned = 0
        self._scan_lock = threading.Lock()

    def newest_version(self, namespace: str, key: str) -> int | None:
        with self._scan_lock:
            for seq, data in self._domain.audit.raw_from(self._scanned):
                self._scanned = seq + 1
                if _MEMORY_TOOL_BYTES not in data:  # most records: no parse
                    continue
                entry = self.logged_hash(seq)
                if entry is not None:
                    where = (entry.namespace, entry.key)
                    self._newest[where] = max(entry.version, self._newest.get(where, 0))
            return self._newest.get((namespace, key))

    def append_hash(self, entry: LoggedHash) -> int:
        record = audit.AuditRecord(
            kind="event", time=audit.utc_now(), decision_id=str(uuid.uuid4()),
            agent=entry.writer if entry.writer.startswith("spiffe://") else None,
            task_id=entry.task_id or None, tool=_MEMORY_TOOL + entry.op,
            argument_digest=entry.digest,
            detail={"namespace": entry.namespace, "key": entry.key, "version": entry.version,
                    "digest": entry.digest, "writer": entry.writer,
                    "public_key": entry.public_key.hex(), "key_kind": entry.key_kind})
        return self._domain.append(record)

    def logged_hash(self, seq: int) -> LoggedHash | None:
        entry = self._memo.get(seq)
        if entry is None:
            entry = self._read(seq)
            if entry is not None:
                if len(self._memo) >= _CACHE_MAX * 16:
                    self._memo.clear()
                self._memo[seq] = entry
        return entry

    def _read(self, seq: int) -> LoggedHash | None:
        try:
            record = self._domain.audit.get(seq).record
            detail = record.detail
            if (record.kind != "event" or detail is None or record.tool is None
                    or not record.tool.startswith(_MEMORY_TOOL)):
                return None
            kind = str(detail["key_kind"])
            public_key = bytes.fromhex(str(detail["public_key"]))
            if kind not in ("agent", "domain"):
                return None
            return LoggedHash(op=record.tool[len(_MEMORY_TOOL):],
                              namespace=str(detail["namespace"]), key=str(detail["key"]),
                              version=int(detail["version"]), digest=str(detail["digest"]),
                              writer=str(detail["writer"]), task_id=record.task_id or "",
                              # The key id is the key's thumbprint: derived, not stored.
                              key_id=sha256_hex(public_key), public_key=public_key,
                              key_kind="agent" if kind == "agent" else "domain")
        except (WarrantError, KeyError, TypeError, ValueError):
            return None  # no usable log entry: the read fails verification


class _CedarAuthorizer:
    """The `Authorizer` port: Cedar `memory_read` / `memory_write` on the namespace.

    Results are memoised per (policy revision, agent attributes, action,
    namespace, labels, task, UTC hour): the request context holds nothing finer
    than the hour and evaluation is pure, so a memo never changes an answer.
    The agent's status is checked on every call against a record re-read
    whenever `state.db` changed (`_Agents`): revocation stays live.
    """

    def __init__(self, domain: TrustDomain, agents: _Agents,
                 clock: Callable[[], float]) -> None:
        self._domain = domain
        self._agents = agents
        self._clock = clock
        self._memo: dict[tuple[object, ...], policy.PolicyResult] = {}

    def authorize(self, agent: str, action: str, namespace: str, labels: frozenset[str],
                  task_id: str) -> str:
        try:
            record = self._agents.get(agent)
        except WarrantError as exc:
            raise MemoryDenied(f"`{agent}` may not use memory", detail=exc.message) from None
        if record.status is not AgentStatus.ACTIVE:
            raise MemoryDenied(f"`{record.agent_id}` is retired and may not use memory")
        revoked = self._agents.revoked(record.agent_id, task_id)
        if revoked is not None:
            raise MemoryDenied(f"`{record.agent_id}` may not use memory: {revoked}")
        seconds = self._clock()
        policies = self._domain.policies
        key = (policies.revision, id(policies), record.agent_id, record.owner,
               record.risk_tier, action, namespace, labels, task_id, int(seconds // 3600))
        result = self._memo.get(key)
        if result is None:
            now = dt.datetime.fromtimestamp(seconds, dt.UTC)
            result = policies.evaluate(policy.PolicyRequest(
                agent=record.agent_id, action=action, target=namespace, labels=labels,
                task_id=task_id, now=now, agent_attrs={
                    "owner": record.owner, "risk_tier": record.risk_tier, "name": record.name}))
            if len(self._memo) >= _CACHE_MAX:
                self._memo.clear()
            self._memo[key] = result
        match result.effect:
            case Effect.ALLOW:
                return record.agent_id
            case Effect.NEEDS_APPROVAL | Effect.DENY:
                # Memory has no approval flow: anything but an explicit allow denies.
                reasons = [r.code for r in result.reasons]
                self._domain.record_admin("memory.denied", {
                    "agent": record.agent_id, "action": action, "namespace": namespace,
                    "labels": sorted(labels), "reasons": reasons,
                    "policy_ids": list(result.policy_ids)})
                verb = action.removeprefix("memory_")
                raise MemoryDenied(f"policy does not let `{record.agent_id}` {verb} `{namespace}`",
                                   detail=", ".join(reasons))


def injection_findings(text: str) -> Sequence[str]:
    """Codes of high-severity instruction findings in `text` (the tool-poisoning rules)."""
    findings = scanners.scan_tool_definition("memory", text, {})
    return [f.code for f in findings
            if f.severity in _BLOCKING and f.code != "poisoning.oversized"]


class GuardedMemory(MemoryGuard):
    """Signed, verified, policy-checked agent memory in `<home>/memory.db`.

    Each agent signs with its own key: one Warrant generated is read from the
    domain's key file; otherwise hand the private key over with `agent_keys`
    (agent name or id → key) or `use_agent_key`. Use as a context manager or
    call `close()`; the trust domain stays open.
    """

    def __init__(self, domain: TrustDomain, *, ttl: TtlPolicy | None = None,
                 clock: Callable[[], float] = time.time, path: Path | None = None,
                 agent_keys: Mapping[str, Ed25519PrivateKey] | None = None) -> None:
        self._agents = _Agents(domain)
        try:
            keys = _Keys(domain, self._agents, agent_keys or {})
            store = SqliteMemoryStore(path or domain.home / MEMORY_DB)
        except BaseException:
            self._agents.close()
            raise
        super().__init__(store, signers=keys.signer, vouch=keys.vouch, log=_AuditHashes(domain),
                         authorizer=_CedarAuthorizer(domain, self._agents, clock),
                         scanner=injection_findings, record_event=domain.record_admin,
                         ttl=ttl, clock=clock)
        self._keys = keys
        self.domain = domain

    def use_agent_key(self, agent: str, private_key: Ed25519PrivateKey) -> None:
        """Sign `agent`'s writes with `private_key` (refused unless it is its registered key)."""
        self._keys.use(agent, private_key)

    def close(self) -> None:
        try:
            self.store.close()
        finally:
            self._agents.close()

    def __enter__(self) -> GuardedMemory:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
