"""Framework tools guarded in one line, invoked the way each framework invokes them.

OpenAI Agents SDK: `await tool.on_invoke_tool(ToolContext(...), json_args)`, as
its runner does. LangChain: `tool.invoke(...)` / `tool.ainvoke(...)`, with plain
arguments or a model's tool call. No LLM, no network: a real trust domain, the
real pipeline, the frameworks' real tool objects.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import pytest
from agents import FunctionTool, function_tool
from agents.tool_context import ToolContext
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, ToolException, tool

from tests.conftest import AgentKit, make_agent
from warrant.enforce import Guard, TrustDomain
from warrant.gateway._adapters import guard_langchain_tool, guard_openai_tool
from warrant.types import Effect

AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"  # AWS's documented example key id


@pytest.fixture
def guard(domain: TrustDomain) -> Guard:
    return Guard(domain)


@pytest.fixture
def mailer(domain: TrustDomain) -> AgentKit:
    """An agent whose task names the one destination it may mail (a verified sink)."""
    return make_agent(domain, "mailer", instruction="Send the report to ops@acme.example.")


def _outcomes(guard: Guard) -> list[Mapping[str, Any]]:
    return [e.record.outcome for e in guard.domain.audit.tail(50)
            if e.record.kind == "outcome" and e.record.outcome is not None]


# --- OpenAI Agents SDK -------------------------------------------------------------------


def _invoke(tool: FunctionTool, arguments: str) -> Any:
    """What the SDK's runner does with a model's function call."""
    ctx = ToolContext(context=None, tool_name=tool.name, tool_call_id="call_1",
                      tool_arguments=arguments)

    async def invoke() -> Any:
        return await tool.on_invoke_tool(ctx, arguments)

    return asyncio.run(invoke())


def _openai_tools(ran: list[dict[str, Any]]) -> dict[str, FunctionTool]:
    @function_tool
    def read_file(path: str) -> str:
        """Read a file."""
        ran.append({"path": path})
        return f"contents of {path}"

    @function_tool
    async def send_email(to: str, body: str) -> str:
        """Send an email."""
        ran.append({"to": to, "body": body})
        return "sent"

    @function_tool
    def drop_table(table: str) -> str:
        """Drop a table."""
        ran.append({"table": table})
        return "dropped"

    return {"read_file": read_file, "send_email": send_email, "drop_table": drop_table}


def test_an_allowed_openai_tool_call_runs_and_its_outcome_is_audited(
        guard: Guard, agent: AgentKit) -> None:
    ran: list[dict[str, Any]] = []
    read_file = guard_openai_tool(guard, _openai_tools(ran)["read_file"], risk="read-only")
    assert read_file.name == "read_file"  # the model sees the same tool
    with guard.session(credential=agent.credential, warrant=agent.warrant,
                       agent_key=agent.key) as session:
        assert _invoke(read_file, '{"path": "/srv/a.txt"}') == "contents of /srv/a.txt"
    assert ran == [{"path": "/srv/a.txt"}]
    assert session.last_decision is not None
    assert session.last_decision.effect is Effect.ALLOW
    assert _outcomes(guard)[-1]["status"] == "ok"


@pytest.mark.claim("pipeline.tool-runs-only-when-allowed")
def test_an_openai_tool_outside_the_warrant_is_denied_with_the_reason_as_its_output(
        guard: Guard, agent: AgentKit) -> None:
    ran: list[dict[str, Any]] = []
    drop_table = guard_openai_tool(guard, _openai_tools(ran)["drop_table"], risk="destructive")
    with guard.session(credential=agent.credential, warrant=agent.warrant,
                       agent_key=agent.key) as session:
        output = _invoke(drop_table, '{"table": "users"}')
    assert ran == []
    assert isinstance(output, str) and output.startswith("warrant: denied, not run:")
    assert session.last_decision is not None
    assert session.last_decision.reasons[0].code == "warrant.tool-not-granted"
    assert session.last_decision.reasons[0].message in output


def test_an_openai_call_with_an_argument_outside_its_constraint_is_denied(
        guard: Guard, mailer: AgentKit) -> None:
    ran: list[dict[str, Any]] = []
    send_email = guard_openai_tool(guard, _openai_tools(ran)["send_email"],
                                   risk="external-communication")
    with guard.session(credential=mailer.credential, warrant=mailer.warrant, agent_key=mailer.key):
        denied = _invoke(send_email, '{"to": "eve@evil.example", "body": "hi"}')
        allowed = _invoke(send_email, '{"to": "ops@acme.example", "body": "hi"}')
    assert denied.startswith("warrant: denied, not run:") and "`to`" in denied
    assert allowed == "sent"
    assert ran == [{"to": "ops@acme.example", "body": "hi"}]


def test_an_openai_tool_runs_with_exactly_the_arguments_that_were_decided(
        guard: Guard, mailer: AgentKit) -> None:
    # The model's raw text never reaches a second parser: the tool gets the decided
    # object re-serialised, so a duplicated key resolves one way for both.
    received: list[str] = []

    async def record(ctx: ToolContext[Any], arguments: str) -> str:
        received.append(arguments)
        return "sent"

    send_email = guard_openai_tool(guard, FunctionTool(
        name="send_email", description="Send an email.", on_invoke_tool=record,
        params_json_schema={"type": "object", "properties": {"to": {"type": "string"},
                            "body": {"type": "string"}}, "required": ["to", "body"],
                            "additionalProperties": False}), risk="external-communication")
    with guard.session(credential=mailer.credential, warrant=mailer.warrant,
                       agent_key=mailer.key):
        smuggled = _invoke(send_email, '{"to": "ops@acme.example", "body": "x", '
                                       '"to": "eve@evil.example"}')
        decided = _invoke(send_email, '{"to": "eve@evil.example", "body": "x",\n'
                                      '  "to": "ops@acme.example"}')
    assert smuggled.startswith("warrant: denied")
    assert decided == "sent"
    assert received == ['{"to": "ops@acme.example", "body": "x"}']


def test_secrets_in_an_openai_tool_result_are_redacted_before_the_model_sees_them(
        guard: Guard, agent: AgentKit) -> None:
    @function_tool
    def read_file(path: str) -> str:
        """Read a file."""
        return f"aws_access_key_id = {AWS_KEY}"

    guarded = guard_openai_tool(guard, read_file, risk="read-only")
    with guard.session(credential=agent.credential, warrant=agent.warrant, agent_key=agent.key):
        output = _invoke(guarded, '{"path": "/home/me/.aws/credentials"}')
    assert AWS_KEY not in output and "[REDACTED:" in output
    assert [r["kind"] for r in _outcomes(guard)[-1]["redactions"]] == ["secret.aws-access-key"]


@pytest.mark.claim("pipeline.tool-runs-only-when-allowed")
def test_an_openai_tool_invoked_outside_any_session_is_denied(guard: Guard) -> None:
    ran: list[dict[str, Any]] = []
    read_file = guard_openai_tool(guard, _openai_tools(ran)["read_file"], risk="read-only")
    output = _invoke(read_file, '{"path": "/srv/a.txt"}')
    assert ran == []
    assert "no warrant session is open" in output


def test_an_openai_session_of_another_guard_does_not_open_this_one(
        guard: Guard, agent: AgentKit, domain: TrustDomain) -> None:
    ran: list[dict[str, Any]] = []
    read_file = guard_openai_tool(guard, _openai_tools(ran)["read_file"], risk="read-only")
    other = Guard(domain)
    with other.session(credential=agent.credential, warrant=agent.warrant, agent_key=agent.key):
        output = _invoke(read_file, '{"path": "/srv/a.txt"}')
    assert ran == [] and "no warrant session is open" in output


@pytest.mark.parametrize("arguments", ['{"path": ', "[1, 2]", '"a"', "\ud800"])
def test_openai_arguments_that_are_not_one_json_object_are_refused(
        guard: Guard, agent: AgentKit, arguments: str) -> None:
    ran: list[dict[str, Any]] = []
    read_file = guard_openai_tool(guard, _openai_tools(ran)["read_file"], risk="read-only")
    with guard.session(credential=agent.credential, warrant=agent.warrant, agent_key=agent.key):
        output = _invoke(read_file, arguments)
    assert ran == [] and output.startswith("warrant: refused, not run:")


def test_an_openai_call_that_needs_approval_does_not_run(
        guard: Guard, domain: TrustDomain) -> None:
    kit = make_agent(domain, "payer", tools=("transfer:amount=0..5000",))
    ran: list[int] = []

    @function_tool
    def transfer(amount: int) -> str:
        """Move money."""
        ran.append(amount)
        return "moved"

    guarded = guard_openai_tool(guard, transfer, risk="money-movement")
    with guard.session(credential=kit.credential, warrant=kit.warrant, agent_key=kit.key):
        output = _invoke(guarded, json.dumps({"amount": 2500}))
    assert ran == [] and output.startswith("warrant: needs a human's approval")


def test_an_openai_tool_is_decided_under_the_name_and_server_given(
        guard: Guard, domain: TrustDomain) -> None:
    kit = make_agent(domain, "reader", tools=("files/read_file",))
    ran: list[dict[str, Any]] = []
    read_file = guard_openai_tool(guard, _openai_tools(ran)["read_file"], risk="read-only",
                                  server="files")
    with guard.session(credential=kit.credential, warrant=kit.warrant, agent_key=kit.key):
        assert _invoke(read_file, '{"path": "a"}') == "contents of a"
    assert ran == [{"path": "a"}]


# --- LangChain -----------------------------------------------------------------------------


def _langchain_tools(ran: list[dict[str, Any]]) -> dict[str, BaseTool]:
    @tool
    def read_file(path: str) -> str:
        """Read a file."""
        ran.append({"path": path})
        return f"contents of {path}"

    @tool
    def send_email(to: str, body: str) -> str:
        """Send an email."""
        ran.append({"to": to, "body": body})
        return "sent"

    @tool
    def drop_table(table: str) -> str:
        """Drop a table."""
        ran.append({"table": table})
        return "dropped"

    return {"read_file": read_file, "send_email": send_email, "drop_table": drop_table}


def _tool_call(name: str, **args: object) -> dict[str, Any]:
    """A model's tool call, as an agent loop hands it to `invoke`."""
    return {"name": name, "args": args, "id": "call_1", "type": "tool_call"}


