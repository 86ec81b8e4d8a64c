"""Cedar gets only the context attributes policies mention, and never loses one they read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from warrant.policy import PolicyRequest, load_policy_set
from warrant.types import Effect, RiskClass

PERMIT = '@id("p") permit (principal, action == Warrant::Action::"call_tool", resource);\n'


@pytest.mark.claim("policy.forbid-wins")
def test_a_forbid_guarded_by_has_still_sees_the_attribute_it_tests() -> None:
    forbid = ('@id("f") forbid (principal, action, resource) '
              'when { context has budget_remaining && context.budget_remaining < 5 };')
    compiled = load_policy_set([("p.cedar", PERMIT + forbid)])
    assert "budget_remaining" in compiled.context_keys
    request = PolicyRequest(agent="spiffe://a.example/agent/x", tool="t",
                            risk_class=RiskClass.READ_ONLY, budget_remaining=1,
                            now=datetime(2026, 1, 5, 10, tzinfo=UTC))
    assert compiled.evaluate(request).effect is Effect.DENY


def test_attributes_no_policy_mentions_are_not_sent() -> None:
    compiled = load_policy_set([("p.cedar", PERMIT)])
    assert compiled.context_keys == frozenset()
    request = PolicyRequest(agent="spiffe://a.example/agent/x", tool="t",
                            risk_class=RiskClass.READ_ONLY)
    assert compiled.evaluate(request).effect is Effect.ALLOW
