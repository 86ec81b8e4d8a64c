"""`warrant policy test`: declarative test cases run against a compiled policy set.

Cases live in JSON (`{"case": [ {...}, ... ]}`) or TOML (`[[case]]` tables);
they are parsed with pydantic at the edge, so a bad file fails with the case
and field that are wrong. Each case names a request and the expected effect.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import Any

import pydantic

from warrant.errors import PolicyError
from warrant.policy._policy_set import CompiledPolicy
from warrant.policy._request import PolicyRequest, PolicyResult
from warrant.policy._source import default_pack_tests_text
from warrant.types import Effect, RiskClass

#: Monday 2025-01-06 10:00 UTC: cases are reproducible unless they set `now`.
DEFAULT_NOW = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)


class PolicyTestCase(pydantic.BaseModel):
    """One declarative case: a request and the effect policy must give it."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    name: str
    expect: Effect
    agent: str = "spiffe://example.org/agent/test"
    agent_attrs: dict[str, str] = pydantic.Field(default_factory=dict)
    action: str = "call_tool"
    tool: str = ""
    server: str | None = None
    risk_class: RiskClass = RiskClass.READ_ONLY
    toolsets: tuple[str, ...] = ()
    args: dict[str, Any] = pydantic.Field(default_factory=dict)
    task_id: str = ""
    on_behalf_of: str = ""
    chain: tuple[str, ...] = ()
    labels: frozenset[str] = frozenset()
    arg_labels: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    now: pydantic.AwareDatetime = DEFAULT_NOW
    risk_score: int = 0
    budget_remaining: int = 0
    target: str = ""
    target_attrs: dict[str, str] = pydantic.Field(default_factory=dict)
    #: When given, the determining policy ids must be exactly these (any order).
    expect_policies: tuple[str, ...] | None = None

    def to_request(self) -> PolicyRequest:
        return PolicyRequest(
            agent=self.agent,
            agent_attrs=self.agent_attrs,
            action=self.action,
            tool=self.tool,
            server=self.server,
            risk_class=self.risk_class,
            toolsets=self.toolsets,
            arguments=self.args,
            task_id=self.task_id,
            on_behalf_of=self.on_behalf_of,
            chain=self.chain,
            labels=self.labels,
            arg_labels=self.arg_labels,
            sources=self.sources,
            now=self.now,
            risk_score=self.risk_score,
            budget_remaining=self.budget_remaining,
            target=self.target,
            target_attrs=self.target_attrs,
        )


class _CaseFile(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    case: list[PolicyTestCase]


@dataclass(frozen=True, slots=True)
class PolicyTestResult:
    """The outcome of one case: what was expected, what policy said, and why."""

    name: str
    passed: bool
    expected: Effect
    actual: Effect | None
    message: str
    result: PolicyResult | None = None


def load_policy_tests(source: str | PathLike[str] | tuple[str, str]) -> list[PolicyTestCase]:
    """Parse a test file (a path, or a `(name, text)` pair); `.toml` names are TOML, else JSON."""
    if isinstance(source, tuple):
        name, text = source
    else:
        name = str(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"cannot read policy tests `{name}`: {exc}") from exc
    try:
        data = tomllib.loads(text) if name.endswith(".toml") else json.loads(text)
        return _CaseFile.model_validate(data).case
    except (ValueError, tomllib.TOMLDecodeError) as exc:  # pydantic's error is a ValueError
        raise PolicyError(f"invalid policy tests `{name}`: {exc}") from exc


def default_pack_tests() -> list[PolicyTestCase]:
    """The default pack's own test cases."""
    return load_policy_tests(("pack/tests.json", default_pack_tests_text()))


def _run_one(policy_set: CompiledPolicy, case: PolicyTestCase) -> PolicyTestResult:
    try:
        request = case.to_request()
    except ValueError as exc:
        return PolicyTestResult(case.name, False, case.expect, None, f"invalid request: {exc}")
    result = policy_set.evaluate(request)
    why = "; ".join(r.message for r in result.reasons)
    if result.effect is not case.expect:
        message = f"expected {case.expect.value}, got {result.effect.value}: {why}"
        return PolicyTestResult(case.name, False, case.expect, result.effect, message, result)
    expected_ids = case.expect_policies
    if expected_ids is not None and sorted(expected_ids) != sorted(result.policy_ids):
        message = f"expected policies {sorted(expected_ids)}, got {sorted(result.policy_ids)}"
        return PolicyTestResult(case.name, False, case.expect, result.effect, message, result)
    return PolicyTestResult(case.name, True, case.expect, result.effect, why, result)


def run_policy_tests(
    policy_set: CompiledPolicy, cases: Sequence[PolicyTestCase]
) -> list[PolicyTestResult]:
    """Evaluate every case against `policy_set`, in order; never raises for a failing case."""
    return [_run_one(policy_set, case) for case in cases]