def test_an_allowed_langchain_tool_call_runs_with_the_same_name_and_schema(
        guard: Guard, agent: AgentKit) -> None:
    ran: list[dict[str, Any]] = []
    original = _langchain_tools(ran)["read_file"]
    read_file = guard_langchain_tool(guard, original, risk="read-only")
    assert (read_file.name, read_file.description) == (original.name, original.description)
    assert read_file.args == original.args
    with guard.session(credential=agent.credential, warrant=agent.warrant, agent_key=agent.key):
        assert read_file.invoke({"path": "/srv/a.txt"}) == "contents of /srv/a.txt"
        message = read_file.invoke(_tool_call("read_file", path="/srv/b.txt"))
    assert isinstance(message, ToolMessage) and message.status == "success"
    assert message.content == "contents of /srv/b.txt"
    assert ran == [{"path": "/srv/a.txt"}, {"path": "/srv/b.txt"}]
    assert [o["status"] for o in _outcomes(guard)] == ["ok", "ok"]


@pytest.mark.claim("pipeline.tool-runs-only-when-allowed")
def test_a_langchain_tool_outside_the_warrant_is_an_error_tool_message_with_the_reason(
        guard: Guard, agent: AgentKit) -> None:
    ran: list[dict[str, Any]] = []
    drop_table = guard_langchain_tool(guard, _langchain_tools(ran)["drop_table"],
                                      risk="destructive")
    with guard.session(credential=agent.credential, warrant=agent.warrant,
                       agent_key=agent.key) as session:
        message = drop_table.invoke(_tool_call("drop_table", table="users"))
        plain = drop_table.invoke({"table": "users"})
    assert ran == []
    assert isinstance(message, ToolMessage) and message.status == "error"
    assert session.last_decision is not None
    reason = session.last_decision.reasons[0]
    assert reason.code == "warrant.tool-not-granted"
    assert isinstance(message.content, str) and reason.message in message.content
    assert plain == message.content


