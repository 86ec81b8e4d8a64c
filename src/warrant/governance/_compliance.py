"""Compliance regimes as data: which requirements Warrant's controls produce evidence for.

Each regime is one YAML file in `data/regimes/` (the file name is its id). A
mapping names the requirement, the public document and section it comes from,
the Warrant control that supports it and the kinds of evidence the report
gathers for it. Files are parsed once at the edge with pydantic, then frozen.

INVARIANT: a mapping is evidence that a control runs, never a claim of
compliance; every rendering of a report starts with `STATEMENT`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from warrant.errors import ConfigError

STATEMENT = ("This report is evidence gathered from a running Warrant deployment; it is not "
             "legal assurance or a certification of compliance.")

#: The evidence kinds the collector gathers (see `_compliance_evidence`), in report order.
EVIDENCE_KINDS: tuple[str, ...] = (
    "audit-integrity", "audit-checkpoint", "audit-sample", "credential-lifetimes",
    "warrant-lifetimes", "approvals", "incidents", "policy-revisions", "data-flow",
    "signed-config",
)

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
_CONTROL = re.compile(r"^[a-z]+\.[a-z0-9-]+$")


class ComplianceError(ConfigError):
    """A regime file is invalid, a regime is unknown, or a report bundle does not verify."""

    code = "compliance.invalid"


@dataclass(frozen=True, slots=True)
class RequirementMapping:
    """One requirement of a regime and the Warrant control and evidence that support it."""

    requirement: str
    title: str
    source: str
    control: str
    evidence: tuple[str, ...]
    rationale: str

    def to_json(self) -> dict[str, Any]:
        return {"requirement": self.requirement, "title": self.title, "source": self.source,
                "control": self.control, "evidence": list(self.evidence),
                "rationale": self.rationale}


@dataclass(frozen=True, slots=True)
class Regime:
    """A regime: its document, scope note and mappings."""

    id: str
    name: str
    document: str
    url: str | None
    scope: str
    mappings: tuple[RequirementMapping, ...]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "document": self.document, "url": self.url,
                "scope": self.scope, "mappings": [m.to_json() for m in self.mappings]}


class _MappingModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    requirement: str = Field(min_length=1, max_length=120)
    title: str = Field(min_length=1, max_length=300)
    source: str = Field(min_length=1, max_length=300)
    control: str = Field(min_length=3, max_length=80)
    evidence: tuple[str, ...] = Field(min_length=1)
    rationale: str = Field(min_length=1, max_length=400)

    @field_validator("control")
    @classmethod
    def _control(cls, value: str) -> str:
        if not _CONTROL.match(value):
            raise ValueError("must look like `domain.control-name`")
        return value

    @field_validator("evidence")
    @classmethod
    def _evidence(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(EVIDENCE_KINDS))
        if unknown:
            raise ValueError(f"unknown evidence kind(s) {', '.join(unknown)}; known: "
                             f"{', '.join(EVIDENCE_KINDS)}")
        return value


class _RegimeModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str = Field(min_length=1, max_length=120)
    document: str = Field(min_length=1, max_length=400)
    url: str | None = None
    scope: str = Field(min_length=1, max_length=600)
    mappings: tuple[_MappingModel, ...] = Field(min_length=4)


def _regime_files() -> dict[str, str]:
    folder = resources.files("warrant.governance") / "data" / "regimes"
    return {entry.name.removesuffix(".yaml"): entry.read_text(encoding="utf-8")
            for entry in folder.iterdir() if entry.name.endswith(".yaml")}


def parse_regime(regime_id: str, text: str) -> Regime:
    """Parse and validate one regime file's text. Raises `ComplianceError`."""
    try:
        raw = yaml.safe_load(text)
        model = _RegimeModel.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ComplianceError(f"regime `{regime_id}` is not valid YAML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"`{'.'.join(str(p) for p in e['loc'])}` {e['msg']}"
                             for e in exc.errors())
        raise ComplianceError(f"regime `{regime_id}` is invalid: {problems}") from exc
    if model.id != regime_id or not _ID.match(model.id):
        raise ComplianceError(f"regime file `{regime_id}.yaml` declares id `{model.id}`")
    mappings = tuple(RequirementMapping(requirement=m.requirement, title=m.title, source=m.source,
                             control=m.control, evidence=m.evidence, rationale=m.rationale)
                     for m in model.mappings)
    return Regime(id=model.id, name=model.name, document=model.document, url=model.url,
                  scope=" ".join(model.scope.split()), mappings=mappings)


def regime_ids() -> list[str]:
    """The ids of every regime shipped with Warrant, sorted."""
    return sorted(_regime_files())


def load_regime(regime_id: str) -> Regime:
    """The regime with this id. Raises `ComplianceError` naming the known ones."""
    files = _regime_files()
    key = regime_id.strip().lower()
    if key not in files:
        raise ComplianceError(f"unknown regime `{regime_id}` (known: {', '.join(sorted(files))})",
                              hint="list them with `warrant compliance regimes`")
    return parse_regime(key, files[key])


def load_regimes() -> list[Regime]:
    """Every shipped regime, sorted by id."""
    return [parse_regime(rid, text) for rid, text in sorted(_regime_files().items())]
