"""Finding for a compliance report, gathered from an opened trust domain.

`gather_evidence` signs a fresh checkpoint over the audit log (after recording
the report request itself), verifies the whole log, then runs one collector per
evidence kind. Collectors share one shape, `(EvidenceContext) -> Finding`, so
adding a kind is adding a function to `COLLECTORS`. A collector never raises
for what it finds: a failed check is evidence too (status `failed`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from warrant import audit, identity
from warrant.enforce import TrustDomain
from warrant.errors import AuditError, ConfigError, StoreError
from warrant.response import INCIDENTS_DB, response_metrics
from warrant.store import SqliteIncidents

#: How many of the most recent audit records the activity statistics read.
SCAN_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class Finding:
    """One kind of evidence: `ok` (present, checks pass), `empty` (nothing yet) or `failed`."""

    kind: str
    status: str
    summary: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "summary": self.summary, "data": self.data}


@dataclass(frozen=True, slots=True)
class EvidenceContext:
    """What every collector reads: the domain, the checkpoint, and the scanned records."""

    domain: TrustDomain
    now: float
    samples: int
    checkpoint: audit.Checkpoint | None
    checkpoint_fresh: bool
    checkpoint_error: str | None
    verify: audit.VerifyReport | None
    verify_error: str | None
    window: tuple[audit.Entry, ...]


def iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stats(values: Iterable[float]) -> dict[str, Any]:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "p50_seconds": None, "max_seconds": None}
    return {"count": len(ordered), "p50_seconds": round(statistics.median(ordered), 3),
            "max_seconds": round(ordered[-1], 3)}


def prepare(domain: TrustDomain, *, samples: int, regime: str,
            now: float | None = None) -> EvidenceContext:
    """Record the request, sign a checkpoint, verify the log and read its recent records."""
    now = time.time() if now is None else now
    cp: audit.Checkpoint | None = None
    fresh, cp_error = False, None
    try:
        domain.record_admin("compliance.report", {"regime": regime, "samples": samples})
        cp, fresh = domain.checkpoint(), True
    except AuditError as exc:
        cp_error = exc.message
        try:
            cp = domain.witnessed_checkpoint()
        except AuditError as inner:
            cp_error = f"{cp_error}; the witnessed checkpoint is unreadable: {inner.message}"
    report, verify_error = None, None
    try:
        report = domain.verify_audit()
    except AuditError as exc:
        verify_error = exc.message
    size = cp.tree_size if cp else 0
    window = tuple(e for e in domain.audit.tail(min(SCAN_LIMIT, size)) if e.seq < size) \
        if size else ()
    return EvidenceContext(domain=domain, now=now, samples=samples, checkpoint=cp,
                           checkpoint_fresh=fresh, checkpoint_error=cp_error, verify=report,
                           verify_error=verify_error, window=window)


def audit_integrity(ctx: EvidenceContext) -> Finding:
    if ctx.verify is None:
        return Finding("audit-integrity", "failed",
                        f"the audit log does not verify: {ctx.verify_error}",
                        {"ok": False, "error": ctx.verify_error})
    v = ctx.verify
    return Finding("audit-integrity", "ok",
                    f"{v.size} records recomputed; {v.checkpoints_checked} signed checkpoint(s) "
                    "match", {"ok": True, "size": v.size, "root": v.root,
                              "checkpoints_checked": v.checkpoints_checked})


def audit_checkpoint(ctx: EvidenceContext) -> Finding:
    cp = ctx.checkpoint
    if cp is None:
        return Finding("audit-checkpoint", "failed" if ctx.checkpoint_error else "empty",
                        ctx.checkpoint_error or "no signed checkpoint yet",
                        {"error": ctx.checkpoint_error})
    data: dict[str, Any] = {
        "note": cp.to_note(), "tree_size": cp.tree_size, "root_hash": cp.root_hash,
        "timestamp": cp.timestamp, "key_id": cp.key_id, "origin": cp.origin,
        "signed_for_this_report": ctx.checkpoint_fresh, "error": ctx.checkpoint_error}
    try:
        audit.verify_checkpoint(cp, ctx.domain.public_key)
    except AuditError as exc:
        return Finding("audit-checkpoint", "failed", exc.message, {**data, "verified": False})
    data["verified"] = True
    status = "ok" if ctx.checkpoint_error is None else "failed"
    return Finding("audit-checkpoint", status,
                    f"checkpoint over {cp.tree_size} records signed {cp.timestamp} "
                    f"(key id {cp.key_id}) verifies with the domain key", data)


def audit_sample(ctx: EvidenceContext) -> Finding:
    cp = ctx.checkpoint
    picked = [e for e in ctx.window if e.record.kind in ("decision", "outcome")][-ctx.samples:]
    if cp is None or not picked:
        return Finding("audit-sample", "empty", "no decision or outcome records yet",
                        {"records": []})
    rows, bad = [], 0
    for entry in picked:
        proof = ctx.domain.audit.inclusion_proof(entry.seq, cp.tree_size)
        try:
            audit.AuditLog.verify_inclusion(entry.record, proof, cp.root)
            verified = True
        except AuditError:
            verified, bad = False, bad + 1
        rows.append({"seq": entry.seq, "tree_size": cp.tree_size, "verified": verified,
                     "leaf_hash": audit.leaf_hash(entry.record.to_bytes()).hex(),
                     "proof": [h.hex() for h in proof.hashes], "record": entry.record.to_json()})
    effects = Counter(e.record.effect for e in ctx.window if e.record.kind == "decision")
    data = {"records": rows, "window_records": len(ctx.window),
            "decisions_by_effect": dict(sorted((str(k), v) for k, v in effects.items()))}
    if bad:
        return Finding("audit-sample", "failed",
                        f"{bad} of {len(rows)} inclusion proofs do not verify", data)
    return Finding("audit-sample", "ok", f"{len(rows)} recent records, each with an inclusion "
                    f"proof that verifies against the checkpoint root", data)


def credential_lifetimes(ctx: EvidenceContext) -> Finding:
    config, store = ctx.domain.config, ctx.domain.store
    by_kind: dict[str, list[float]] = {}
    active = 0
    for agent in store.list_agents():
        for _, kind, issued, expires in store.credentials_of(agent.agent_id):
            by_kind.setdefault(kind, []).append(expires - issued)
            active += expires > ctx.now
    configured = config.credential_ttl_seconds
    over = sum(1 for vs in by_kind.values() for v in vs if v > configured + 1)
    data = {"configured_ttl_seconds": configured,
            "maximum_ttl_seconds": identity.MAX_TTL_SECONDS, "unexpired_now": active,
            "longer_than_configured": over,
            "observed": {k: _stats(v) for k, v in sorted(by_kind.items())}}
    every = [v for vs in by_kind.values() for v in vs]
    if not every:
        return Finding("credential-lifetimes", "empty",
                        f"no credentials issued yet (configured lifetime {configured}s)", data)
    return Finding("credential-lifetimes", "ok",
                    f"{len(every)} credentials issued; longest lifetime {max(every):.0f}s "
                    f"(configured {configured}s)", data)


def warrant_lifetimes(ctx: EvidenceContext) -> Finding:
    ttls = [float((e.record.detail or {}).get("ttl_seconds", 0)) for e in ctx.window
            if e.record.kind == "admin" and e.record.tool == "warrant.mint"]
    revocations = Counter(kind for kind, *_ in ctx.domain.store.list_revocations())
    configured = ctx.domain.config.warrant_ttl_seconds
    data = {"configured_ttl_seconds": configured, "minted": _stats(ttls),
            "revocations_by_kind": dict(sorted(revocations.items()))}
    if not ttls:
        return Finding("warrant-lifetimes", "empty",
                        f"no warrants minted in the scanned records (configured {configured}s)",
                        data)
    return Finding("warrant-lifetimes", "ok", f"{len(ttls)} task warrants minted; longest "
                    f"lifetime {max(ttls):.0f}s (configured {configured}s)", data)


def approvals(ctx: EvidenceContext) -> Finding:
    rows = ctx.domain.store.approvals.list(pending_only=False, now=ctx.now)
    states = Counter("expired" if a.status == "pending" and a.expires_at <= ctx.now
                     else a.status for a in rows)
    deciders = Counter(a.decided_by for a in rows if a.decided_by)
    waits = [a.decided_at - a.created_at for a in rows if a.decided_at is not None]
    data = {"by_status": {s: states.get(s, 0) for s in
                          ("pending", "approved", "used", "denied", "expired")},
            "decided_by": dict(sorted(deciders.items())), "time_to_decide": _stats(waits)}
    if not rows:
        return Finding("approvals", "empty", "no calls were held for approval yet", data)
    return Finding("approvals", "ok", f"{len(rows)} held calls; {len(waits)} decided by "
                    f"{len(deciders)} named person(s)", data)


def incidents(ctx: EvidenceContext) -> Finding:
    path = ctx.domain.home / INCIDENTS_DB
    if not path.exists():
        return Finding("incidents", "empty", "no incident store (the response engine has not "
                        "run in this domain)", {})
    try:
        store = SqliteIncidents(path)
    except StoreError as exc:
        return Finding("incidents", "failed", exc.message, {})
    try:
        metrics = response_metrics(store)
        recent = [{"incident_id": i.incident_id, "severity": i.severity, "status": i.status,
                   "title": i.title, "detections": i.detections, "opened_at": iso(i.opened_at),
                   "contain_seconds": None if i.contained_at is None
                   else round(i.contained_at - i.first_event_at, 3)}
                  for i in store.list(limit=10)]
    finally:
        store.close()
    total = metrics["incidents"]["total"]
    ttc = metrics["time_to_contain"]
    data = {"metrics": metrics, "recent": recent}
    if not total:
        return Finding("incidents", "empty", "no incidents recorded", data)
    return Finding("incidents", "ok", f"{total} incident(s); {ttc['count']} contained, "
                    f"time to contain p50 {ttc['p50_ms']} ms, max {ttc['max_ms']} ms", data)


def policy_revisions(ctx: EvidenceContext) -> Finding:
    seen: dict[str, dict[str, Any]] = {}
    for e in ctx.window:
        rev = e.record.policy_revision
        if e.record.kind == "decision" and rev:
            row = seen.setdefault(rev, {"revision": rev, "decisions": 0, "first": e.record.time})
            row["decisions"] += 1
            row["last"] = e.record.time
    folder = ctx.domain.policy_dir
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}
    current = ctx.domain.policies.revision
    return Finding("policy-revisions", "ok", f"current revision {current}; {len(seen)} "
                    "revision(s) cited by recorded decisions",
                    {"current": current, "observed": list(seen.values()), "files": files})


def data_flow(ctx: EvidenceContext) -> Finding:
    config = ctx.domain.config
    cited = Counter(e.record.effect for e in ctx.window if e.record.kind == "decision" and any(
        r.get("code", "").startswith("flow.") or "`flow." in r.get("message", "")
        for r in e.record.reasons))
    data = {"injection_detector": config.flow_injection_detector,
            "injection_threshold": config.flow_injection_threshold,
            "redact_output": config.redact_output,
            "decisions_citing_flow_rules": dict(sorted((str(k), v) for k, v in cited.items()))}
    return Finding("data-flow", "ok", f"{sum(cited.values())} decision(s) cited a data-flow "
                    f"rule; injection detector `{config.flow_injection_detector}`, output "
                    f"redaction `{config.redact_output}`", data)


def signed_config(ctx: EvidenceContext) -> Finding:
    required = ctx.domain.config.require_signed_config
    folder = ctx.domain.policy_dir
    data: dict[str, Any] = {"require_signed_config": required}
    try:
        manifest = identity.verify_bundle(ctx.domain.public_key, folder)
    except ConfigError as exc:
        data["error"] = exc.message
        if "is not signed" in exc.message:
            return Finding("signed-config", "failed" if required else "empty",
                            "the policy directory is not signed", data)
        return Finding("signed-config", "failed", exc.message, data)
    data["signed_at"] = manifest.get("signed_at")
    data["files"] = sorted(manifest["files"])
    return Finding("signed-config", "ok", "the policy directory is signed and verifies"
                    f"{' (signing is required)' if required else ''}", data)


COLLECTORS: dict[str, Callable[[EvidenceContext], Finding]] = {
    "audit-integrity": audit_integrity, "audit-checkpoint": audit_checkpoint,
    "audit-sample": audit_sample, "credential-lifetimes": credential_lifetimes,
    "warrant-lifetimes": warrant_lifetimes, "approvals": approvals, "incidents": incidents,
    "policy-revisions": policy_revisions, "data-flow": data_flow, "signed-config": signed_config,
}


def gather_evidence(domain: TrustDomain, *, regime: str, samples: int = 5,
                    now: float | None = None) -> dict[str, Finding]:
    """Every kind of evidence, in `EVIDENCE_KINDS` order (the order of `COLLECTORS`)."""
    ctx = prepare(domain, samples=samples, regime=regime, now=now)
    return {kind: collect(ctx) for kind, collect in COLLECTORS.items()}
