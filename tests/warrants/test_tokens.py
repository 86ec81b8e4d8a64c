"""Minting, verifying and attenuating warrants, and every way a token is refused."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import biscuit_auth as ba
import pytest

import warrant.warrants as warrants
from warrant.errors import InvalidWarrant, WarrantSpecError
from warrant.types import ToolCall
from warrant.warrants import (
    ToolGrant,
    WarrantLayer,
    attenuate_warrant,
    describe_warrant,
    mint_warrant,
    parse_tool_spec,
    verify_warrant,
)
from warrant.warrants._datalog import Header, render_block

from ._support import (
    AGENT,
    DOMAIN,
    HOUR,
    NOW,
    OTHER_KEY,
    ROOT_KEY,
    ROOT_PUBLIC,
    SUB_AGENTS,
    biscuit_private_key,
    biscuit_public_key,
    mint,
)

GRANTS = [
    parse_tool_spec("transfer:amount=0..100,currency=EUR|USD@5"),
    parse_tool_spec("send_email:to^=ops@"),
    parse_tool_spec("read_file"),
]


def verify(token: str, **overrides: object) -> warrants.Warrant:
    options: dict[str, object] = {"domain": DOMAIN, "now": NOW, **overrides}
    return verify_warrant(token, ROOT_PUBLIC, **options)  # type: ignore[arg-type]


def test_a_minted_warrant_verifies_and_permits_a_call_within_its_constraints() -> None:
    warrant = verify(mint(GRANTS))
    assert warrant.task_id == "task-42"
    assert warrant.holder == AGENT
    assert warrant.tools == ("read_file", "send_email", "transfer")
    assert warrant.tool_budget("transfer") == 5
    assert warrant.total_budget == 20
    assert len(warrant.revocation_ids) == 1
    assert warrant.check(ToolCall("transfer", {"amount": 10, "currency": "EUR"}), now=NOW) == ()


@pytest.mark.claim("warrant.argument-constraints")
def test_a_call_outside_the_constraints_is_refused_with_plain_reasons() -> None:
    warrant = verify(mint(GRANTS))
    reasons = warrant.check(ToolCall("transfer", {"amount": 250}), now=NOW)
    assert [r.code for r in reasons] == ["warrant.argument-constraint", "warrant.argument-missing"]
    assert "`amount` = 250" in reasons[0].message
    assert "0..100" in reasons[0].message
    assert "layer 0" in reasons[0].message
    assert [r.code for r in warrant.check(ToolCall("rm_rf"), now=NOW)] == [
        "warrant.tool-not-granted"
    ]


@pytest.mark.claim("warrant.argument-constraints")
def test_a_bool_is_not_a_number_and_a_number_is_not_a_string() -> None:
    warrant = verify(mint(GRANTS))
    assert warrant.check(ToolCall("transfer", {"amount": True, "currency": "EUR"}), now=NOW)
    assert warrant.check(ToolCall("send_email", {"to": 7}), now=NOW)


def test_attenuation_names_the_sub_agent_and_narrows_every_dimension() -> None:
    token = attenuate_warrant(
        mint(GRANTS),
        ROOT_PUBLIC,
        domain=DOMAIN,
        now=NOW,
        tools=[parse_tool_spec("transfer:amount=0..50@2")],
        holder=SUB_AGENTS[0],
        expires_at=NOW + timedelta(minutes=5),
        total_budget=4,
    )
    warrant = verify(token)
    assert warrant.principal_chain == ("user:alice", AGENT, SUB_AGENTS[0])
    assert warrant.tools == ("transfer",)
    assert warrant.tool_budget("transfer") == 2
    assert warrant.total_budget == 4
    assert warrant.expires_at == NOW + timedelta(minutes=5)
    assert warrant.depth_remaining == 2
    assert len(warrant.revocation_ids) == 2
    reasons = warrant.check(ToolCall("transfer", {"amount": 70, "currency": "EUR"}), now=NOW)
    assert [r.code for r in reasons] == ["warrant.argument-constraint"]
    assert "layer 1" in reasons[0].message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tools": [ToolGrant("rm_rf")]}, "not granted"),
        ({"tools": [ToolGrant("transfer", budget=6)]}, "above"),
        ({"total_budget": 21}, "above"),
        ({"expires_at": NOW + 2 * HOUR}, "later"),
        ({"expires_at": NOW - HOUR}, "not in the future"),
        ({"holder": "spiffe://evil.example/agent/x"}, "trust domain"),
        ({"holder": "mallory"}, "SPIFFE"),
        ({"tools": []}, "at least one tool"),
    ],
)
@pytest.mark.claim("warrant.attenuation-narrows")
def test_attenuation_refuses_to_widen(options: dict[str, object], message: str) -> None:
    with pytest.raises(WarrantSpecError, match=message):
        attenuate_warrant(mint(GRANTS), ROOT_PUBLIC, domain=DOMAIN, now=NOW, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tools": []}, "at least one tool"),
        ({"tools": [ToolGrant("a"), ToolGrant("a")]}, "only once"),
        ({"expires_at": NOW - HOUR}, "not in the future"),
        ({"expires_at": NOW.replace(tzinfo=None)}, "timezone-aware"),
        ({"total_budget": -1}, "total budget"),
        ({"max_depth": 99}, "limit"),
        ({"task_id": "bad task"}, "task id"),
        ({"agent": "billing"}, "SPIFFE"),
        ({"agent": "spiffe://other.example/agent/x"}, "trust domain"),
        ({"domain": "Bad Domain"}, "trust domain"),
        ({"on_behalf_of": 'alice"'}, "double quote"),
    ],
)
def test_mint_refuses_invalid_requests(options: dict[str, object], message: str) -> None:
    request: dict[str, object] = {
        "domain": DOMAIN, "task_id": "t-1", "agent": AGENT, "tools": GRANTS,
        "on_behalf_of": None, "total_budget": None, "expires_at": NOW + HOUR, "now": NOW,
    }  # fmt: skip
    with pytest.raises(WarrantSpecError, match=message):
        mint_warrant(ROOT_KEY, **{**request, **options})  # type: ignore[arg-type]


def test_a_negative_tool_budget_is_refused() -> None:
    with pytest.raises(WarrantSpecError, match="budget"):
        ToolGrant("transfer", budget=-1)


@pytest.mark.claim("warrant.tamper-evident")
@pytest.mark.parametrize(
    "token",
    [
        "",
        "not base64!!",
        "aGVsbG8",  # valid base64, not a biscuit
        mint(GRANTS)[:-20],  # truncated
        "é" * 10,
    ],
)
def test_malformed_tokens_are_invalid(token: str) -> None:
    with pytest.raises(InvalidWarrant):
        verify(token)


@pytest.mark.claim("warrant.tamper-evident")
def test_a_flipped_byte_in_the_signed_content_is_invalid() -> None:
    raw = bytearray(base64.urlsafe_b64decode(mint(GRANTS)))
    raw[40] ^= 0x01  # inside the authority block's Datalog
    with pytest.raises(InvalidWarrant):
        verify(base64.urlsafe_b64encode(bytes(raw)).decode())


@pytest.mark.claim("warrant.tamper-evident")
def test_a_token_signed_by_another_key_is_invalid() -> None:
    with pytest.raises(InvalidWarrant):
        verify(mint(GRANTS, key=OTHER_KEY))


def test_a_token_from_another_domain_is_invalid() -> None:
    with pytest.raises(InvalidWarrant) as caught:
        verify(mint(GRANTS), domain="other.example")
    assert caught.value.message == "warrant rejected"
    assert "other.example" in str(caught.value.detail)


@pytest.mark.claim("warrant.expiry")
def test_an_expired_token_is_invalid_even_one_second_late() -> None:
    token = mint(GRANTS, expires_at=NOW + HOUR)
    verify(token, now=NOW + HOUR)  # valid through the expiry second
    with pytest.raises(InvalidWarrant, match="rejected"):
        verify(token, now=NOW + HOUR + timedelta(seconds=1))


@pytest.mark.claim("warrant.expiry")
def test_an_expired_attenuation_layer_expires_the_whole_warrant() -> None:
    token = attenuate_warrant(
        mint(GRANTS), ROOT_PUBLIC, domain=DOMAIN, now=NOW, expires_at=NOW + timedelta(minutes=1)
    )
    with pytest.raises(InvalidWarrant):
        verify(token, now=NOW + timedelta(minutes=2))


def _layer(tools: list[ToolGrant], depth: int = 3) -> WarrantLayer:
    return WarrantLayer(tools=tuple(tools), expires_at=NOW + HOUR, max_depth=depth, holder=AGENT)


def test_an_unknown_version_is_invalid() -> None:
    source = render_block(_layer(GRANTS), Header("t-1", DOMAIN, None))
    token = ba.BiscuitBuilder(source.replace("warrant_version(1)", "warrant_version(2)"))
    with pytest.raises(InvalidWarrant):
        verify(token.build(biscuit_private_key()).to_base64())


@pytest.mark.claim("warrant.tamper-evident")
def test_a_block_with_foreign_datalog_is_invalid() -> None:
    source = render_block(_layer(GRANTS), Header("t-1", DOMAIN, None))
    token = ba.BiscuitBuilder(source + 'grant_tool("rm_rf");\n').build(biscuit_private_key())
    with pytest.raises(InvalidWarrant):
        verify(token.to_base64())


@pytest.mark.claim("warrant.attenuation-narrows")
def test_a_hand_built_attenuation_block_that_adds_a_tool_is_refused_by_verify() -> None:
    biscuit = ba.Biscuit.from_base64(mint(GRANTS), biscuit_public_key())
    widening = render_block(_layer([*GRANTS, ToolGrant("rm_rf")], depth=2), None)
    token = biscuit.append(ba.BlockBuilder(widening)).to_base64()
    with pytest.raises(InvalidWarrant) as caught:
        verify(token)
    assert "rm_rf" in str(caught.value.detail)


@pytest.mark.claim("warrant.attenuation-narrows")
@pytest.mark.parametrize(
    ("layer", "problem"),
    [
        (_layer([ToolGrant("read_file")], depth=3), "depth"),
        (_layer([ToolGrant("transfer", budget=None)], depth=2), "budget"),
        (_layer([ToolGrant("transfer", budget=9)], depth=2), "budget"),
    ],
)
def test_hand_built_blocks_that_keep_depth_or_raise_budgets_are_refused(
    layer: WarrantLayer, problem: str
) -> None:
    biscuit = ba.Biscuit.from_base64(mint(GRANTS), biscuit_public_key())
    token = biscuit.append(ba.BlockBuilder(render_block(layer, None))).to_base64()
    with pytest.raises(InvalidWarrant) as caught:
        verify(token)
    assert problem in str(caught.value.detail)


@pytest.mark.claim("warrant.attenuation-narrows")
def test_a_raw_appended_block_that_grants_a_tool_is_refused() -> None:
    biscuit = ba.Biscuit.from_base64(mint(GRANTS), biscuit_public_key())
    token = biscuit.append(ba.BlockBuilder('grant_tool("rm_rf");')).to_base64()
    with pytest.raises(InvalidWarrant):
        verify(token)


def test_describe_says_what_is_allowed_for_whom_and_until_when() -> None:
    token = attenuate_warrant(
        mint(GRANTS), ROOT_PUBLIC, domain=DOMAIN, now=NOW, holder=SUB_AGENTS[1]
    )
    text = describe_warrant(verify(token), now=NOW)
    assert "task `task-42`" in text
    assert "Acting for user:alice" in text
    assert "Expires in 1 hour (2026-03-01 13:00:00 UTC)" in text
    assert "`amount` must be an integer in 0..100" in text
    assert "transfer (at most 5 calls)" in text
    assert "May be delegated 2 more level(s)" in text


def test_to_json_is_plain_json_with_effective_grants() -> None:
    data = verify(mint(GRANTS)).to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["tools"][2]["name"] == "transfer"
    assert data["tools"][2]["budget"] == 5
    assert data["depth_remaining"] == 3


def test_a_server_tool_is_granted_only_by_its_qualified_name() -> None:
    token = mint_warrant(ROOT_KEY, domain=DOMAIN, task_id="t-1", agent=AGENT,
                         tools=[parse_tool_spec("github/create_issue")], on_behalf_of=None,
                         total_budget=None, expires_at=NOW + HOUR, now=NOW)
    warrant = verify_warrant(token, ROOT_PUBLIC, domain=DOMAIN, now=NOW)
    assert warrant.check(ToolCall("create_issue", {}, server="github"), now=NOW) == ()
    denied = warrant.check(ToolCall("create_issue", {}, server="gitlab"), now=NOW)
    assert [r.code for r in denied] == ["warrant.tool-not-granted"]
