"""Evaluation: default deny, forbid wins, errors deny, needs-approval."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import cedarpy
import pytest

from warrant.policy import PolicyRequest, default_pack_sources, default_schema_text, load_policy_set
from warrant.policy._request import encode
from warrant.types import Effect, RiskClass

from .helpers import CALL, NOON, call, compile_text


@pytest.mark.claim("policy.default-deny")
def test_a_request_no_policy_permits_is_denied_by_default() -> None:
    policy = compile_text(
        f'@id("only-writes") permit(principal, {CALL}, resource) '
        'when { resource.risk_class == "write" };'
    )
    result = policy.evaluate(call(risk_class=RiskClass.READ_ONLY))
    assert result.effect is Effect.DENY
    assert [r.code for r in result.reasons] == ["policy.no-permit"]
    assert "default deny" in result.reasons[0].message
    assert result.policy_ids == ()


def test_a_matching_permit_allows_and_names_its_id() -> None:
    policy = compile_text(f'@id("reads") permit(principal, {CALL}, resource);')
    result = policy.evaluate(call())
    assert result.effect is Effect.ALLOW
    assert result.allowed
    assert result.policy_ids == ("reads",)
    assert [r.code for r in result.reasons] == ["policy.permit"]
    assert result.revision == policy.revision


def test_a_permit_without_id_is_cited_by_its_positional_id() -> None:
    result = compile_text(f"permit(principal, {CALL}, resource);").evaluate(call())
    assert result.policy_ids == ("policy0",)


@pytest.mark.claim("policy.forbid-wins")
def test_a_matching_forbid_wins_over_a_matching_permit() -> None:
    policy = compile_text(
        f'@id("all") permit(principal, {CALL}, resource);\n'
        f'@id("no-search") forbid(principal, {CALL}, resource) '
        'when { resource.name == "search" };'
    )
    result = policy.evaluate(call(tool="search"))
    assert result.effect is Effect.DENY
    assert result.policy_ids == ("no-search",)
    assert [r.code for r in result.reasons] == ["policy.forbid"]
    assert policy.evaluate(call(tool="other")).effect is Effect.ALLOW


OVERFLOW_FORBID = (
    f'@id("all") permit(principal, {CALL}, resource);\n'
    f'@id("overflowing") forbid(principal, {CALL}, resource) '
    "when { context.risk_score + 9223372036854775807 > 0 };"
)


@pytest.mark.claim("policy.errors-deny")
def test_an_evaluation_error_denies_even_when_cedar_allows() -> None:
    policy = compile_text(OVERFLOW_FORBID)
    # Cedar skips the erroring forbid and says Allow; Warrant must deny.
    result = policy.evaluate(call(risk_score=1))
    assert result.effect is Effect.DENY
    assert [r.code for r in result.reasons] == ["policy.error"]
    assert "overflowing" in result.reasons[0].message or "policy1" in result.reasons[0].message
    assert policy.evaluate(call(risk_score=0)).effect is Effect.DENY  # 0 + max > 0: forbid holds


@pytest.mark.claim("policy.errors-deny")
def test_an_exception_inside_cedar_denies_instead_of_raising(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy = compile_text(f'@id("all") permit(principal, {CALL}, resource);')

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("engine on fire")

    monkeypatch.setattr(cedarpy, "is_authorized", explode)
    result = policy.evaluate(call())
    assert result.effect is Effect.DENY
    assert result.reasons[0].code == "policy.error"
    assert "engine on fire" in result.reasons[0].message


def test_a_permit_marked_needs_approval_asks_for_a_human() -> None:
    policy = compile_text(
        f'@id("big") @effect("needs-approval") permit(principal, {CALL}, resource) '
        'when { context.num_args.hasTag("amount") && context.num_args.getTag("amount") > 100 };'
    )
    result = policy.evaluate(call(arguments={"amount": 500}))
    assert result.effect is Effect.NEEDS_APPROVAL
    assert not result.allowed
    assert result.policy_ids == ("big",)
    assert [r.code for r in result.reasons] == ["policy.needs-approval"]
    assert policy.evaluate(call(arguments={"amount": 5})).effect is Effect.DENY


def test_a_plain_permit_alongside_a_needs_approval_permit_allows() -> None:
    policy = compile_text(
        f'@id("gated") @effect("needs-approval") permit(principal, {CALL}, resource);\n'
        f'@id("plain") permit(principal, {CALL}, resource);'
    )
    result = policy.evaluate(call())
    assert result.effect is Effect.ALLOW
    assert result.policy_ids == ("plain",)


def test_a_forbid_beats_a_needs_approval_permit() -> None:
    policy = compile_text(
        f'@id("gated") @effect("needs-approval") permit(principal, {CALL}, resource);\n'
        f'@id("never") forbid(principal, {CALL}, resource);'
    )
    assert policy.evaluate(call()).effect is Effect.DENY


@pytest.mark.parametrize(
    ("value", "seen_as"),
    [
        (1500, 1500),
        (1000.01, 1001),
        (-0.5, -1),
        ("2000", 2000),
        (" 7 ", 7),
        ("1e3", 1000),
        ("9" * 40, 2**63 - 1),
        (float("inf"), 2**63 - 1),
        (2**80, 2**63 - 1),
    ],
)
def test_numeric_arguments_reach_policy_as_longs(value: object, seen_as: int) -> None:
    policy = compile_text(
        f'@id("exact") permit(principal, {CALL}, resource) when {{ '
        f'context.num_args.hasTag("amount") && context.num_args.getTag("amount") == {seen_as} }};'
    )
    assert policy.evaluate(call(arguments={"amount": value})).effect is Effect.ALLOW


@pytest.mark.parametrize("value", [True, None, "abc", [1], {"a": 1}])
def test_non_numeric_arguments_are_absent_from_num_args(value: object) -> None:
    policy = compile_text(
        f'@id("numeric") permit(principal, {CALL}, resource) '
        'when { context.num_args.hasTag("amount") };'
    )
    assert policy.evaluate(call(arguments={"amount": value})).effect is Effect.DENY


def test_every_argument_reaches_policy_as_text() -> None:
    policy = compile_text(
        f'@id("to-example") permit(principal, {CALL}, resource) when {{ '
        'context.args.hasTag("to") && context.args.getTag("to") like "*@example.org" && '
        'context.args.hasTag("opts") && context.args.getTag("opts") == "{\\"cc\\":[1,2]}" && '
        'context.args.hasTag("send") && context.args.getTag("send") == "true" };'
    )
    args = {"to": "bob@example.org", "opts": {"cc": [1, 2]}, "send": True}
    assert policy.evaluate(call(arguments=args)).effect is Effect.ALLOW
    assert policy.evaluate(call(arguments={**args, "to": "eve@evil"})).effect is Effect.DENY


def test_tools_are_members_of_their_toolsets_and_server() -> None:
    policy = compile_text(
        f'@id("gh") permit(principal, {CALL}, resource in Warrant::Server::"github");\n'
        f'@id("ops") permit(principal, {CALL}, resource in Warrant::Toolset::"ops");'
    )
    assert policy.evaluate(call(server="github")).policy_ids == ("gh",)
    assert policy.evaluate(call(toolsets=("ops", "x"))).policy_ids == ("ops",)
    assert policy.evaluate(call(server="gitlab")).effect is Effect.DENY


def test_time_is_seen_in_utc() -> None:
    policy = compile_text(
        f'@id("nine") permit(principal, {CALL}, resource) '
        "when { context.hour == 9 && context.weekday == 0 };"
    )
    at_eleven_in_plus_two = (NOON - timedelta(hours=3)).astimezone(timezone(timedelta(hours=2)))
    assert policy.evaluate(call(now=at_eleven_in_plus_two)).effect is Effect.ALLOW


def test_a_request_time_without_timezone_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        call(now=datetime(2025, 1, 1))


def test_an_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown policy action"):
        PolicyRequest(agent="a", tool="t", action="launch_missiles")


@pytest.mark.claim("policy.validated")
@pytest.mark.parametrize(
    "request_",
    [
        call(
            arguments={"amount": 1, "to": "x", "nested": {"a": [1]}},
            labels=frozenset({"pii"}),
            chain=("spiffe://example.org/agent/root",),
            server="s",
            toolsets=("t",),
        ),
        PolicyRequest(
            agent="spiffe://example.org/agent/a",
            action="delegate",
            target="spiffe://example.org/agent/b",
            now=NOON,
        ),
        PolicyRequest(agent="not-a-spiffe-id", action="memory_write", target="notes", now=NOON),
    ],
)
def test_encoded_requests_conform_to_the_schema(
    pack_schema: cedarpy.Schema, request_: PolicyRequest
) -> None:
    cedar_request, entities = encode(request_)
    answer = cedarpy.is_authorized(
        cedar_request, "permit(principal, action, resource);", entities, schema=pack_schema
    )
    assert answer.diagnostics.errors == []
    assert answer.decision == cedarpy.Decision.Allow


@pytest.fixture(scope="module")
def pack_schema() -> cedarpy.Schema:
    return cedarpy.Schema.from_str(default_schema_text())


def test_policy_authors_can_rule_on_which_argument_is_tainted_and_from_where() -> None:
    rule = ('@id("org.no-mail-subjects") forbid (principal, '
            'action == Warrant::Action::"call_tool", resource) when { '
            'context.arg_labels.contains("subject:untrusted") && '
            'context.sources.contains("mail/read_inbox") };')
    policies = load_policy_set([*default_pack_sources(), ("org.cedar", rule)])
    tainted = call("send_email", RiskClass.EXTERNAL_COMMUNICATION, labels={"untrusted"},
                   arg_labels={"subject:untrusted"}, sources={"mail/read_inbox"})
    elsewhere = call("send_email", RiskClass.EXTERNAL_COMMUNICATION, labels={"untrusted"},
                     arg_labels={"body:untrusted"}, sources={"mail/read_inbox"})
    assert policies.evaluate(tainted).policy_ids == ("org.no-mail-subjects",)
    assert policies.evaluate(elsewhere).allowed
