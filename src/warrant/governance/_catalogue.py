"""The control catalogue and the phase list: YAML data (`data/*.yaml`) parsed once.

Pydantic validates the files at the edge (unknown keys are errors); inside,
controls, phases and tiers are frozen values. `Tier` accepts the original
guide's names as aliases ("enterprise" is Advanced) and prints the first names.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import pydantic
import yaml

from warrant.errors import ConfigError

#: The seven control domains, in the framework's order, with their printed titles.
DOMAINS: dict[str, str] = {
    "identity": "Identity & credentials",
    "access": "Access & permissions",
    "io": "Input / output",
    "config": "Configuration integrity",
    "observability": "Observability",
    "monitoring": "Monitoring & response",
    "governance": "Governance",
}

#: Gap order within a tier: the most severe first.
SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


class Tier(enum.IntEnum):
    """The maturity tiers; each includes the one below."""

    FOUNDATION = 1
    ADVANCED = 2
    OPTIMIZED = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Tier:
        """`foundation|advanced|optimized`, or the guide's `enterprise` (Advanced)."""
        key = text.strip().lower()
        # The original guide calls Advanced "Enterprise" and Optimized "Advanced";
        # Warrant's names win where they collide, so "advanced" is Advanced.
        found = {"foundation": cls.FOUNDATION, "enterprise": cls.ADVANCED,
                 "advanced": cls.ADVANCED, "optimized": cls.OPTIMIZED,
                 "optimised": cls.OPTIMIZED}.get(key)
        if found is None:
            raise ConfigError(f"unknown tier `{text}`",
                              hint="use foundation, advanced (alias enterprise) or optimized")
        return found


@dataclass(frozen=True, slots=True)
class Control:
    """One control of the catalogue."""

    id: str
    domain: str
    tier: Tier
    severity: str
    kind: Literal["technical", "organisational"]
    check: str
    title: str
    framework: str
    remedy: str
    #: False when nothing in a Warrant deployment can evidence it today.
    evidence_possible: bool = True
    #: Friction (limits, throttles) is reported but never counts towards a tier.
    friction_only: bool = False


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One checklist item of a phase: checked by a control, by a check, or by hand."""

    id: str
    title: str
    control: str | None = None
    check: str | None = None

    @property
    def manual(self) -> bool:
        return self.control is None and self.check is None


@dataclass(frozen=True, slots=True)
class Phase:
    number: int
    title: str
    items: tuple[PlanItem, ...]


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class _ControlModel(_Strict):
    id: str = pydantic.Field(pattern=r"^[a-z]+\.[a-z0-9\-]+$")
    domain: Literal["identity", "access", "io", "config", "observability", "monitoring",
                    "governance"]
    tier: Literal["foundation", "advanced", "optimized"]
    severity: Literal["critical", "high", "medium", "low"]
    kind: Literal["technical", "organisational"]
    check: str
    title: str
    framework: str
    remedy: str
    evidence: Literal["none"] | None = None
    friction_only: bool = False


class _CatalogueModel(_Strict):
    version: Literal[1]
    controls: list[_ControlModel] = pydantic.Field(min_length=1)


class _ItemModel(_Strict):
    id: str = pydantic.Field(pattern=r"^[a-z0-9]+\.[a-z0-9\-]+$")
    title: str
    control: str | None = None
    check: str | None = None
    manual: bool = False


class _PhaseModel(_Strict):
    id: int = pydantic.Field(ge=1, le=8)
    title: str
    items: list[_ItemModel] = pydantic.Field(min_length=1)


class _PhasesModel(_Strict):
    version: Literal[1]
    phases: list[_PhaseModel] = pydantic.Field(min_length=8, max_length=8)


def _load(name: str, model: type[pydantic.BaseModel]) -> Any:
    text = (resources.files("warrant.governance") / "data" / name).read_text(encoding="utf-8")
    try:
        return model.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, pydantic.ValidationError) as exc:
        raise ConfigError(f"governance data `{name}` is invalid: {exc}") from exc


def _control(m: _ControlModel) -> Control:
    if m.check.startswith("declared.") != (m.kind == "organisational"):
        raise ConfigError(f"control `{m.id}`: organisational controls, and only they, "
                          "are checked by a declaration (`declared.KEY`)")
    if not m.id.startswith(m.domain + "."):
        raise ConfigError(f"control `{m.id}` must start with its domain `{m.domain}.`")
    return Control(id=m.id, domain=m.domain, tier=Tier.parse(m.tier), severity=m.severity,
                   kind=m.kind, check=m.check, title=m.title, framework=m.framework,
                   remedy=m.remedy, evidence_possible=m.evidence is None,
                   friction_only=m.friction_only)


@cache
def catalogue() -> tuple[Control, ...]:
    """Every control, in file order. Raises `ConfigError` if the shipped data is broken."""
    model: _CatalogueModel = _load("controls.yaml", _CatalogueModel)
    controls = tuple(_control(m) for m in model.controls)
    ids = [c.id for c in controls]
    if len(set(ids)) != len(ids):
        raise ConfigError("governance data `controls.yaml` repeats a control id")
    return controls


@cache
def phases() -> tuple[Phase, ...]:
    """The eight phases. Items must name a known control, a check, or be manual."""
    model: _PhasesModel = _load("phases.yaml", _PhasesModel)
    known = {c.id for c in catalogue()}
    result = []
    for p in model.phases:
        items = []
        for i in p.items:
            if sum((i.control is not None, i.check is not None, i.manual)) != 1:
                raise ConfigError(f"plan item `{i.id}` needs exactly one of control, check, manual")
            if i.control is not None and i.control not in known:
                raise ConfigError(f"plan item `{i.id}` names unknown control `{i.control}`")
            items.append(PlanItem(id=i.id, title=i.title, control=i.control, check=i.check))
        result.append(Phase(number=p.id, title=p.title, items=tuple(items)))
    if [p.number for p in result] != list(range(1, 9)):
        raise ConfigError("governance data `phases.yaml` must list phases 1 to 8 in order")
    return tuple(result)
