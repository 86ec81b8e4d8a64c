"""Loading: parse, validate, refuse empty sets, hash into a revision."""

from __future__ import annotations

from pathlib import Path

import pytest

from warrant.errors import PolicyError
from warrant.policy import (
    check_policies,
    default_pack_sources,
    default_schema_text,
    load_policy_set,
)

from .helpers import CALL, compile_text

GOOD = (
    f'@id("reads") permit(principal, {CALL}, resource) '
    'when { resource.risk_class == "read-only" };'
)


@pytest.mark.claim("policy.default-deny")
@pytest.mark.parametrize(
    "sources", [[], [("empty.cedar", "")], [("c.cedar", "// only a comment\n")]]
)
def test_an_empty_policy_set_is_a_startup_error(sources: list[tuple[str, str]]) -> None:
    with pytest.raises(
        PolicyError, match=r"no policies loaded.*default deny would refuse every call"
    ):
        load_policy_set(sources)


@pytest.mark.claim("policy.validated")
def test_a_syntax_error_names_the_file_and_line() -> None:
    text = GOOD + "\n\n// broken below\npermit(principal, action, resource) when { 1 + };\n"
    with pytest.raises(PolicyError, match=r"^bad\.cedar:4: syntax error: unexpected token") as info:
        load_policy_set([("bad.cedar", text)])
    assert info.value.hint


@pytest.mark.claim("policy.validated")
def test_an_unknown_entity_type_is_refused() -> None:
    with pytest.raises(
        PolicyError, match=r"f\.cedar:1: policy `who`.*unrecognized entity type `Warrant::Robot`"
    ):
        load_policy_set(
            [("f.cedar", '@id("who") permit(principal is Warrant::Robot, action, resource);')]
        )


@pytest.mark.claim("policy.validated")
def test_an_unknown_attribute_is_refused() -> None:
    text = f'@id("colour") permit(principal, {CALL}, resource) when {{ resource.colour == "red" }};'
    with pytest.raises(PolicyError, match=r"policy `colour`.*attribute `colour`"):
        compile_text(text)


@pytest.mark.claim("policy.validated")
def test_an_unguarded_argument_access_is_refused() -> None:
    text = (
        f'@id("amt") permit(principal, {CALL}, resource) '
        'when { context.num_args.getTag("amount") > 1 };'
    )
    with pytest.raises(PolicyError, match=r'policy `amt`.*tag `"amount"`'):
        compile_text(text)


def test_an_unknown_effect_annotation_is_refused() -> None:
    with pytest.raises(PolicyError, match='unknown @effect\\("maybe"\\)'):
        compile_text(f'@id("m") @effect("maybe") permit(principal, {CALL}, resource);')


def test_needs_approval_on_a_forbid_makes_it_a_hold() -> None:
    policy = compile_text(
        f'@id("m") @effect("needs-approval") forbid(principal, {CALL}, resource);')
    assert policy.info[next(iter(policy.info))].is_hold


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(PolicyError, match="duplicate @id `reads`"):
        compile_text(GOOD + "\n" + GOOD)


def test_templates_are_refused() -> None:
    with pytest.raises(PolicyError, match="templates"):
        compile_text(f'@id("t") permit(principal == ?principal, {CALL}, resource);')


def test_a_bad_schema_is_refused() -> None:
    with pytest.raises(PolicyError, match="invalid schema"):
        load_policy_set([("f.cedar", GOOD)], schema="namespace {")


def test_policies_load_from_files_and_directories(tmp_path: Path) -> None:
    (tmp_path / "a.cedar").write_text(GOOD)
    (tmp_path / "b.cedar").write_text(GOOD.replace("reads", "reads-too"))
    from_dir = load_policy_set([tmp_path])
    assert from_dir.policy_ids == ("reads", "reads-too")
    assert load_policy_set([tmp_path / "a.cedar"]).policy_ids == ("reads",)


def test_a_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy_set([tmp_path / "nope.cedar"])


def test_an_errors_line_counts_across_files() -> None:
    with pytest.raises(PolicyError, match=r"^two\.cedar:3:"):
        load_policy_set(
            [
                ("one.cedar", GOOD),
                ("two.cedar", "\n\npermit(principal, action, resource) when { ) };"),
            ]
        )


def test_the_revision_is_stable_for_the_same_policies() -> None:
    reformatted = GOOD.replace(" ", "  ").replace("when", "\n  when") + "\n// a comment\n"
    assert compile_text(GOOD).revision == compile_text(GOOD).revision
    assert compile_text(GOOD).revision == compile_text(reformatted).revision
    assert compile_text(GOOD).revision.startswith("sha256:")
    assert len(compile_text(GOOD).revision) == len("sha256:") + 16


def test_the_revision_changes_when_a_policy_changes() -> None:
    changed = GOOD.replace('"read-only"', '"write"')
    assert compile_text(GOOD).revision != compile_text(changed).revision
    renamed = GOOD.replace('"reads"', '"reads-v2"')
    assert compile_text(GOOD).revision != compile_text(renamed).revision


def test_the_revision_changes_when_the_schema_changes() -> None:
    schema = default_schema_text().replace("entity User;", "entity User;\n  entity Team;")
    assert (
        load_policy_set([("f.cedar", GOOD)], schema=schema).revision != compile_text(GOOD).revision
    )


def test_check_reports_risky_permits_as_warnings() -> None:
    text = (
        "permit(principal, action, resource);\n"
        f'@id("tools") permit(principal, {CALL}, resource);\n'
        f'@id("wipe") permit(principal, {CALL}, resource) '
        'when { resource.risk_class == "destructive" };\n'
        f'@id("pay") permit(principal, {CALL}, resource) when '
        '{ resource.risk_class == "money-movement" || resource.risk_class == "code-execution" };\n'
        f"{GOOD}\n"
    )
    findings = check_policies([("f.cedar", text)])
    messages = {(f.policy_id, f.message) for f in findings}
    assert all(f.severity == "warning" for f in findings)
    assert ("policy0", "permits every action on every resource for every agent") in messages
    assert any(pid == "policy0" and "no @id" in m for pid, m in messages)
    assert ("tools", "permits every tool with no condition") in messages
    assert ("wipe", "permits every `destructive` tool with no other condition") in messages
    assert (
        "pay",
        "permits every `code-execution`, `money-movement` tool with no other condition",
    ) in messages
    assert not any(pid == "reads" for pid, _ in messages)
    assert next(f for f in findings if f.policy_id == "wipe").line == 3


def test_check_reports_errors_with_their_location() -> None:
    findings = check_policies(
        [("f.cedar", GOOD + "\npermit(principal, action, resource) when { ( };")]
    )
    assert [(f.severity, f.source, f.line) for f in findings] == [("error", "f.cedar", 2)]


def test_the_default_pack_checks_clean() -> None:
    assert check_policies(default_pack_sources()) == []
