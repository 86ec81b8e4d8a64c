"""Compliance reports: regimes as data, evidence from an active domain, signed bundles."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import AgentKit, make_agent
from warrant import audit, identity
from warrant.enforce import Guard, Pipeline, TrustDomain
from warrant.governance import (
    EVIDENCE_KINDS,
    STATEMENT,
    ComplianceError,
    load_regime,
    load_regimes,
    regime_ids,
    verify_report,
    write_report,
)
from warrant.governance._compliance import parse_regime
from warrant.governance._compliance_evidence import COLLECTORS
from warrant.response import ResponseEngine
from warrant.types import Effect, canonical_json

REGIMES = {"hipaa", "pci-dss-4", "soc2", "gdpr", "eu-ai-act", "nist-ai-rmf", "iso-42001",
           "finra", "fedramp", "nist-800-207"}
CATALOGUE = Path(__file__).parents[2] / "src/warrant/governance/data/controls.yaml"


# -- regimes as data ------------------------------------------------------------------------

def test_every_named_regime_ships_and_loads_with_at_least_four_mappings() -> None:
    assert set(regime_ids()) == REGIMES
    for regime in load_regimes():
        assert len(regime.mappings) >= 4, regime.id
        assert regime.document and regime.scope


def test_every_mapping_names_its_source_and_evidence_the_collector_gathers() -> None:
    assert tuple(COLLECTORS) == EVIDENCE_KINDS
    for regime in load_regimes():
        for m in regime.mappings:
            assert m.source.strip() and m.requirement.strip() and m.rationale.strip()
            assert m.evidence and set(m.evidence) <= set(COLLECTORS), (regime.id, m)


@pytest.mark.skipif(not CATALOGUE.exists(), reason="the control catalogue is not in this tree")
def test_every_mapping_names_a_control_of_the_catalogue() -> None:
    known = {c["id"] for c in yaml.safe_load(CATALOGUE.read_text("utf-8"))["controls"]}
    for regime in load_regimes():
        for m in regime.mappings:
            assert m.control in known, (regime.id, m.requirement, m.control)


def test_an_unknown_regime_is_an_error_listing_the_known_ones() -> None:
    with pytest.raises(ComplianceError, match=r"unknown regime `sox`.*hipaa.*soc2"):
        load_regime("sox")


@pytest.mark.parametrize(("patch", "problem"), [
    (("audit-sample", "vibes"), "unknown evidence kind"),
    (("source: ", "sauce: "), "sauce"),
    (("control: observability.verifiable-log", "control: Bad Id"), "control"),
])
def test_invalid_regime_files_are_rejected_with_the_reason(patch: tuple[str, str],
                                                           problem: str) -> None:
    text = (Path(__file__).parents[2] / "src/warrant/governance/data/regimes/hipaa.yaml"
            ).read_text("utf-8")
    with pytest.raises(ComplianceError, match=problem):
        parse_regime("hipaa", text.replace(*patch))


# -- a report over real activity ----------------------------------------------------------------

class Contained:
    """Observer of the response engine: set once an incident was contained."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, kind: str, incident_id: str, detail: Mapping[str, Any]) -> None:
        if kind == "contained":
            self.event.set()


@pytest.fixture
def active(domain: TrustDomain, agent: AgentKit) -> TrustDomain:
    """Allowed, denied and held calls, a guarded tool run, two human approvals, an incident."""
    guard = Guard(domain)

    @guard.tool(risk="read-only")
    def read_file(path: str) -> str:
        return f"contents of {path}"

    with guard.session(credential=agent.credential, warrant=agent.warrant, agent_key=agent.key):
        assert read_file(path="/srv/a.txt") == "contents of /srv/a.txt"
    payer = make_agent(domain, "payer", tools=("transfer:amount=0..5000",), total_budget=None)
    pipeline = Pipeline(domain)
    for amount, approve, by in ((2500, True, "user:alice"), (3000, False, "user:bob")):
        held = pipeline.decide(payer.request("transfer", amount=amount))
        assert held.effect is Effect.NEEDS_APPROVAL
        pending = domain.store.approvals.list(pending_only=True, now=0)
        domain.decide_approval(pending[0].approval_id, approve=approve, by=by)
    assert pipeline.decide(payer.request("transfer", amount=2500)).allowed
    contained = Contained()
    engine = ResponseEngine(domain)
    engine.observe(contained)
    with engine:
        for _ in range(5):
            assert not pipeline.decide(agent.request("drop_table", table="users")).allowed
        assert contained.event.wait(5.0), "the repeated denials were not contained"
    return domain


@pytest.fixture
def bundle(active: TrustDomain, tmp_path: Path) -> Path:
    write_report(active, load_regime("hipaa"), tmp_path / "report", samples=5)
    return tmp_path / "report"


