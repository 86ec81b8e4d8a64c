"""One-line guards for agent-framework tools: OpenAI Agents SDK and LangChain.

    from warrant.gateway import guard_langchain_tool, guard_openai_tool

    send = guard_openai_tool(guard, send_email, risk="external-communication")
    search = guard_langchain_tool(guard, search_tool, risk="read-only")

Each returns a tool of the framework's own type, with the same name, description
and argument schema, whose every invocation goes through the current
`GuardSession` (warrant, revocation, policy, budgets, audit of decision and
outcome). A call that is not allowed never reaches the wrapped tool and comes
back as the framework's ordinary tool error carrying the readable reason, so the
model sees why and the agent run goes on. Results are redacted as
`GuardSession.run` redacts them before the model sees them.

The frameworks are imported only when an adapter is used: Warrant does not
depend on them.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from warrant.enforce import ApprovalRequired, Denied, Guard, GuardSession, current_session
from warrant.types import Decision, Effect, Reason, RiskClass, ToolCall, ToolInfo

if TYPE_CHECKING:
    from agents import FunctionTool
    from agents.tool_context import ToolContext
    from langchain_core.tools import BaseTool, StructuredTool

__all__ = ["guard_langchain_tool", "guard_openai_tool"]


class _Refused(Exception):  # noqa: N818 - a message carrier, never escapes this module
    """A call refused before the pipeline could decide (arguments not a JSON object)."""


def guard_openai_tool(guard: Guard, tool: FunctionTool, *, risk: RiskClass | str,
                      name: str | None = None, server: str | None = None,
                      toolsets: tuple[str, ...] = ()) -> FunctionTool:
    """An OpenAI Agents SDK `FunctionTool` whose every invocation `guard` decides.

    `name` (default: the tool's own name) and `server` are what the warrant and
    the policy see; the model keeps seeing the tool's own name and schema. A
    refused call returns the reason as the tool's output, the SDK's documented
    way to send an error back to the model; the wrapped tool does not run.
    """
    info = _register(guard, name or tool.name, risk, server, tool.description, toolsets)
    inner = tool.on_invoke_tool

    async def on_invoke_tool(ctx: ToolContext[Any], input_json: str) -> Any:
        try:
            session = _session_for(guard, info)
            call = ToolCall(tool=info.name, server=server, arguments=_json_object(input_json))
            # INVARIANT: the wrapped tool parses exactly the arguments that were
            # decided, re-serialised from the parsed object; a second parser never
            # gets the model's raw text (duplicate keys, odd numbers, whitespace).
            decided = json.dumps(call.arguments_json(), ensure_ascii=False)
            return await session.run_async(lambda: inner(ctx, decided), call,
                                           as_json=to_jsonable_python)
        except (Denied, _Refused) as exc:
            return _refusal_text(exc)

    guarded = copy.copy(tool)  # the SDK's own copy, which keeps every other setting
    guarded.on_invoke_tool = on_invoke_tool
    return guarded


def guard_langchain_tool(guard: Guard, tool: BaseTool, *, risk: RiskClass | str,
                         name: str | None = None, server: str | None = None,
                         toolsets: tuple[str, ...] = ()) -> StructuredTool:
    """A LangChain tool whose every invocation (`invoke`, `ainvoke`, a tool call) `guard` decides.

    The result is a `StructuredTool` with the tool's name, description and
    argument schema. A refused call raises `ToolException`, handled as LangChain
    handles tool errors: the reason becomes the tool's output (a `ToolMessage`
    with `status="error"` when invoked with a tool call). The wrapped tool's own
    errors keep the behaviour its `handle_tool_error` gives them.
    """
    # An optional framework: imported only by the application that uses it.
    from langchain_core.tools import StructuredTool, ToolException  # noqa: PLC0415

    if tool.response_format != "content":
        # An artifact would reach the application beside the content, unredacted.
        raise ValueError(f"`{tool.name}`: only tools with response_format='content' can be "
                         "guarded")

    info = _register(guard, name or tool.name, risk, server, tool.description, toolsets)
    takes_text = tool.args_schema is None  # a plain BaseTool takes one string input

    class WarrantRefusal(ToolException):
        """A refused call, shown to the model as the tool's output."""

    def handle_error(exc: ToolException) -> str:
        if isinstance(exc, WarrantRefusal):
            return str(exc)
        # The wrapped tool already applied its own handler: what escaped it was
        # meant to propagate, so it still does.
        raise exc

    def prepare(kwargs: dict[str, Any]) -> tuple[GuardSession, ToolCall]:
        try:
            session = _session_for(guard, info)
            # Validated values may be models or dates: the warrant and the wrapped
            # tool both get the same JSON form, so what runs is what was decided.
            arguments = to_jsonable_python(kwargs)
            return session, ToolCall(tool=info.name, server=server, arguments=arguments)
        except Denied as exc:
            raise WarrantRefusal(_refusal_text(exc)) from exc
        except (TypeError, ValueError) as exc:  # pydantic_core's error is a ValueError
            raise WarrantRefusal(f"`{info.name}` refused: {exc}") from exc

    def tool_input(call: ToolCall) -> str | dict[str, Any]:
        arguments = call.arguments_json()
        return str(arguments["tool_input"]) if takes_text else arguments

    def run_sync(**kwargs: Any) -> Any:
        session, call = prepare(kwargs)
        try:
            return session.run(lambda **_: tool.invoke(tool_input(call)), call)
        except Denied as exc:
            raise WarrantRefusal(_refusal_text(exc)) from exc

    async def run_async(**kwargs: Any) -> Any:
        session, call = prepare(kwargs)
        try:
            return await session.run_async(lambda: tool.ainvoke(tool_input(call)), call,
                                           as_json=to_jsonable_python)
        except Denied as exc:
            raise WarrantRefusal(_refusal_text(exc)) from exc

    if takes_text:
        def run_text(tool_input: str) -> Any:
            return run_sync(tool_input=tool_input)

        async def arun_text(tool_input: str) -> Any:
            return await run_async(tool_input=tool_input)

        return StructuredTool.from_function(
            func=run_text, coroutine=arun_text, name=tool.name, description=tool.description,
            return_direct=tool.return_direct, handle_tool_error=handle_error)
    return StructuredTool.from_function(
        func=run_sync, coroutine=run_async, name=tool.name, description=tool.description,
        args_schema=tool.args_schema, return_direct=tool.return_direct,
        handle_tool_error=handle_error, infer_schema=False)


