"""`GuardedMemory`: the memory guard wired to a trust domain.

`warrant.memory` is a leaf that knows nothing of the domain; this module plugs
in what it needs:

- the domain's Ed25519 key signs items (with a memory-only signing context);
- each item version's digest is appended to the domain's audit log as an
  `event` record (`tool` = `memory.write|delete|rollback`, no content), and
  reads look it up by seq — the log lives in `state.db`, the data in
  `memory.db`, so hashes and data are kept apart;
- Cedar decides `memory_read` / `memory_write` on `Warrant::MemoryNamespace`;
- `warrant.scanners` looks for injected instructions in untrusted content;
- integrity failures, refusals and operator actions are admin records.

Later: the MCP gateway will put the same guard in front of the published
`@modelcontextprotocol/server-memory` server; `GuardedMemory` is the Python store.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from warrant import audit, policy, scanners
from warrant.errors import WarrantError
from warrant.memory import (
    Ed25519Signer,
    LoggedHash,
    MemoryDenied,
    MemoryGuard,
    SqliteMemoryStore,
    TtlPolicy,
)
from warrant.types import AgentStatus, Effect

from ._domain import TrustDomain

MEMORY_DB = "memory.db"
_MEMORY_TOOL = "memory."
_BLOCKING = frozenset({scanners.Severity.HIGH, scanners.Severity.CRITICAL})
_CACHE_MAX = 4096


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

    def append_hash(self, entry: LoggedHash) -> int:
        record = audit.AuditRecord(
            kind="event", time=audit.utc_now(), decision_id=str(uuid.uuid4()),
            agent=entry.writer if entry.writer.startswith("spiffe://") else None,
            task_id=entry.task_id or None, tool=_MEMORY_TOOL + entry.op,
            argument_digest=entry.digest,
            detail={"namespace": entry.namespace, "key": entry.key, "version": entry.version,
                    "digest": entry.digest, "writer": entry.writer})
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
            return LoggedHash(op=record.tool[len(_MEMORY_TOOL):],
                              namespace=str(detail["namespace"]), key=str(detail["key"]),
                              version=int(detail["version"]), digest=str(detail["digest"]),
                              writer=str(detail["writer"]), task_id=record.task_id or "")
        except (WarrantError, KeyError, TypeError, ValueError):
            return None  # no usable log entry: the read fails verification


class _CedarAuthorizer:
    """The `Authorizer` port: Cedar `memory_read` / `memory_write` on the namespace.

    Results are memoised per (policy revision, agent attributes, action,
    namespace, labels, task, UTC hour): the request context holds nothing finer
    than the hour and evaluation is pure, so a memo never changes an answer.
    The agent's status is read from the store on every call (revocation is live).
    """

    def __init__(self, domain: TrustDomain, clock: Callable[[], float]) -> None:
        self._domain = domain
        self._clock = clock
        self._memo: dict[tuple[object, ...], policy.PolicyResult] = {}

    def authorize(self, agent: str, action: str, namespace: str, labels: frozenset[str],
                  task_id: str) -> str:
        try:
            record = self._domain.agent(agent)
        except WarrantError as exc:
            raise MemoryDenied(f"`{agent}` may not use memory", detail=exc.message) from None
        if record.status is not AgentStatus.ACTIVE:
            raise MemoryDenied(f"`{record.agent_id}` is retired and may not use memory")
        now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        policies = self._domain.policies
        key = (policies.revision, id(policies), record.agent_id, record.owner,
               record.risk_tier, action, namespace, labels, task_id,
               now.strftime("%Y%m%d%H"))
        result = self._memo.get(key)
        if result is None:
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

    Use as a context manager or call `close()`; the trust domain stays open.
    """

    def __init__(self, domain: TrustDomain, *, ttl: TtlPolicy | None = None,
                 clock: Callable[[], float] = time.time, path: Path | None = None) -> None:
        store = SqliteMemoryStore(path or domain.home / MEMORY_DB)
        super().__init__(store, signer=Ed25519Signer(domain.keys.signing_key),
                         log=_AuditHashes(domain), authorizer=_CedarAuthorizer(domain, clock),
                         scanner=injection_findings, record_event=domain.record_admin,
                         ttl=ttl, clock=clock)
        self.domain = domain

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> GuardedMemory:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
