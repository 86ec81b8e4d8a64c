"""`assess`: the weak and strong fixture deployments give the expected tiers, gaps and results."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest

from warrant.errors import ConfigError
from warrant.governance import Status, Tier, assess, catalogue, load_regimes
from warrant.governance._assess import run_check
from warrant.governance._evidence import Evidence, GatewayFacts, ServerFact
from warrant.governance._governance_file import Declaration
from warrant.governance._report import to_html, to_json, to_markdown

F, A, OPT = Tier.FOUNDATION, Tier.ADVANCED, Tier.OPTIMIZED
MET, NOT, DECLARED, NA = Status.MET, Status.NOT_MET, Status.DECLARED, Status.NOT_APPLICABLE
#: Controls nothing in a Warrant deployment can evidence today: never met, on any fixture.
NO_EVIDENCE = {"identity.mtls-required", "identity.hsm-keys", "identity.remote-attestation",
               "identity.hardware-bound-credentials", "access.hardware-isolation",
               "config.attested-images", "config.replace-not-patch",
               "observability.replicated-logs", "observability.otel-tracing",
               "observability.siem-streaming", "observability.provenance-replay",
               "monitoring.drift-detection"}
#: Expected status of every control: (on the strong fixture, on the weak fixture).
EXPECTED: dict[str, tuple[Status, Status]] = {
    "identity.per-agent-key": (MET, NOT),
    "identity.id-in-every-request": (MET, MET),
    "identity.short-lived-credentials": (MET, NOT),
    "identity.no-embedded-credentials": (MET, NOT),
    "identity.x509-certificates": (MET, NOT),
    "identity.rotation-revocation": (MET, NOT),
    "access.default-deny": (MET, NOT),
    "access.roles-match-functions": (MET, NOT),
    "access.identity-based-isolation": (MET, NOT),
    "access.periodic-review": (DECLARED, NOT),
    "access.call-limits": (MET, MET),
    "access.abac": (MET, MET),
    "access.task-scoped-elevation": (MET, NOT),
    "access.sandbox-per-agent": (MET, NOT),
    "access.continuous-authorisation": (MET, NOT),
    "access.jit-grants": (MET, NOT),
    "io.input-validation": (MET, MET),
    "io.output-dlp": (MET, NOT),
    "io.injection-filters": (MET, NOT),
    "io.exfiltration-analysis": (MET, NOT),
    # The strong fixture selects the classifier; met only where it is installed.
    "io.trained-classifier": (MET, NOT),
    "io.spotlighting": (MET, NOT),
    "io.human-approval": (MET, MET),
    "config.version-control": (MET, NOT),
    "config.change-review": (DECLARED, NOT),
    "config.signed-config": (MET, NOT),
    "observability.actions-logged": (MET, MET),
    "observability.request-id": (MET, MET),
    "observability.verifiable-log": (MET, NOT),
    "monitoring.threshold-alerts": (MET, MET),
    "monitoring.automated-triage": (MET, NOT),
    "monitoring.manual-baselines": (DECLARED, NOT),
    "monitoring.learned-baselines": (MET, MET),
    "monitoring.auto-containment": (MET, MET),
    "monitoring.graduated-playbooks": (MET, MET),
    "monitoring.coordinated-containment": (NOT, NOT),
    "governance.acceptable-use": (DECLARED, NOT),
    "governance.named-approver": (DECLARED, NOT),
    "governance.incident-response": (DECLARED, NOT),
    "governance.agent-approval": (DECLARED, NOT),
    "governance.risk-assessments": (DECLARED, NOT),
    "governance.regular-reviews": (DECLARED, NOT),
    "governance.committee": (DECLARED, NOT),
    "governance.pipeline-policy-checks": (DECLARED, NOT),
    "governance.violation-detection": (MET, NOT),
    "governance.compliance-metrics": (MET, NOT),
    "governance.decision-trail": (MET, NOT),
    **dict.fromkeys(NO_EVIDENCE, (NOT, NOT)),
}
CONTROLS = {c.id: c for c in catalogue()}


def test_every_catalogue_control_is_in_the_parametrised_tests() -> None:
    assert set(EXPECTED) == set(CONTROLS)


def test_controls_without_possible_evidence_are_marked_so_in_the_catalogue() -> None:
    assert {c.id for c in catalogue() if not c.evidence_possible} == NO_EVIDENCE


def test_every_cell_of_the_framework_table_has_controls() -> None:
    cells = {(c.domain, c.tier) for c in catalogue() if not c.friction_only}
    assert len(cells) == 7 * 3


@pytest.mark.parametrize("control_id", sorted(EXPECTED))
def test_each_control_on_the_strong_and_weak_deployments(
        control_id: str, strong_evidence: Evidence, weak_evidence: Evidence) -> None:
    control = CONTROLS[control_id]
    on_strong, on_weak = EXPECTED[control_id]
    if control_id == "io.trained-classifier" and strong_evidence.classifier_missing:
        on_strong = NOT
    strong = run_check(control, strong_evidence)
    weak = run_check(control, weak_evidence)
    assert (strong.status, weak.status) == (on_strong, on_weak), (strong, weak)
    for result in (strong, weak):
        assert result.evidence
        assert (result.status is NOT) == bool(result.reason)
    if control_id in NO_EVIDENCE:
        assert strong.reason.startswith("Warrant found no evidence of")


def test_the_strong_deployment_reaches_the_expected_tiers(strong_evidence: Evidence) -> None:
    result = assess(strong_evidence)
    io = OPT if not strong_evidence.classifier_missing else A
    assert {d.domain: d.tier for d in result.domains} == {
        "identity": F, "access": A, "io": io, "config": A, "observability": F,
        "monitoring": A, "governance": OPT}
    assert result.overall is F
    # The gaps to the next tier are what cannot be evidenced yet, plus coordinated containment.
    assert [g.control.id for g in result.gaps][:3] == [
        "identity.mtls-required", "observability.replicated-logs", "observability.otel-tracing"]
    assert {g.control.id for g in result.gaps} <= NO_EVIDENCE | {
        "monitoring.coordinated-containment"}


def test_the_weak_deployment_is_below_foundation_with_prioritised_gaps(
        weak_evidence: Evidence) -> None:
    result = assess(weak_evidence)
    assert result.overall is None
    assert {d.domain: d.tier for d in result.domains} == {
        "identity": None, "access": None, "io": None, "config": None, "observability": F,
        "monitoring": None, "governance": None}
    gaps = [g.control.id for g in result.gaps]
    # Below-foundation domains first, critical first; then the observability domain's next tier.
    assert gaps[:4] == ["identity.per-agent-key", "identity.short-lived-credentials",
                        "identity.no-embedded-credentials", "access.default-deny"]
    assert gaps[-3:] == ["observability.verifiable-log", "observability.replicated-logs",
                         "observability.otel-tracing"]
    assert "access.call-limits" not in gaps  # friction never counts
    by_id = {g.control.id: g for g in result.gaps}
    remedy = by_id["identity.short-lived-credentials"].control.remedy
    assert "credential_ttl_seconds` <= 900" in remedy
    assert "governance.toml" in by_id["governance.acceptable-use"].control.remedy


def test_a_target_lists_every_gap_up_to_that_tier(weak_evidence: Evidence) -> None:
    result = assess(weak_evidence, target=Tier.parse("enterprise"))
    tiers = {g.control.tier for g in result.gaps}
    assert tiers == {F, A}
    assert "config.signed-config" in {g.control.id for g in result.gaps}


def test_tier_names_accept_the_guides_aliases_and_print_the_first() -> None:
    assert Tier.parse("Enterprise") is Tier.ADVANCED
    assert Tier.parse("optimised") is Tier.OPTIMIZED
    assert Tier.ADVANCED.label == "advanced"
    with pytest.raises(ConfigError, match="unknown tier"):
        Tier.parse("gold")


def test_a_friction_only_control_never_decides_a_tier(strong_evidence: Evidence) -> None:
    without_gateway_limits = dataclasses.replace(strong_evidence, gateway=dataclasses.replace(
        _gateway(strong_evidence), limits=()))
    assert assess(without_gateway_limits).domain_tier("access") is A
    assert all(c.friction_only for c in catalogue() if c.id == "access.call-limits")


def _gateway(ev: Evidence) -> GatewayFacts:
    assert ev.gateway is not None
    return ev.gateway


def test_only_remote_servers_make_the_sandbox_not_applicable(strong_evidence: Evidence) -> None:
    remote = dataclasses.replace(_gateway(strong_evidence), servers=(
        ServerFact(name="search", transport="http", sandboxed=False, embedded_secrets=()),))
    result = run_check(CONTROLS["access.sandbox-per-agent"],
                       dataclasses.replace(strong_evidence, gateway=remote))
    assert result.status is NA
    assert result.satisfied


def test_a_gateway_config_changed_after_signing_fails_signed_config(
        strong_evidence: Evidence) -> None:
    tampered = dataclasses.replace(_gateway(strong_evidence), signature="invalid",
                                   signature_detail="does not match its signature")
    result = run_check(CONTROLS["config.signed-config"],
                       dataclasses.replace(strong_evidence, gateway=tampered))
    assert result.status is NOT
    assert "does not verify" in result.reason


def test_a_declaration_is_reported_as_declared_never_verified(strong_evidence: Evidence) -> None:
    result = run_check(CONTROLS["governance.named-approver"], strong_evidence)
    assert result.status is DECLARED
    assert "owner user:alice" in result.evidence
    assert "(not verified)" in result.evidence
    empty = dataclasses.replace(strong_evidence, governance=dataclasses.replace(
        strong_evidence.governance, declarations=MappingProxyType(
            {"committee": Declaration("committee", "user:bob", "doc")})))
    assert run_check(CONTROLS["governance.named-approver"], empty).status is NOT


def test_every_control_a_compliance_regime_maps_is_in_the_catalogue() -> None:
    mapped = {m.control for regime in load_regimes() for m in regime.mappings}
    assert mapped <= set(CONTROLS)


def test_reports_carry_every_control_and_escape_html(weak_evidence: Evidence) -> None:
    hostile = dataclasses.replace(weak_evidence, home="<script>alert(1)</script>")
    result = assess(hostile)
    data = to_json(result)
    assert data["version"] == 1
    assert {c["id"] for c in data["controls"]} == set(CONTROLS)
    assert [g["priority"] for g in data["gaps"]] == list(range(1, len(data["gaps"]) + 1))
    page = to_html(result)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert "| Governance | below foundation | 0/11 |" in to_markdown(result)
