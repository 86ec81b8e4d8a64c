"""Hypothesis properties of the combining logic and the loader."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warrant.errors import PolicyError
from warrant.policy import CompiledPolicy, PolicyRequest, load_policy_set
from warrant.types import Effect, RiskClass

from .helpers import CALL

CONDITIONS = [
    'resource.risk_class == "{rc}"',
    "context.hour < {h}",
    'context.labels.contains("untrusted")',
    'principal.risk_tier == "low"',
    'context.num_args.hasTag("amount") && context.num_args.getTag("amount") > {n}',
    "context.chain_length > 1",
    "context.risk_score + 9223372036854775800 > 0",  # errors (overflow) when risk_score > 7
]

condition = st.builds(
    lambda template, rc, h, n: template.format(rc=rc.value, h=h, n=n),
    st.sampled_from(CONDITIONS),
    st.sampled_from(list(RiskClass)),
    st.integers(0, 23),
    st.integers(-10, 2000),
)


@st.composite
def policy(draw: st.DrawFn, effect: str | None = None) -> str:
    kind = effect or draw(st.sampled_from(["permit", "forbid"]))
    approval = '@effect("needs-approval") ' if kind == "permit" and draw(st.booleans()) else ""
    conds = draw(st.lists(condition, max_size=2))
    body = " && ".join(f"({c})" for c in conds)
    clause = draw(st.sampled_from(["when", "unless"])) if conds else ""
    return (
        f"{approval}{kind}(principal, {CALL}, resource) {clause} {{ {body} }};"
        if conds
        else (f"{approval}{kind}(principal, {CALL}, resource);")
    )


requests = st.builds(
    lambda rc, hour, labels, tier, amount, chain, score: PolicyRequest(
        agent="spiffe://example.org/agent/p",
        tool="t",
        risk_class=rc,
        agent_attrs={"risk_tier": tier},
        arguments={} if amount is None else {"amount": amount},
        labels=frozenset(labels),
        chain=tuple(f"a{i}" for i in range(chain)),
        now=datetime(2025, 1, 6, hour, tzinfo=UTC),
        risk_score=score,
    ),
    st.sampled_from(list(RiskClass)),
    st.integers(0, 23),
    st.sets(st.sampled_from(["untrusted", "pii"])),
    st.sampled_from(["low", "high"]),
    st.none() | st.integers(-5, 3000) | st.floats(-5, 3000, allow_nan=False),
    st.integers(0, 3),
    st.integers(0, 10),
)


def compile_list(policies: list[str]) -> CompiledPolicy:
    text = "\n".join(f'@id("p{i}") {p}' for i, p in enumerate(policies))
    return load_policy_set([("prop.cedar", text)])


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.claim("policy.forbid-wins")
@SETTINGS
@given(base=st.lists(policy(), min_size=1, max_size=4), extra=policy("forbid"), request_=requests)
def test_adding_a_forbid_never_turns_deny_into_allow(
    base: list[str], extra: str, request_: PolicyRequest
) -> None:
    before = compile_list(base).evaluate(request_)
    after = compile_list([*base, extra]).evaluate(request_)
    if before.effect is Effect.DENY:
        assert after.effect is Effect.DENY
    if after.effect is Effect.ALLOW:
        assert before.effect is Effect.ALLOW


@pytest.mark.claim("policy.forbid-wins")
@SETTINGS
@given(base=st.lists(policy(), min_size=1, max_size=4), extra=policy(), request_=requests)
def test_adding_any_policy_never_lifts_a_forbid(
    base: list[str], extra: str, request_: PolicyRequest
) -> None:
    before = compile_list(base).evaluate(request_)
    if before.effect is Effect.DENY and any(r.code == "policy.forbid" for r in before.reasons):
        assert compile_list([*base, extra]).evaluate(request_).effect is Effect.DENY


@pytest.mark.claim("policy.default-deny")
@SETTINGS
@given(base=st.lists(policy("forbid"), min_size=1, max_size=4), request_=requests)
def test_a_set_of_forbids_alone_never_allows(base: list[str], request_: PolicyRequest) -> None:
    assert compile_list(base).evaluate(request_).effect is Effect.DENY


@pytest.mark.claim("policy.errors-deny")
@SETTINGS
@given(
    base=st.lists(policy(), min_size=1, max_size=4),
    kind=st.sampled_from(["permit", "forbid"]),
    request_=requests,
)
def test_a_policy_that_errors_makes_the_result_deny(
    base: list[str], kind: str, request_: PolicyRequest
) -> None:
    # Overflows for risk_score > 7, whatever else the set says.
    erroring = (
        f"{kind}(principal, {CALL}, resource) "
        "when { context.risk_score + 9223372036854775800 > 0 };"
    )
    result = compile_list([*base, erroring]).evaluate(request_)
    if request_.risk_score > 7:
        assert result.effect is Effect.DENY
        assert any(r.code == "policy.error" for r in result.reasons)
    if result.effect is not Effect.DENY:
        assert result.policy_ids
        assert not any(r.code == "policy.error" for r in result.reasons)


TOKENS = st.sampled_from(
    [
        "permit",
        "forbid",
        "(",
        ")",
        "{",
        "}",
        ";",
        ",",
        "principal",
        "action",
        "resource",
        "when",
        "unless",
        "==",
        "in",
        "is",
        "has",
        "&&",
        "||",
        "!",
        "context",
        ".",
        '"x"',
        "1",
        "@id",
        "Warrant::Tool",
        "::",
        "?principal",
        "like",
        "-",
        "9223372036854775807",
        " ",
        "\n",
    ]
)


@pytest.mark.claim("policy.validated")
@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300) | st.lists(TOKENS, max_size=60).map("".join))
def test_the_loader_only_ever_raises_policy_error(text: str) -> None:
    try:
        compiled = load_policy_set([("fuzz.cedar", text)])
    except PolicyError:
        return
    assert len(compiled) > 0