def _register(guard: Guard, name: str, risk: RiskClass | str, server: str | None,
              description: str, toolsets: tuple[str, ...]) -> ToolInfo:
    info = ToolInfo(name=name, risk_class=RiskClass(risk), server=server,
                    description=description.strip(), toolsets=toolsets)
    guard.register_tool(info)
    return info


def _session_for(guard: Guard, info: ToolInfo) -> GuardSession:
    """The session open in this context for `guard`; raises `Denied` when there is none."""
    session = current_session()
    if session is None or session.guard is not guard:
        raise Denied(Decision(effect=Effect.DENY, reasons=(Reason(
            code="session.none", message="no warrant session is open in this context",
            source="guard"),), decision_id="none", policy_revision=None, latency_us=0.0,
            tool=info.qualified_name))
    return session


def _json_object(text: str) -> dict[str, Any]:
    """The model's arguments, which must be one JSON object (an empty string is `{}`)."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:  # JSONDecodeError and invalid UTF-8 surrogates alike
        raise _Refused(f"the arguments are not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise _Refused(f"the arguments must be a JSON object, not {type(value).__name__}")
    return value


def _refusal_text(exc: Exception) -> str:
    if isinstance(exc, ApprovalRequired):
        return f"warrant: needs a human's approval, not run: {exc}"
    if isinstance(exc, Denied):
        return f"warrant: denied, not run: {exc}"
    return f"warrant: refused, not run: {exc}"