def evidence(bundle: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((bundle / "report.json").read_text("utf-8"))
    return report["evidence"]  # type: ignore[no-any-return]


def test_the_report_carries_a_fresh_checkpoint_that_verifies(active: TrustDomain,
                                                             bundle: Path) -> None:
    cp_data = evidence(bundle)["audit-checkpoint"]
    assert cp_data["status"] == "ok" and cp_data["data"]["signed_for_this_report"]
    cp = audit.Checkpoint.from_note(cp_data["data"]["note"])
    audit.verify_checkpoint(cp, active.public_key)
    integrity = evidence(bundle)["audit-integrity"]
    assert integrity["status"] == "ok" and integrity["data"]["size"] >= cp.tree_size


def test_sample_records_come_with_inclusion_proofs_that_verify(active: TrustDomain,
                                                               bundle: Path) -> None:
    found = evidence(bundle)
    cp = audit.Checkpoint.from_note(found["audit-checkpoint"]["data"]["note"])
    rows = found["audit-sample"]["data"]["records"]
    assert len(rows) == 5 and all(r["verified"] for r in rows)
    assert {r["record"]["kind"] for r in rows} <= {"decision", "outcome"}
    for row in rows:
        proof = audit.InclusionProof(row["seq"], row["tree_size"],
                                     tuple(bytes.fromhex(h) for h in row["proof"]))
        audit.AuditLog.verify_inclusion(canonical_json(row["record"]), proof, cp.root)
        assert active.audit.get(row["seq"]).record.to_json() == row["record"]


def test_lifetimes_approvals_incidents_and_policy_are_reported(active: TrustDomain,
                                                               bundle: Path) -> None:
    found = evidence(bundle)
    creds = found["credential-lifetimes"]["data"]
    assert creds["configured_ttl_seconds"] == active.config.credential_ttl_seconds
    assert creds["observed"]["jwt-svid"]["count"] == 2
    assert creds["observed"]["jwt-svid"]["max_seconds"] <= active.config.credential_ttl_seconds
    warrants = found["warrant-lifetimes"]["data"]
    assert warrants["minted"]["count"] == 2
    assert warrants["minted"]["max_seconds"] == active.config.warrant_ttl_seconds
    assert warrants["revocations_by_kind"] == {"task": 1}
    approvals = found["approvals"]["data"]
    assert approvals["by_status"]["used"] == 1 and approvals["by_status"]["denied"] == 1
    assert approvals["decided_by"] == {"user:alice": 1, "user:bob": 1}
    incidents = found["incidents"]
    assert incidents["status"] == "ok"
    assert incidents["data"]["metrics"]["time_to_contain"]["count"] == 1
    assert incidents["data"]["recent"][0]["contain_seconds"] is not None
    policy = found["policy-revisions"]["data"]
    assert policy["current"] == active.policies.revision
    assert [o["revision"] for o in policy["observed"]] == [active.policies.revision]


def test_every_rendering_starts_with_the_evidence_not_assurance_statement(bundle: Path) -> None:
    assert (bundle / "report.md").read_text("utf-8").startswith(f"> **{STATEMENT}**")
    html = (bundle / "report.html").read_text("utf-8")
    assert html.split("<body>", 1)[1].lstrip().startswith(
        f'<p class="statement"><strong>{STATEMENT}</strong>')
    assert next(iter(json.loads((bundle / "report.json").read_text("utf-8")))) == "statement"
    assert "45 CFR 164.312(b)" in (bundle / "report.md").read_text("utf-8")


def test_the_bundle_verifies_and_one_changed_byte_does_not(active: TrustDomain,
                                                           bundle: Path) -> None:
    report = verify_report(active.public_key, bundle)
    assert report["regime"]["id"] == "hipaa"
    data = bytearray((bundle / "report.json").read_bytes())
    data[data.index(b'"hipaa"') + 1] ^= 0x01
    (bundle / "report.json").write_bytes(bytes(data))
    with pytest.raises(ComplianceError, match=r"modified: report\.json"):
        verify_report(active.public_key, bundle)


def test_a_resigned_report_with_a_forged_sample_still_fails(active: TrustDomain,
                                                            bundle: Path) -> None:
    report = json.loads((bundle / "report.json").read_text("utf-8"))
    report["evidence"]["audit-sample"]["data"]["records"][0]["record"]["effect"] = "allow-ish"
    (bundle / "report.json").write_text(json.dumps(report), encoding="utf-8")
    identity.sign_bundle(active.keys.signing_key, bundle)
    with pytest.raises(ComplianceError, match="audit evidence does not verify"):
        verify_report(active.public_key, bundle)


def test_a_quiet_domain_reports_no_activity_rather_than_failure(domain: TrustDomain,
                                                                tmp_path: Path) -> None:
    report = write_report(domain, load_regime("eu-ai-act"), tmp_path / "quiet")
    statuses = {k: v["status"] for k, v in report["evidence"].items()}
    assert "failed" not in statuses.values()
    assert statuses["approvals"] == "empty" and statuses["incidents"] == "empty"
    assert statuses["audit-integrity"] == "ok"
    verify_report(domain.public_key, tmp_path / "quiet")


def test_a_report_never_overwrites_an_existing_directory(domain: TrustDomain,
                                                         tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ComplianceError, match="already exists"):
        write_report(domain, load_regime("soc2"), tmp_path / "taken")
