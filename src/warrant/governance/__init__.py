"""Governance: the evidence a trust domain gives about itself.

`build_bom` writes the AI bill of materials (CycloneDX 1.6): agents and their
declared models, MCP servers with pinned tool digests, the Python packages of
the deployment, and the policies with their revision.

`write_report` writes a signed compliance evidence bundle for one regime
(`load_regime`): requirement-to-control mappings kept as data, with evidence
gathered from the running domain. Evidence, never legal assurance.

`assess(collect_evidence(domain, governance=...))` checks the live deployment
against every control of the framework's seven domains and three tiers
(`catalogue()`): the tier per domain, the overall tier and the prioritised gaps.
`plan_status` walks the eight implementation phases, with progress kept in
`governance.db` (`PlanStore`).
"""

from ._assess import Assessment, assess
from ._bom import (
    BomFormat,
    McpServerSpec,
    ModelDeclaration,
    build_bom,
    declared_models,
    load_model_declarations,
    render_bom,
)
from ._catalogue import Control, Phase, Tier, catalogue, phases
from ._checks import ControlResult, Status
from ._compliance import (
    EVIDENCE_KINDS,
    STATEMENT,
    ComplianceError,
    Regime,
    RequirementMapping,
    load_regime,
    load_regimes,
    regime_ids,
)
from ._compliance_report import build_report, verify_report, write_report
from ._evidence import collect as collect_evidence
from ._governance_file import load_governance
from ._plan import PlanStore, mark_done, next_actions, undo
from ._plan import status as plan_status

__all__ = [
    "EVIDENCE_KINDS",
    "STATEMENT",
    "Assessment",
    "BomFormat",
    "ComplianceError",
    "Control",
    "ControlResult",
    "McpServerSpec",
    "ModelDeclaration",
    "Phase",
    "PlanStore",
    "Regime",
    "RequirementMapping",
    "Status",
    "Tier",
    "assess",
    "build_bom",
    "build_report",
    "catalogue",
    "collect_evidence",
    "declared_models",
    "load_governance",
    "load_model_declarations",
    "load_regime",
    "load_regimes",
    "mark_done",
    "next_actions",
    "phases",
    "plan_status",
    "regime_ids",
    "render_bom",
    "undo",
    "verify_report",
    "write_report",
]
