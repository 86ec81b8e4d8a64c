"""The assessment: every control checked against one evidence snapshot, then tiers and gaps.

`assess(evidence)` is pure. A domain reaches a tier when every counted control
of that tier and the tiers below is met (technical), declared (organisational)
or not applicable; friction-only controls are reported but never counted. The
overall tier is the lowest domain tier. Gaps are the unmet controls of each
domain's next tier (or, with a target, of every tier up to it), ordered by
the domain's current tier, then severity, then catalogue order.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._catalogue import DOMAINS, SEVERITY_RANK, Control, Tier, catalogue
from ._checks import ControlResult, Status, resolve
from ._evidence import Evidence


@dataclass(frozen=True, slots=True)
class Assessed:
    control: Control
    result: ControlResult

    @property
    def counts(self) -> bool:
        return not self.control.friction_only


@dataclass(frozen=True, slots=True)
class DomainTier:
    domain: str
    title: str
    #: None: below Foundation.
    tier: Tier | None
    satisfied: int
    counted: int


@dataclass(frozen=True, slots=True)
class Assessment:
    evidence: Evidence
    controls: tuple[Assessed, ...]
    domains: tuple[DomainTier, ...]
    overall: Tier | None
    gaps: tuple[Assessed, ...]
    target: Tier | None

    def domain_tier(self, domain: str) -> Tier | None:
        return next(d.tier for d in self.domains if d.domain == domain)


def run_check(control: Control, evidence: Evidence) -> ControlResult:
    result = resolve(control.check)(evidence)
    if not control.evidence_possible and result.status is not Status.NOT_MET:
        # INVARIANT: a control Warrant cannot evidence is never reported as met.
        raise AssertionError(f"check of `{control.id}` claims evidence that cannot exist")
    return result


def _tier(results: list[Assessed]) -> Tier | None:
    reached: Tier | None = None
    for tier in Tier:
        if all(a.result.satisfied for a in results if a.counts and a.control.tier <= tier):
            reached = tier
        else:
            break
    return reached


def assess(evidence: Evidence, *, target: Tier | None = None,
           controls: tuple[Control, ...] | None = None) -> Assessment:
    """Check every control; the tier per domain, overall, and the prioritised gaps."""
    assessed = tuple(Assessed(c, run_check(c, evidence)) for c in (controls or catalogue()))
    domains = []
    for name, title in DOMAINS.items():
        mine = [a for a in assessed if a.control.domain == name]
        counted = [a for a in mine if a.counts]
        domains.append(DomainTier(name, title, _tier(mine),
                                  sum(a.result.satisfied for a in counted), len(counted)))
    tiers = [d.tier for d in domains]
    overall = None if None in tiers else min(t for t in tiers if t is not None)
    current = {d.domain: (d.tier or 0) for d in domains}

    def wanted(a: Assessed) -> bool:
        if not a.counts or a.result.satisfied:
            return False
        if target is not None:
            return a.control.tier <= target
        return a.control.tier <= current[a.control.domain] + 1

    order = {c.id: i for i, c in enumerate(catalogue())}
    gaps = sorted((a for a in assessed if wanted(a)), key=lambda a: (
        current[a.control.domain], a.control.tier, SEVERITY_RANK[a.control.severity],
        order.get(a.control.id, len(order))))
    return Assessment(evidence, assessed, tuple(domains), overall, tuple(gaps), target)
