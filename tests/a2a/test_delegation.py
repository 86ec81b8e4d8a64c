"""Agents working together over A2A: narrowed hand-overs and the confused-deputy defence.

Real SDK clients talk to real SDK servers on 127.0.0.1; Warrant seals on the
client (`SealingInterceptor`) and verifies and narrows on the server
(`GuardedRequestHandler` + `GuardedExecutor`).
"""

from __future__ import annotations

import pytest

from tests.a2a.conftest import audit_records, enrol, run, send, serve_agent, tool_request
from warrant.a2a import SealingInterceptor, delegating, ledger_source
from warrant.enforce import Guard, TrustDomain
from warrant.errors import WarrantSpecError
from warrant.warrants import ToolGrant


def test_a_sub_agent_can_use_the_tool_handed_to_it_but_not_one_withheld(
        domain: TrustDomain, guards: tuple[Guard, Guard]) -> None:
    sender_guard, receiver_guard = guards
    orchestrator = enrol(domain, "orchestrator", ("read_file", "send_email:to^=ops@"),
                         max_depth=1)
    researcher = enrol(domain, "researcher", ("read_file",))

    async def body() -> None:
        with sender_guard.session(credential=orchestrator.credential,
                                  warrant=orchestrator.warrant,
                                  agent_key=orchestrator.key) as session:
            async with serve_agent(receiver_guard, researcher, own_warrant=False) as agent:
                client = await agent.client(SealingInterceptor(
                    session, recipient="researcher", delegate=[ToolGrant("read_file")]))
                granted = await send(client, tool_request("read_file", path="/srv/q3.txt"))
                withheld = await send(client, tool_request(
                    "send_email", to="ops@acme.example", body="q3"))
                await client.close()
        assert granted == "ok: contents of /srv/q3.txt"
        assert withheld == "deny: warrant.tool-not-granted"
        handed = agent.executor.seen[0]
        assert handed.sender == orchestrator.agent_id
        assert handed.delegated is not None and handed.depth == 1
        # The envelope's tokens were taken out before the SDK stored the message.
        assert agent.executor.metadata_keys == [set(), set()]

    run(body)
    decisions = [r for r in audit_records(domain) if r.kind == "decision"]
    read = next(r for r in decisions if r.tool == "read_file")
    # The sub-agent's call carries the whole chain: the user, the orchestrator, itself.
    assert read.effect == "allow"
    assert read.principal_chain == ("user:alice", orchestrator.agent_id, researcher.agent_id)
    assert read.agent == researcher.agent_id


def test_a_per_call_hand_over_overrides_the_interceptors_default(
        domain: TrustDomain, guards: tuple[Guard, Guard]) -> None:
    sender_guard, receiver_guard = guards
    orchestrator = enrol(domain, "orchestrator", ("read_file", "send_email:to^=ops@"),
                         max_depth=1)
    researcher = enrol(domain, "researcher", ("read_file",))

    async def body() -> None:
        with sender_guard.session(credential=orchestrator.credential,
                                  warrant=orchestrator.warrant,
                                  agent_key=orchestrator.key) as session:
            async with serve_agent(receiver_guard, researcher, own_warrant=False) as agent:
                client = await agent.client(SealingInterceptor(
                    session, recipient="researcher", delegate=[ToolGrant("send_email")]))
                answer = await send(client, tool_request("read_file", path="/srv/a"),
                                    context=delegating([ToolGrant("read_file")]))
                await client.close()
        assert answer == "ok: contents of /srv/a"

    run(body)


def test_a_low_privilege_agent_cannot_get_a_high_privilege_one_to_act_for_it(
        domain: TrustDomain, guards: tuple[Guard, Guard]) -> None:
    sender_guard, receiver_guard = guards
    intern = enrol(domain, "intern", ("read_file",))
    treasurer = enrol(domain, "treasurer", ("read_file", "send_email:to^=ops@"))

    async def body() -> None:
        with sender_guard.session(credential=intern.credential, warrant=intern.warrant,
                                  agent_key=intern.key) as session:
            async with serve_agent(receiver_guard, treasurer) as agent:
                client = await agent.client(SealingInterceptor(session, recipient="treasurer"))
                # What both warrants allow still works...
                shared = await send(client, tool_request("read_file", path="/srv/b"))
                # ...what only the treasurer may do is denied when the intern asks.
                escalated = await send(client, tool_request(
                    "send_email", to="ops@acme.example", body="wire the funds"))
                await client.close()
        assert shared == "ok: contents of /srv/b"
        assert escalated == "deny: delegation.requester-not-granted"

    run(body)
    denied = next(r for r in reversed(audit_records(domain))
                  if r.kind == "decision" and r.tool == "send_email")
    assert denied.effect == "deny" and denied.agent == treasurer.agent_id
    assert denied.detail is not None
    assert list(denied.detail["requested_by"]) == ["user:alice", intern.agent_id]


def test_values_the_sender_wrote_are_traced_to_it_as_untrusted(
        domain: TrustDomain, guards: tuple[Guard, Guard]) -> None:
    sender_guard, receiver_guard = guards
    intern = enrol(domain, "intern", ("read_file", "send_email:to^=ops@"))
    treasurer = enrol(domain, "treasurer", ("read_file", "send_email:to^=ops@"))

    async def body() -> None:
        with sender_guard.session(credential=intern.credential, warrant=intern.warrant,
                                  agent_key=intern.key) as session:
            async with serve_agent(receiver_guard, treasurer) as agent:
                client = await agent.client(SealingInterceptor(session, recipient="treasurer"))
                answer = await send(client, tool_request(
                    "send_email", to="ops@unknown-vendor.example", body="the ledger"))
                await client.close()
        assert answer == "ok: sent"  # a record field is a verified destination for the flow rules


    run(body)
    sent = next(r for r in reversed(audit_records(domain))
                if r.kind == "decision" and r.tool == "send_email")
    assert sent.detail is not None
    # The treasurer's own task ledger saw the message as untrusted content from the intern.
    flow = sent.detail["flow"]
    assert list(flow["sources"]) == [ledger_source(intern.agent_id)]
    assert "untrusted" in flow["arguments"]["to"]


def test_an_agent_cannot_hand_over_a_tool_it_does_not_hold_and_nothing_is_sent(
        domain: TrustDomain, guards: tuple[Guard, Guard]) -> None:
    sender_guard, receiver_guard = guards
    orchestrator = enrol(domain, "orchestrator", ("read_file",), max_depth=1)
    researcher = enrol(domain, "researcher", ("read_file",))

    async def body() -> None:
        with sender_guard.session(credential=orchestrator.credential,
                                  warrant=orchestrator.warrant,
                                  agent_key=orchestrator.key) as session:
            async with serve_agent(receiver_guard, researcher, own_warrant=False) as agent:
                client = await agent.client(SealingInterceptor(
                    session, recipient="researcher", delegate=[ToolGrant("drop_table")]))
                with pytest.raises(WarrantSpecError, match="drop_table"):
                    await send(client, tool_request("drop_table", table="users"))
                await client.close()
                assert agent.executor.seen == []

    run(body)
