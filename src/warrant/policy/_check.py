"""`warrant policy check`: compile errors plus warnings about risky permits.

A warning does not stop a policy set from loading; it points at a permit that
is probably wider than its author meant.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from warrant.policy._compile import PolicyFinding, PolicyInfo
from warrant.policy._policy_set import compile_from
from warrant.policy._source import Sources
from warrant.types import RiskClass

HIGH_RISK = frozenset({RiskClass.DESTRUCTIVE, RiskClass.MONEY_MOVEMENT, RiskClass.CODE_EXECUTION})
_HIGH_RISK_VALUES = frozenset(r.value for r in HIGH_RISK)


def _risk_classes_only(body: Any) -> set[str] | None:
    """The risk classes a condition selects, if it constrains nothing but `resource.risk_class`."""
    if not isinstance(body, Mapping) or len(body) != 1:
        return None
    ((op, arg),) = body.items()
    if op == "==" and isinstance(arg, Mapping):
        left, right = arg.get("left"), arg.get("right")
        attr = {".": {"left": {"Var": "resource"}, "attr": "risk_class"}}
        if left == attr and isinstance(right, Mapping) and isinstance(right.get("Value"), str):
            return {right["Value"]}
        return None
    if op in {"||", "&&"} and isinstance(arg, Mapping):
        left, right = _risk_classes_only(arg.get("left")), _risk_classes_only(arg.get("right"))
        if left is None or right is None:
            return None
        return left | right if op == "||" else left & right
    return None


def _applies_to_tools(action: Mapping[str, Any]) -> bool:
    if action.get("op") == "All":
        return True
    entities = [action.get("entity"), *(action.get("entities") or [])]
    return any(isinstance(e, Mapping) and e.get("id") == "call_tool" for e in entities)


def _warnings(policy: PolicyInfo) -> list[str]:
    est, found = policy.est, []
    if "id" not in (est.get("annotations") or {}):
        found.append(
            "has no @id: decisions will cite a positional id that changes when policies move"
        )
    if policy.effect != "permit":
        return found
    scope = [(est.get(k) or {}).get("op") for k in ("principal", "action", "resource")]
    conditions = list(est.get("conditions") or [])
    if not conditions and scope == ["All", "All", "All"]:
        found.append("permits every action on every resource for every agent")
        return found
    action = est.get("action") or {}
    if not conditions and scope[2] == "All" and _applies_to_tools(action):
        found.append("permits every tool with no condition")
    # A permit that needs a human's approval is gated; do not flag its breadth.
    if (
        not policy.needs_approval
        and conditions
        and all(c.get("kind") == "when" for c in conditions)
    ):
        classes = [_risk_classes_only(c.get("body")) for c in conditions]
        if all(c is not None for c in classes):
            risky = sorted(
                set.intersection(*[c for c in classes if c is not None]) & _HIGH_RISK_VALUES
            )
            if risky:
                names = ", ".join(f"`{r}`" for r in risky)
                found.append(f"permits every {names} tool with no other condition")
    return found


def check_policies(sources: Sources, *, schema: str | None = None) -> list[PolicyFinding]:
    """Every problem in `sources`: errors (parse, schema, annotations), then warnings."""
    compiled = compile_from(sources, schema)
    findings = list(compiled.findings)
    for policy in compiled.info.values():
        for message in _warnings(policy):
            findings.append(
                PolicyFinding(
                    "warning",
                    message,
                    policy_id=policy.label,
                    source=policy.source,
                    line=policy.line,
                )
            )
    return findings
