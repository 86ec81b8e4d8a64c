"""The memory bridge's own rules, without a gateway process: facts, keys, fail-closed writes.

The upstream is replaced by a recorder (it is not what these tests are about); the
memory guard, trust domain, pipeline ledgers and audit log are the real ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import mcp_types as types
import pytest

from warrant.enforce import GuardedMemory, Pipeline, TrustDomain
from warrant.gateway._memory import (
    MemoryBridge,
    Shape,
    entity_fact,
    fact_key,
    observation_fact,
    written_facts,
)
from warrant.types import Decision, Effect, ToolCall


@pytest.fixture
def domain(tmp_path: Path) -> Iterator[TrustDomain]:
    with TrustDomain.init(tmp_path / "home", "acme.example") as opened:
        opened.register_agent("bot", owner="ops", purpose="remembers")
        yield opened


def allowed(domain: TrustDomain, tool: str) -> Decision:
    return Decision(effect=Effect.ALLOW, reasons=(), decision_id="d-1", policy_revision=None,
                    latency_us=0.0, tool=f"memory/{tool}",
                    agent=domain.agent("bot").agent_id, task_id="task-1")


def test_facts_are_keyed_by_what_identifies_them() -> None:
    assert fact_key("memory", entity_fact("Alice", "person")) == fact_key(
        "memory", entity_fact("Alice", "robot"))  # a changed type is the same entity
    assert fact_key("memory", observation_fact("Alice", "a")) != fact_key(
        "memory", observation_fact("Alice", "b"))
    assert fact_key("memory", observation_fact("Alice", "a")) != fact_key(
        "memory", observation_fact("Bob", "a"))
    assert fact_key("memory", entity_fact("A", "t")) != fact_key("other", entity_fact("A", "t"))


def test_malformed_write_arguments_are_errors_not_guesses() -> None:
    with pytest.raises(ValueError, match="entities"):
        written_facts("create_entities", {"entities": "Alice"})
    with pytest.raises(ValueError, match="observations"):
        written_facts("create_entities", {"entities": [
            {"name": "A", "entityType": "t", "observations": [1]}]})


def test_without_the_callers_key_a_guarded_write_is_refused_before_it_is_forwarded(
        domain: TrustDomain) -> None:
    forwarded: list[ToolCall] = []

    async def forward(call: ToolCall, shape: Shape) -> types.CallToolResult:
        forwarded.append(call)
        return types.CallToolResult(content=[])

    with GuardedMemory(domain) as memory:
        bridge = MemoryBridge("memory", memory, Pipeline(domain), namespacing="agent",
                              session_key_agent=None)  # e.g. an HTTP caller: no key proved
        call = ToolCall(tool="create_entities", server="memory", arguments={"entities": [
            {"name": "Alice", "entityType": "person", "observations": ["likes tea"]}]})
        result = anyio.run(bridge.call, allowed(domain, "create_entities"), call, forward)
    assert result.is_error
    assert "signed with the caller's own key" in str(result.content)
    assert forwarded == []


def test_a_tool_the_guard_does_not_understand_is_refused(domain: TrustDomain) -> None:
    async def forward(call: ToolCall, shape: Shape) -> types.CallToolResult:
        raise AssertionError("must not be forwarded")

    with GuardedMemory(domain) as memory:
        bridge = MemoryBridge("memory", memory, Pipeline(domain), namespacing="agent",
                              session_key_agent=domain.agent("bot").agent_id)
        call = ToolCall(tool="export_graph", server="memory", arguments={})
        result = anyio.run(bridge.call, allowed(domain, "export_graph"), call, forward)
    assert result.is_error and "not a memory tool" in str(result.content)


def test_a_read_whose_answer_is_not_a_graph_shows_nothing(domain: TrustDomain) -> None:
    async def forward(call: ToolCall, shape: Shape) -> types.CallToolResult:
        return shape(types.CallToolResult(content=[types.TextContent(text="not json")]))

    with GuardedMemory(domain) as memory:
        bridge = MemoryBridge("memory", memory, Pipeline(domain), namespacing="session",
                              session_key_agent=None)
        call = ToolCall(tool="read_graph", server="memory", arguments={})
        result = anyio.run(bridge.call, allowed(domain, "read_graph"), call, forward)
    assert result.is_error and "nothing of it is shown" in str(result.content)


def test_an_expired_fact_is_left_out_quietly_and_an_unsigned_one_raises_an_alarm(
        domain: TrustDomain) -> None:
    now = [1_800_000_000.0]
    graph = {"entities": [{"name": "Alice", "entityType": "person",
                           "observations": ["moved to Lyon", "planted"]}], "relations": []}

    async def forward(call: ToolCall, shape: Shape) -> types.CallToolResult:
        return shape(types.CallToolResult(content=[], structured_content=graph))

    with GuardedMemory(domain, clock=lambda: now[0]) as memory:
        bridge = MemoryBridge("memory", memory, Pipeline(domain), namespacing="agent",
                              session_key_agent=None)
        for fact, trust in ((entity_fact("Alice", "person"), "trusted"),
                            (observation_fact("Alice", "moved to Lyon"), "untrusted")):
            memory.put("bot", "agent:bot", fact_key("memory", fact), fact, trust=trust)
        now[0] += 2 * 86400  # past the untrusted TTL, within the trusted one
        call = ToolCall(tool="read_graph", server="memory", arguments={})
        result = anyio.run(bridge.call, allowed(domain, "read_graph"), call, forward)
        kept = memory.quarantined("agent:bot")
    assert not result.is_error
    assert result.structured_content == {"entities": [
        {"name": "Alice", "entityType": "person", "observations": []}], "relations": []}
    assert result.meta is not None
    assert result.meta["warrant/memory"]["expired"] == ["observation of 'Alice'"]
    assert result.meta["warrant/memory"]["withheld"] == ["observation of 'Alice'"]
    assert [r["row"]["found"]["text"] for r in kept] == ["planted"]  # only the unsigned one
