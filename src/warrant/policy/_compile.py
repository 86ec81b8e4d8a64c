"""Compiling policy sources: parse, validate against the schema, index, hash.

Every problem becomes a `PolicyFinding` naming the file, line and policy, so
`load_policy_set` can refuse to start and `warrant policy check` can list them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import cedarpy

from warrant.policy._source import Source, Statement, split_statements
from warrant.types import canonical_json, sha256_hex

NEEDS_APPROVAL = "needs-approval"


@dataclass(frozen=True, slots=True)
class PolicyFinding:
    """One problem `warrant policy check` reports: an error refuses the set, a warning does not."""

    severity: Literal["error", "warning"]
    message: str
    policy_id: str | None = None
    source: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}: " if self.source and self.line else ""
        policy = f"policy `{self.policy_id}`: " if self.policy_id else ""
        return f"{self.severity}: {where}{policy}{self.message}"


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """What evaluation needs to know about one policy, by its Cedar id."""

    label: str  # the `@id` annotation, else the positional Cedar id
    effect: Literal["permit", "forbid"]
    needs_approval: bool
    source: str | None
    line: int | None
    est: Mapping[str, Any] = field(hash=False, compare=False)

    @property
    def is_hold(self) -> bool:
        """A forbid a human may lift: `@effect("needs-approval") forbid (...)`."""
        return self.needs_approval and self.effect == "forbid"


@dataclass(slots=True)
class Compiled:
    """The result of compiling: handles and index when there are no errors, plus findings."""

    findings: list[PolicyFinding]
    policies: cedarpy.PolicySet | None = None
    schema: cedarpy.Schema | None = None
    info: dict[str, PolicyInfo] = field(default_factory=dict)
    revision: str = ""
    #: The same set without its hold forbids (None when it has none): asked when
    #: only hold forbids matched, to learn whether a human may lift them.
    without_holds: cedarpy.PolicySet | None = None


def _error(
    message: str, stmt: Statement | None = None, policy_id: str | None = None
) -> PolicyFinding:
    return PolicyFinding(
        "error",
        message,
        policy_id=policy_id,
        source=stmt.source if stmt else None,
        line=stmt.line if stmt else None,
    )


def _parse(statements: list[Statement]) -> tuple[cedarpy.PolicySet | None, list[PolicyFinding]]:
    text = "\n".join(s.text for s in statements)
    try:
        return cedarpy.PolicySet.from_str(text), []
    except ValueError as exc:
        whole = str(exc)
    # Cedar does not say where: parse statement by statement to find the culprit.
    findings = []
    for stmt in statements:
        try:
            cedarpy.PolicySet.from_str(stmt.text)
        except ValueError as exc:
            findings.append(_error(f"syntax error: {exc}", stmt))
    return None, findings or [_error(f"syntax error: {whole}")]


def _index(est: Mapping[str, Any], statements: list[Statement]) -> dict[str, PolicyInfo]:
    located = len(statements) == len(est)
    info = {}
    for position, (pid, policy) in enumerate(sorted(est.items(), key=lambda kv: _order(kv[0]))):
        annotations = policy.get("annotations") or {}
        stmt = statements[position] if located else None
        info[pid] = PolicyInfo(
            label=str(annotations.get("id") or pid),
            effect="forbid" if policy.get("effect") == "forbid" else "permit",
            needs_approval=annotations.get("effect") == NEEDS_APPROVAL,
            source=stmt.source if stmt else None,
            line=stmt.line if stmt else None,
            est=policy,
        )
    return info


def _order(pid: str) -> tuple[int, str]:
    digits = pid.removeprefix("policy")
    return (int(digits), pid) if digits.isdigit() else (1 << 62, pid)


def _annotation_findings(info: Mapping[str, PolicyInfo]) -> list[PolicyFinding]:
    findings = []
    seen: dict[str, str] = {}
    for pid, policy in info.items():
        where = Statement(policy.source or "", policy.line or 0, "") if policy.source else None
        effect = (policy.est.get("annotations") or {}).get("effect")
        if effect is not None and effect != NEEDS_APPROVAL:
            findings.append(
                _error(f'unknown @effect("{effect}"); only "{NEEDS_APPROVAL}"', where, policy.label)
            )
        if policy.label in seen and policy.label != pid:
            findings.append(_error(f"duplicate @id `{policy.label}`", where, policy.label))
        seen[policy.label] = pid
    return findings


def compile_sources(sources: list[Source], schema_text: str, schema_name: str) -> Compiled:
    """Parse, validate and index `sources` against the schema; never raises for bad input."""
    try:
        schema = cedarpy.Schema.from_str(schema_text)
    except ValueError as exc:
        return Compiled([PolicyFinding("error", f"invalid schema: {exc}", source=schema_name)])
    statements = [s for name, text in sources for s in split_statements(name, text)]
    if not statements:
        names = ", ".join(f"`{n}`" for n, _ in sources) or "no files"
        return Compiled(
            [
                _error(
                    f"no policies loaded ({names}): default deny would refuse every call; "
                    "load the default pack or write at least one permit"
                )
            ]
        )
    policies, findings = _parse(statements)
    if policies is None:
        return Compiled(findings)
    text = "\n".join(s.text for s in statements)
    est = json.loads(cedarpy.policies_to_json_str(text))
    if est.get("templates"):
        return Compiled([_error("policy templates (`?principal`, `?resource`) are not supported")])
    info = _index(est.get("staticPolicies") or {}, statements)
    findings = _annotation_findings(info)
    validation = cedarpy.validate_policies(text, schema)
    for problem in validation.errors:
        policy = info.get(problem.policy_id)
        where = (
            Statement(policy.source, policy.line, "")
            if policy and policy.source and policy.line
            else None
        )
        label = policy.label if policy else (problem.policy_id or None)
        findings.append(_error(f"does not match the schema: {problem.error}", where, label))
    if not validation.validation_passed and not validation.errors:
        findings.append(_error("validation against the schema failed"))
    if findings:
        return Compiled(findings, info=info)
    canonical = {"policies": est, "schema": str(schema)}
    revision = "sha256:" + sha256_hex(canonical_json(canonical))[:16]
    return Compiled([], policies, schema, info, revision, _without_holds(info, statements))


def _without_holds(info: Mapping[str, PolicyInfo],
                   statements: list[Statement]) -> cedarpy.PolicySet | None:
    """The policy set minus every `@effect("needs-approval")` forbid (a hold)."""
    ordered = sorted(info.items(), key=lambda kv: _order(kv[0]))
    if not any(p.is_hold for _, p in ordered):
        return None
    if len(ordered) != len(statements):  # cannot tell which text is which: never lift holds
        return cedarpy.PolicySet.from_str('forbid (principal, action, resource);')
    kept = [stmt.text for (_, p), stmt in zip(ordered, statements, strict=True) if not p.is_hold]
    return cedarpy.PolicySet.from_str("\n".join(kept)) if kept else (
        cedarpy.PolicySet.from_str('forbid (principal, action, resource);'))
