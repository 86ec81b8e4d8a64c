"""`Warrant.check` agrees with a standard Biscuit authorizer running the token's Datalog."""

from __future__ import annotations

from datetime import datetime

import biscuit_auth as ba
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warrant.types import ToolCall
from warrant.warrants import ToolGrant, attenuate_warrant, verify_warrant

from ._support import (
    DOMAIN,
    NOW,
    ROOT_PUBLIC,
    SUB_AGENTS,
    biscuit_public_key,
    mint,
    times,
    tool_calls,
    tool_grants,
)

_INT64 = range(-(2**63), 2**63)


def biscuit_allows(token: str, call: ToolCall, now: datetime) -> bool:
    """Authorize `call` with nothing but the token's own checks and `allow if true`."""
    builder = ba.AuthorizerBuilder()
    builder.add_fact(ba.Fact("tool({t})", {"t": call.tool}))
    builder.add_fact(ba.Fact("time({t})", {"t": now}))
    for name, value in call.arguments.items():
        # Only scalars Biscuit can represent become facts; anything else is "missing".
        if isinstance(value, str | bool) or (isinstance(value, int) and value in _INT64):
            builder.add_fact(ba.Fact("arg({k}, {v})", {"k": name, "v": value}))
    builder.add_policy(ba.Policy("allow if true"))
    authorizer = builder.build(ba.Biscuit.from_base64(token, biscuit_public_key()))
    try:
        authorizer.authorize()
    except ba.AuthorizationError:
        return False
    return True


@pytest.mark.claim("warrant.argument-constraints")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    grants=tool_grants(),
    narrowing=st.lists(tool_grants(), max_size=2),
    calls=st.lists(tool_calls(), min_size=1, max_size=6),
    now=times(),
)
def test_python_check_and_biscuit_authorizer_give_the_same_verdict(
    grants: list[ToolGrant],
    narrowing: list[list[ToolGrant]],
    calls: list[ToolCall],
    now: datetime,
) -> None:
    token = mint(grants)
    for holder, layer in zip(SUB_AGENTS, narrowing, strict=False):
        current = verify_warrant(token, ROOT_PUBLIC, domain=DOMAIN, now=NOW)
        subset = [g for g in layer if g.name in current.tools]
        if not subset:
            break
        budgets = [ToolGrant(g.name, g.constraints) for g in subset]
        token = attenuate_warrant(
            token, ROOT_PUBLIC, domain=DOMAIN, now=NOW, tools=budgets, holder=holder
        )
    warrant = verify_warrant(token, ROOT_PUBLIC, domain=DOMAIN, now=NOW)
    for call in calls:
        python_allows = warrant.check(call, now=now) == ()
        assert python_allows == biscuit_allows(token, call, now), (call, now, warrant)