def test_a_langchain_call_with_an_argument_outside_its_constraint_is_denied(
        guard: Guard, mailer: AgentKit) -> None:
    ran: list[dict[str, Any]] = []
    send_email = guard_langchain_tool(guard, _langchain_tools(ran)["send_email"],
                                      risk="external-communication")
    with guard.session(credential=mailer.credential, warrant=mailer.warrant, agent_key=mailer.key):
        denied = send_email.invoke({"to": "eve@evil.example", "body": "hi"})
        allowed = send_email.invoke({"to": "ops@acme.example", "body": "hi"})
    assert denied.startswith("warrant: denied, not run:") and "`to`" in denied
    assert allowed == "sent"
    assert ran == [{"to": "ops@acme.example", "body": "hi"}]


def test_secrets_in_a_langchain_tool_result_are_redacted(guard: Guard, agent: AgentKit) -> None:
    @tool
    def read_file(path: str) -> str:
        """Read a file."""
        return f"aws_access_key_id = {AWS_KEY}"

    guarded = guard_langchain_tool(guard, read_file, risk="read-only")
    with guard.session(credential=agent.credential, warrant=agent.warrant, agent_key=agent.key):
        message = guarded.invoke(_tool_call("read_file", path="creds"))
        awaited = asyncio.run(guarded.ainvoke({"path": "creds"}))
    assert isinstance(message, ToolMessage) and isinstance(message.content, str)
    for shown in (message.content, awaited):
        assert AWS_KEY not in shown and "[REDACTED:" in shown
    assert [[r["kind"] for r in o["redactions"]] for o in _outcomes(guard)] == \
        [["secret.aws-access-key"]] * 2


