"""The compliance report: built from a regime and evidence, rendered, signed as a bundle.

`write_report` gathers evidence from an opened trust domain, writes
`report.json`, `report.md` and `report.html` to a new directory and signs the
directory with the domain key (`identity.sign_bundle`). `verify_report`
checks that signature, then re-checks the report's own claims with nothing but
the public key: the checkpoint's signature and every sample record's inclusion
proof against the checkpoint root.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from warrant import audit, identity
from warrant.enforce import TrustDomain
from warrant.errors import AuditError, ConfigError
from warrant.types import canonical_json

from ._compliance import STATEMENT, ComplianceError, Regime
from ._compliance_evidence import Finding, gather_evidence, iso
from ._compliance_render import render_html, render_markdown

SCHEMA = "warrant.compliance-report/v1"
FILES = ("report.json", "report.md", "report.html")


def requirement_status(kinds: tuple[str, ...], evidence: dict[str, Finding]) -> str:
    """How well the gathered evidence covers one requirement (never "compliant")."""
    statuses = [evidence[k].status for k in kinds]
    if "failed" in statuses:
        return "evidence-failed"
    if all(s == "ok" for s in statuses):
        return "evidence-present"
    return "partial-evidence" if "ok" in statuses else "no-evidence-yet"


def build_report(domain: TrustDomain, regime: Regime, *, samples: int = 5,
                 now: float | None = None) -> dict[str, Any]:
    """The report as JSON-ready data (gathering evidence writes one audit record)."""
    now = time.time() if now is None else now
    evidence = gather_evidence(domain, regime=regime.id, samples=samples, now=now)
    requirements = [{**m.to_json(), "status": requirement_status(m.evidence, evidence)}
                    for m in regime.mappings]
    counts: dict[str, int] = {}
    for r in requirements:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    meta = regime.to_json()
    del meta["mappings"]
    # The statement comes first in every rendering, the JSON included (keys keep this order).
    return {"statement": STATEMENT, "schema": SCHEMA, "generated_at": iso(now),
            "domain": domain.domain, "signing_key": identity.jwk_thumbprint(domain.public_key),
            "regime": meta, "summary": {"requirements": len(requirements), "by_status": counts},
            "requirements": requirements,
            "evidence": {kind: e.to_json() for kind, e in evidence.items()}}


def write_report(domain: TrustDomain, regime: Regime, out: Path, *, samples: int = 5,
                 now: float | None = None) -> dict[str, Any]:
    """Write and sign the report bundle in `out` (new or empty). Returns the report."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ComplianceError(f"`{out}` already exists and is not an empty directory",
                              hint="choose another --out; reports are never overwritten")
    report = build_report(domain, regime, samples=samples, now=now)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n",
                                     encoding="utf-8")
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    (out / "report.html").write_text(render_html(report), encoding="utf-8")
    manifest = identity.sign_bundle(domain.keys.signing_key, out)
    domain.record_admin("compliance.report.signed", {"regime": regime.id, "out": str(out),
                                                     "manifest": manifest.name})
    return report


def verify_report(public_key: Ed25519PublicKey, bundle: Path) -> dict[str, Any]:
    """Check a report bundle's signature and its checkpoint and proofs; return the report.

    Raises `ComplianceError` naming what does not verify (a changed, added or
    removed file; a forged checkpoint; a proof that does not lead to its root).
    """
    try:
        manifest = identity.verify_bundle(public_key, bundle)
    except ConfigError as exc:
        raise ComplianceError(exc.message, hint="the report bundle was changed after it was "
                              "signed, or signed by another domain") from exc
    missing = sorted(set(FILES) - set(manifest["files"]))
    if missing:
        raise ComplianceError(f"`{bundle}` is not a report bundle (missing {', '.join(missing)})")
    try:
        report: dict[str, Any] = json.loads((bundle / "report.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ComplianceError(f"`{bundle / 'report.json'}` is unreadable: {exc}") from exc
    if report.get("schema") != SCHEMA or report.get("statement") != STATEMENT:
        raise ComplianceError(f"`{bundle / 'report.json'}` is not a {SCHEMA} report")
    cp_data = report["evidence"]["audit-checkpoint"]["data"]
    if not cp_data.get("note"):
        return report
    try:
        cp = audit.Checkpoint.from_note(cp_data["note"])
        audit.verify_checkpoint(cp, public_key)
        for row in report["evidence"]["audit-sample"]["data"].get("records", []):
            proof = audit.InclusionProof(row["seq"], row["tree_size"],
                                         tuple(bytes.fromhex(h) for h in row["proof"]))
            if row["tree_size"] != cp.tree_size:
                raise ComplianceError(f"sample record {row['seq']} is proved against another "
                                      "tree size than the checkpoint's")
            audit.AuditLog.verify_inclusion(canonical_json(row["record"]), proof, cp.root)
    except AuditError as exc:
        raise ComplianceError(f"the report's audit evidence does not verify: {exc.message}",
                              hint="the report was signed over evidence that does not check") \
            from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ComplianceError(f"the report's audit evidence is malformed: {exc}") from exc
    return report
