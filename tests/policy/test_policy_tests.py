"""`warrant policy test`: declarative cases, the default pack's own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from warrant.errors import PolicyError
from warrant.policy import (
    CompiledPolicy,
    default_pack_tests,
    load_policy_tests,
    run_policy_tests,
)
from warrant.types import Effect

from .helpers import CALL, compile_text


@pytest.mark.claim("policy.default-deny")
def test_the_default_pack_passes_its_own_tests(pack: CompiledPolicy) -> None:
    results = run_policy_tests(pack, default_pack_tests())
    assert results
    assert [r.message for r in results if not r.passed] == []
    assert {r.actual for r in results} == {Effect.ALLOW, Effect.DENY, Effect.NEEDS_APPROVAL}


TOML_CASES = """
[[case]]
name = "reads pass"
tool = "search"
expect = "allow"

[[case]]
name = "writes wrongly expected to pass"
tool = "write_file"
risk_class = "write"
args = { path = "/etc/passwd" }
expect = "allow"
"""


def test_toml_cases_run_and_report_a_failing_expectation(tmp_path: Path) -> None:
    file = tmp_path / "cases.toml"
    file.write_text(TOML_CASES)
    policy = compile_text(
        f'@id("reads") permit(principal, {CALL}, resource) '
        'when { resource.risk_class == "read-only" };'
    )
    first, second = run_policy_tests(policy, load_policy_tests(file))
    assert first.passed
    assert first.result is not None
    assert first.result.policy_ids == ("reads",)
    assert not second.passed
    assert second.actual is Effect.DENY
    assert second.message.startswith("expected allow, got deny")


def test_a_case_expecting_other_policies_fails() -> None:
    policy = compile_text(f'@id("reads") permit(principal, {CALL}, resource);')
    cases = load_policy_tests(
        (
            "c.json",
            '{"case": [{"name": "n", "tool": "t", "expect": "allow", "expect_policies": ["x"]}]}',
        )
    )
    (result,) = run_policy_tests(policy, cases)
    assert not result.passed
    assert "expected policies ['x']" in result.message


def test_a_case_with_an_impossible_request_fails_without_raising() -> None:
    policy = compile_text(f'@id("reads") permit(principal, {CALL}, resource);')
    cases = load_policy_tests(("c.json", '{"case": [{"name": "no tool", "expect": "deny"}]}'))
    (result,) = run_policy_tests(policy, cases)
    assert not result.passed
    assert "invalid request" in result.message


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("c.json", "{not json", "invalid policy tests `c.json`"),
        ("c.json", '{"case": [{"name": "x", "expect": "maybe"}]}', "expect"),
        ("c.json", '{"case": [{"name": "x", "expect": "allow", "colour": 1}]}', "colour"),
        (
            "c.json",
            '{"case": [{"name": "x", "expect": "allow", "risk_class": "scary"}]}',
            "risk_class",
        ),
        (
            "c.json",
            '{"case": [{"name": "x", "expect": "allow", "now": "2025-01-01T00:00:00"}]}',
            "now",
        ),
        ("c.toml", "[[case]\nname=", "invalid policy tests `c.toml`"),
        ("c.json", '{"cases": []}', "case"),
    ],
)
def test_a_bad_test_file_is_a_policy_error_naming_the_problem(
    name: str, text: str, match: str
) -> None:
    with pytest.raises(PolicyError, match=match):
        load_policy_tests((name, text))