@pytest.mark.claim("pipeline.tool-runs-only-when-allowed")
def test_a_langchain_tool_invoked_outside_any_session_is_denied(guard: Guard) -> None:
    ran: list[dict[str, Any]] = []
    read_file = guard_langchain_tool(guard, _langchain_tools(ran)["read_file"], risk="read-only")
    output = read_file.invoke({"path": "/srv/a.txt"})
    awaited = asyncio.run(read_file.ainvoke({"path": "/srv/a.txt"}))
    assert ran == []
    assert "no warrant session is open" in output and awaited == output


def test_an_async_langchain_tool_is_guarded_on_ainvoke(guard: Guard, mailer: AgentKit) -> None:
    ran: list[str] = []

    @tool
    async def send_email(to: str, body: str) -> str:
        """Send an email."""
        ran.append(to)
        return "sent"

    guarded = guard_langchain_tool(guard, send_email, risk="external-communication")

    async def both() -> tuple[Any, Any]:
        return (await guarded.ainvoke({"to": "eve@evil.example", "body": "x"}),
                await guarded.ainvoke(_tool_call("send_email", to="ops@acme.example", body="x")))

    with guard.session(credential=mailer.credential, warrant=mailer.warrant, agent_key=mailer.key):
        denied, allowed = asyncio.run(both())
    assert denied.startswith("warrant: denied")
    assert isinstance(allowed, ToolMessage) and allowed.content == "sent"
    assert ran == ["ops@acme.example"]


def test_a_plain_langchain_base_tool_with_text_input_is_guarded(
        guard: Guard, agent: AgentKit) -> None:
    ran: list[str] = []

    class ReadFile(BaseTool):
        name: str = "read_file"
        description: str = "Read a file."

        def _run(self, tool_input: str) -> str:
            ran.append(tool_input)
            return f"contents of {tool_input}"

    guarded = guard_langchain_tool(guard, ReadFile(), risk="read-only")
    with guard.session(credential=agent.credential, warrant=agent.warrant, agent_key=agent.key):
        assert guarded.invoke("/srv/a.txt") == "contents of /srv/a.txt"
    assert ran == ["/srv/a.txt"]
    assert guarded.invoke("/srv/b.txt").startswith("warrant: denied")
    assert ran == ["/srv/a.txt"]


def test_a_langchain_tools_own_error_keeps_its_behaviour_and_is_recorded(
        guard: Guard, agent: AgentKit) -> None:
    @tool
    def read_file(path: str) -> str:
        """Read a file."""
        raise ToolException(f"no such file: {path}")

    guarded = guard_langchain_tool(guard, read_file, risk="read-only")
    with guard.session(credential=agent.credential, warrant=agent.warrant, agent_key=agent.key):
        with pytest.raises(ToolException, match="no such file"):
            guarded.invoke({"path": "missing"})
    assert _outcomes(guard)[-1]["status"] == "error"


def test_a_langchain_tool_with_an_artifact_cannot_be_guarded(guard: Guard) -> None:
    @tool(response_format="content_and_artifact")
    def read_file(path: str) -> tuple[str, bytes]:
        """Read a file."""
        return "ok", b""

    with pytest.raises(ValueError, match="response_format"):
        guard_langchain_tool(guard, read_file, risk="read-only")
