"""Shared helpers for policy tests: small policy sets and requests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from warrant.policy import CompiledPolicy, PolicyRequest, load_policy_set
from warrant.types import RiskClass

NOON = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
AGENT = "spiffe://example.org/agent/tester"
CALL = 'action == Warrant::Action::"call_tool"'


def compile_text(text: str) -> CompiledPolicy:
    return load_policy_set([("test.cedar", text)])


def call(
    tool: str = "search", risk_class: RiskClass = RiskClass.READ_ONLY, **kw: Any
) -> PolicyRequest:
    kw.setdefault("now", NOON)
    kw.setdefault("agent", AGENT)
    return PolicyRequest(tool=tool, risk_class=risk_class, **kw)
