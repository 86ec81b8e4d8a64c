"""Hypothesis properties of warrants: attenuation narrows, expiry holds, depth falls."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warrant.errors import InvalidWarrant, WarrantSpecError
from warrant.types import ToolCall
from warrant.warrants import ToolGrant, attenuate_warrant, verify_warrant

from ._support import (
    DOMAIN,
    HOUR,
    NOW,
    ROOT_PUBLIC,
    SUB_AGENTS,
    TOOLS,
    mint,
    times,
    tool_calls,
    tool_grants,
)

_SLOW = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def attenuation_requests(draw: st.DrawFn) -> dict[str, object]:
    """Any request, including adversarial ones: unknown tools, big budgets, late expiry."""
    return {
        "tools": draw(st.none() | tool_grants(names=(*TOOLS, "wire_money"))),
        "expires_at": draw(
            st.none()
            | st.integers(min_value=-60, max_value=3 * 3600).map(
                lambda s: NOW + timedelta(seconds=s)
            )
        ),
        "total_budget": draw(st.none() | st.integers(min_value=0, max_value=40)),
        "holder": draw(st.none() | st.sampled_from(SUB_AGENTS)),
    }


@pytest.mark.claim("warrant.attenuation-narrows")
@_SLOW
@given(
    grants=tool_grants(),
    depth=st.integers(min_value=0, max_value=2),
    request=attenuation_requests(),
    calls=st.lists(tool_calls(), min_size=1, max_size=8),
    now=times(),
)
def test_attenuation_never_widens(
    grants: list[ToolGrant],
    depth: int,
    request: dict[str, object],
    calls: list[ToolCall],
    now: datetime,
) -> None:
    token = mint(grants, max_depth=depth)
    before = verify_warrant(token, ROOT_PUBLIC, domain=DOMAIN, now=NOW)
    try:
        narrowed = attenuate_warrant(token, ROOT_PUBLIC, domain=DOMAIN, now=NOW, **request)  # type: ignore[arg-type]
    except WarrantSpecError:
        return  # refused: nothing was widened
    after = verify_warrant(narrowed, ROOT_PUBLIC, domain=DOMAIN, now=NOW)
    assert set(after.tools) <= set(before.tools)
    assert after.expires_at <= before.expires_at
    assert after.depth_remaining < before.depth_remaining
    for name in after.tools:
        limit = before.tool_budget(name)
        assert limit is None or (after.tool_budget(name) or 0) <= limit
    if before.total_budget is not None:
        assert after.total_budget is not None
        assert after.total_budget <= before.total_budget
    for call in calls:
        if after.check(call, now=now) == ():
            assert before.check(call, now=now) == ()


@pytest.mark.claim("warrant.attenuation-narrows")
@_SLOW
@given(grants=tool_grants(), extra=st.sampled_from(("wire_money", "rm_rf", "read_file")))
def test_attenuation_that_adds_a_tool_is_refused(grants: list[ToolGrant], extra: str) -> None:
    token = mint(grants)
    if extra in {g.name for g in grants}:
        return
    with pytest.raises(WarrantSpecError, match="not granted"):
        attenuate_warrant(
            token, ROOT_PUBLIC, domain=DOMAIN, now=NOW, tools=[*grants, ToolGrant(extra)]
        )


@pytest.mark.claim("warrant.expiry")
@_SLOW
@given(
    grants=tool_grants(),
    calls=st.lists(tool_calls(), min_size=1, max_size=5),
    late=st.integers(min_value=1, max_value=10**6),
)
def test_an_expired_warrant_never_authorises(
    grants: list[ToolGrant], calls: list[ToolCall], late: int
) -> None:
    token = mint(grants)
    warrant = verify_warrant(token, ROOT_PUBLIC, domain=DOMAIN, now=NOW)
    after = warrant.expires_at + timedelta(seconds=late)
    for call in calls:
        assert "warrant.expired" in {r.code for r in warrant.check(call, now=after)}
    with pytest.raises(InvalidWarrant):
        verify_warrant(token, ROOT_PUBLIC, domain=DOMAIN, now=after)


@_SLOW
@given(depth=st.integers(min_value=0, max_value=4), steps=st.integers(min_value=1, max_value=5))
def test_delegation_depth_only_decreases_and_stops_at_zero(depth: int, steps: int) -> None:
    token = mint([ToolGrant("read_file")], max_depth=depth)
    remaining = depth
    for step in range(steps):
        if remaining == 0:
            with pytest.raises(WarrantSpecError, match="cannot be delegated"):
                attenuate_warrant(token, ROOT_PUBLIC, domain=DOMAIN, now=NOW)
            return
        token = attenuate_warrant(
            token, ROOT_PUBLIC, domain=DOMAIN, now=NOW, holder=SUB_AGENTS[step % 3]
        )
        warrant = verify_warrant(token, ROOT_PUBLIC, domain=DOMAIN, now=NOW)
        assert warrant.depth_remaining == remaining - 1
        remaining = warrant.depth_remaining


@_SLOW
@given(
    grants=tool_grants(),
    total=st.none() | st.integers(min_value=0, max_value=100),
    minutes=st.integers(min_value=1, max_value=600),
)
def test_mint_then_verify_preserves_every_grant(
    grants: list[ToolGrant], total: int | None, minutes: int
) -> None:
    token = mint(grants, total_budget=total, expires_at=NOW + timedelta(minutes=minutes))
    warrant = verify_warrant(token, ROOT_PUBLIC, domain=DOMAIN, now=NOW)
    assert warrant.layers[0].tools == tuple(sorted(grants, key=lambda g: g.name))
    assert warrant.total_budget == total
    assert warrant.expires_at == NOW + timedelta(minutes=minutes)
    assert warrant.principal_chain == ("user:alice", "spiffe://acme.example/agent/orchestrator")


@pytest.mark.claim("warrant.tamper-evident")
@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.text(max_size=400),
        st.binary(max_size=400).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    )
)
def test_verify_raises_only_invalid_warrant_for_arbitrary_input(data: str) -> None:
    with pytest.raises(InvalidWarrant):
        verify_warrant(data, ROOT_PUBLIC, domain=DOMAIN, now=NOW)


@pytest.mark.claim("warrant.tamper-evident")
@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_flipping_any_bit_is_rejected_or_changes_nothing_that_was_signed(
    position: int, bit: int
) -> None:
    raw = bytearray(base64.urlsafe_b64decode(_TOKEN))
    raw[position % len(raw)] ^= 1 << bit
    flipped = base64.urlsafe_b64encode(bytes(raw)).decode()
    try:
        warrant = verify_warrant(flipped, ROOT_PUBLIC, domain=DOMAIN, now=NOW)
    except InvalidWarrant:
        return
    # Protobuf framing is malleable (e.g. an unknown field tag for a defaulted
    # enum); what was signed, and so the whole warrant value, must be identical.
    assert warrant == verify_warrant(_TOKEN, ROOT_PUBLIC, domain=DOMAIN, now=NOW)


_TOKEN = mint([ToolGrant("read_file"), ToolGrant("send_email", budget=3)], expires_at=NOW + HOUR)
