"""A stdio gateway follows its token files: a renewed credential works without a restart.

The real gateway (a subprocess) in front of the published time server, driven by
the SDK's stdio client; the credential file is rewritten while it runs, the way a
SPIFFE helper rotates an SVID. The in-process tests drive `SessionSource` itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from tests.gateway.conftest import World, run
from warrant import identity, warrants
from warrant.enforce import Guard, TrustDomain
from warrant.gateway._refresh import CHECK_INTERVAL_S, SessionSource

#: Longer than the gateway's look interval: the next call after this sees the files.
SEEN_AFTER_S = CHECK_INTERVAL_S + 0.3
PARIS = {"timezone": "Europe/Paris"}
TIME = "time__get_current_time"


@dataclass
class Tokens:
    """Credentials minted before the gateway starts (it is then the domain's only writer)."""

    fresh: str  # the agent's, full lifetime
    #: The agent's, with `left_s` of acceptance left from now; and when that ends.
    short: Callable[[float], tuple[str, float]]
    intruder: str  # another agent's, with a warrant of its own
    intruder_warrant: str
    intruder_key: bytes
    intruder_id: str


def backdated(domain: TrustDomain, name: str) -> Callable[[float], tuple[str, float]]:
    """Issues a genuine credential, backdated so that it is accepted only `left_s` more.

    Acceptance runs `CLOCK_SKEW_SECONDS` past expiry; issuing it earlier, instead of
    waiting half a minute, keeps the test short. The issuer needs only the domain's
    key: the domain stays closed while the gateway runs.
    """
    key, key_id, agent = domain.keys.signing_key, domain.keys.key_id, domain.agent(name)
    trust_domain = domain.domain

    def issue(left_s: float) -> tuple[str, float]:
        issued = identity.issue_credential(
            key, domain=trust_domain, agent=agent, key_id=key_id, ttl_seconds=1,
            now=time.time() - identity.CLOCK_SKEW_SECONDS - 1 + left_s)
        return issued.token, issued.credential.expires_at + identity.CLOCK_SKEW_SECONDS

    return issue


@pytest.fixture
def tokens(world: World) -> Tokens:
    with TrustDomain.open(world.home) as domain:
        _, key = domain.register_agent("intruder", owner="mallory", purpose="wants in")
        assert key is not None
        return Tokens(fresh=domain.issue_credential("bot").token,
                      short=backdated(domain, "bot"),
                      intruder=domain.issue_credential("intruder").token,
                      intruder_warrant=domain.mint(agent="intruder", task="anything", tools=[
                          warrants.parse_tool_spec("time/get_current_time")])[1],
                      intruder_key=key.read_bytes(),
                      intruder_id=domain.agent("intruder").agent_id)


def admin_records(world: World, action: str) -> list[dict[str, Any]]:
    with TrustDomain.open(world.home) as domain:
        return [dict(e.record.detail or {}) for e in domain.audit.tail(200)
                if e.record.kind == "admin" and e.record.tool == action]


@pytest.mark.claim("gateway.enforces-pipeline")
def test_an_expired_credential_is_denied_until_a_renewed_one_is_written(
        world: World, tokens: Tokens) -> None:
    async def body() -> None:
        async with world.client("time") as gw:
            assert not (await gw.call(TIME, **PARIS))[0]  # the launch credential
            short, ends = tokens.short(SEEN_AFTER_S + 3)
            world.credential.write_text(short, encoding="utf-8")
            await anyio.sleep(SEEN_AFTER_S)
            is_error, text = await gw.call(TIME, **PARIS)  # now the short one
            assert not is_error, text
            await anyio.sleep(max(0.0, ends - time.time()) + 0.2)
            is_error, text = await gw.call(TIME, **PARIS)
            assert is_error and "credential rejected" in text
            assert await gw.tool_names() == set()
            world.credential.write_text(tokens.fresh, encoding="utf-8")  # renewed
            await anyio.sleep(SEEN_AFTER_S)
            is_error, text = await gw.call(TIME, **PARIS)
            assert not is_error, text
            assert TIME in await gw.tool_names()

    run(body)
    refreshed = admin_records(world, "session.refreshed")
    assert [r["agent"] for r in refreshed] == [world.agent_id, world.agent_id]
    assert admin_records(world, "session.refresh-refused") == []


def test_another_agents_credential_in_the_file_is_refused_and_the_session_kept(
        world: World, tokens: Tokens) -> None:
    async def body() -> None:
        async with world.client("time") as gw:
            assert not (await gw.call(TIME, **PARIS))[0]
            # Every file swapped: usable material, but another agent's.
            world.credential.write_text(tokens.intruder, encoding="utf-8")
            world.warrant.write_text(tokens.intruder_warrant, encoding="utf-8")
            world.key.write_bytes(tokens.intruder_key)
            await anyio.sleep(SEEN_AFTER_S)
            for _ in range(2):  # refused once, audited once
                is_error, text = await gw.call(TIME, **PARIS)
                assert not is_error, text  # still the launch session, the agent's own

    run(body)
    refused = admin_records(world, "session.refresh-refused")
    assert len(refused) == 1
    assert f"is for {tokens.intruder_id}, not for {world.agent_id}" in refused[0]["detail"]
    assert refused[0]["agent"] == world.agent_id
    assert admin_records(world, "session.refreshed") == []
    with TrustDomain.open(world.home) as domain:
        decisions = [e.record for e in domain.audit.tail(200) if e.record.kind == "decision"]
    assert {d.agent for d in decisions} == {world.agent_id}


def test_garbage_in_the_file_is_refused_without_a_crash(world: World, tokens: Tokens) -> None:
    async def body() -> None:
        async with world.client("time") as gw:
            assert not (await gw.call(TIME, **PARIS))[0]
            world.credential.write_text("not a credential \x00\xff", encoding="utf-8")
            await anyio.sleep(SEEN_AFTER_S)
            assert not (await gw.call(TIME, **PARIS))[0]  # the launch session, kept
            world.credential.write_text(tokens.fresh, encoding="utf-8")
            await anyio.sleep(SEEN_AFTER_S)
            assert not (await gw.call(TIME, **PARIS))[0]

    run(body)
    refused = admin_records(world, "session.refresh-refused")
    assert len(refused) == 1, refused
    assert refused[0]["agent"] == world.agent_id and refused[0]["detail"]
    assert len(admin_records(world, "session.refreshed")) == 1


# -- SessionSource in process ------------------------------------------------------------------


def test_a_new_warrant_file_is_picked_up_for_the_same_agent(world: World) -> None:
    with TrustDomain.open(world.home) as domain:
        guard = Guard(domain)
        launched = SessionSource.open(guard, world.env()).current()
        assert launched is not None
        source_now = SessionSource(launched, guard=guard, env=world.env(), check_interval_s=0)
        later = SessionSource(launched, guard=guard, env=world.env(), check_interval_s=3600)
        before = source_now.current()
        assert before is launched
        _, token = domain.mint(agent="bot", task="tokyo", tools=[
            warrants.parse_tool_spec("time/get_current_time:timezone^=Asia/")])
        world.warrant.write_text(token, encoding="utf-8")
        after = source_now.current()
        assert after is not None and after is not before
        assert after.warrant == token
        assert later.current() is launched  # its look is not due yet


def test_tokens_given_as_values_are_not_followed(world: World, tokens: Tokens) -> None:
    env = world.env(WARRANT_CREDENTIAL_FILE=None, WARRANT_WARRANT_FILE=None,
                    WARRANT_CREDENTIAL=world.credential.read_text(encoding="utf-8"),
                    WARRANT_WARRANT=world.warrant.read_text(encoding="utf-8"))
    with TrustDomain.open(world.home) as domain:
        source = SessionSource(None, guard=Guard(domain), env=env, check_interval_s=0)
        assert source.current() is None  # nothing to follow: no session appears
        launched = SessionSource.open(Guard(domain), env)
        session = launched.current()
        assert session is not None
        world.credential.write_text(tokens.fresh, encoding="utf-8")
        assert launched.current() is session


def test_a_gateway_launched_without_a_credential_opens_one_when_it_is_written(
        world: World, tokens: Tokens) -> None:
    world.credential.unlink()
    with TrustDomain.open(world.home) as domain:
        source = SessionSource.open(Guard(domain), world.env())
        assert source.current() is None
        now = SessionSource(None, guard=Guard(domain), env=world.env(), check_interval_s=0)
        opened: list[str] = []
        now.on_open = lambda s: opened.append(s.credential.agent_id)
        assert now.current() is None  # still missing: refused (audited), no session
        refused = [e.record.detail or {} for e in domain.audit.tail(5)
                   if e.record.tool == "session.refresh-refused"]
        assert "cannot read $WARRANT_CREDENTIAL_FILE" in refused[-1]["detail"]
        world.credential.write_text(tokens.fresh, encoding="utf-8")
        session = now.current()
        assert session is not None and session.credential.agent_id == world.agent_id
        assert opened == [world.agent_id]
        # From now on it is pinned to that agent.
        world.credential.write_text(tokens.intruder, encoding="utf-8")
        assert now.current() is session


def test_a_refusal_without_a_session_does_not_say_a_session_is_kept(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.credential.unlink()  # launched without a usable credential: no session at all
    with TrustDomain.open(world.home) as domain:
        source = SessionSource(None, guard=Guard(domain), env=world.env(), check_interval_s=0)
        with caplog.at_level("WARNING", logger="warrant.gateway"):
            assert source.current() is None
    (message,) = [r.getMessage() for r in caplog.records
                  if "refresh refused" in r.getMessage()]
    assert "session is kept" not in message
    assert "no session: every call is denied" in message
    assert "cannot read $WARRANT_CREDENTIAL_FILE" in message


@pytest.mark.parametrize("written", ["not a warrant", "another agent's"])
def test_an_unusable_launch_warrant_is_reported_to_the_operator_at_once(
        world: World, caplog: pytest.LogCaptureFixture, written: str) -> None:
    with TrustDomain.open(world.home) as domain:
        if written == "another agent's":
            domain.register_agent("other", owner="ops", purpose="something else")
            _, token = domain.mint(agent="other", task="theirs",
                                   tools=[warrants.parse_tool_spec("time/get_current_time")])
            world.warrant.write_text(token)
        else:
            world.warrant.write_text(written)
        with caplog.at_level("WARNING", logger="warrant.gateway"):
            source = SessionSource.open(Guard(domain), world.env())
    (message,) = [r.getMessage() for r in caplog.records if "warrant refused" in r.getMessage()]
    assert "every call is denied" in message
    assert source.current() is not None  # the session stands; its calls are denied
