"""Upstream resources and prompts behind the gateway, decided like tool calls.

Naming:

- a resource URI is exposed with its server's name in front, joined by `+`:
  `file:///docs/a.md` of the server `fs` is `fs+file:///docs/a.md`, and a
  template `test://r/{id}` is `fs+test://r/{id}`. Server names cannot contain
  `+`, so the first `+` names the owner; no upstream can shadow another's URI.
  (`SERVER+scheme` is also a well-formed URI scheme when the server name starts
  with a letter.) Upstreams see, and warrants and policy constrain, the
  server's own URI.
- a prompt is exposed like a tool: `summarise` of `docs` is `docs__summarise`.

Enforcement: `resources/read` of `fs` is the call `fs/resources.read` with
`{"uri": URI}`, and `prompts/get` of `docs` is `docs/prompts.get` with
`{"name": NAME, "arguments": {...}}`. These pseudo-tools are registered in the
domain catalogue per server (read-only unless `[risk]` says otherwise, e.g.
`"fs/resources.read" = "write"`), and go through the one pipeline like any tool
call: warrant, revocation, Cedar policy (`Tool::"fs/resources.read"`,
`context.args`), budgets, audit of the decision and the outcome, DLP on the
result, the session's data-flow ledger. Upstream tool names cannot contain `.`
and exposed tool names cannot either, so no tool collides with them and
`tools/call` cannot name them. The warrant spec `fs/resources.read:uri^=file:///docs/`
lets an agent read only under `file:///docs/` of `fs`; URIs with `.`/`..`
segments (also percent-encoded) or control characters are refused before the
pipeline, so a prefix grant cannot be walked out of.

Discovery: a server's resources, templates and prompts are listed only to a
caller whose warrant grants that server's pseudo-tool, and resources and
prompts only if the warrant's argument constraints admit them. Lists are read
from the upstreams on each request (every page, each upstream under the call
timeout); a server without the capability, down, or failing is left out.
Servers under the memory guard expose neither (the guard vouches for its tools
only).

A refused `resources/read` or `prompts/get` is a JSON-RPC error (those results
have no `isError`) with code `DENIED` and the reasons and decision id in the
message; upstream failures are JSON-RPC errors too, and nothing is forwarded
unless the decision allowed it.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ValidationError

from warrant import flow, warrants
from warrant.types import Decision, Effect, ToolCall

from ._auth import REJECTED
from ._catalogue import (
    GET_PROMPT,
    READ_RESOURCE,
    UPSTREAM_TOOL,
    exposed_name,
    split_exposed_name,
)
from ._refusal import refusal
from ._upstream import Upstream, UpstreamUnavailable

if TYPE_CHECKING:
    from ._server import Caller, Gateway

log = logging.getLogger("warrant.gateway")

#: JSON-RPC error code of a request the gateway refused (implementation-defined range,
#: clear of the SDK's own -32000..-32019).
DENIED = -32030
#: JSON-RPC error code of an upstream that failed, timed out or answered out of bounds.
UPSTREAM_FAILED = types.INTERNAL_ERROR
URI_SEPARATOR = "+"
#: Pages read from one upstream for one listing (a server that pages forever stops here).
MAX_PAGES = 50
_DOT_SEGMENT = re.compile(r"(^|[/\\])\.{1,2}([/\\?#]|$)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ResultT = TypeVar("_ResultT", bound=BaseModel)
_ItemT = TypeVar("_ItemT")


def exposed_uri(server: str, uri: str) -> str:
    """`fs`, `file:///docs/a.md` → `fs+file:///docs/a.md` (also for URI templates)."""
    return f"{server}{URI_SEPARATOR}{uri}"


def split_exposed_uri(uri: str) -> tuple[str, str] | None:
    """`fs+file:///docs/a.md` → (`fs`, `file:///docs/a.md`); None when no server is named."""
    server, sep, own = uri.partition(URI_SEPARATOR)
    if not sep or not server or not own:
        return None
    return server, own


def unsafe_uri(uri: str) -> str | None:
    """Why a URI is refused before any decision (a prefix grant could not hold), or None."""
    if _CONTROL.search(uri):
        return "the resource URI contains control characters"
    decoded = uri
    for _ in range(3):  # percent-encoding nested a few times still counts
        decoded = urllib.parse.unquote(decoded)
    if _DOT_SEGMENT.search(decoded) or _CONTROL.search(decoded):
        return ("the resource URI contains `.` or `..` path segments or encoded control "
                "characters; name the resource by its plain path")
    return None


def call_for_request(method: str, params: Mapping[str, Any]) -> ToolCall | None:
    """The pseudo-tool call a `resources/read` or `prompts/get` is decided as, else None.

    HTTP clients sign a proof of possession over exactly this call (`_http`);
    raises TypeError/ValueError for arguments that are not a JSON object.
    """
    if method == "resources/read" and isinstance(uri := params.get("uri"), str):
        parts = split_exposed_uri(uri)
        return None if parts is None else ToolCall(
            tool=READ_RESOURCE, server=parts[0], arguments={"uri": parts[1]})
    if method == "prompts/get" and isinstance(name := params.get("name"), str):
        named = split_exposed_name(name)
        return None if named is None else ToolCall(
            tool=GET_PROMPT, server=named[0],
            arguments={"name": named[1], "arguments": dict(params.get("arguments") or {})})
    return None


def denied(message: str, decision: Decision | None = None) -> MCPError:
    """The JSON-RPC error for a refused read or get (with the decision, when there was one)."""
    data = ({"decision_id": decision.decision_id, "effect": decision.effect.value}
            if decision is not None else None)
    return MCPError(DENIED, message, data)


class ResourceFront:
    """`resources/*` and `prompts/*` of the gateway (see the module docstring)."""

    def __init__(self, gateway: Gateway):
        self._gw = gateway

    # -- discovery ---------------------------------------------------------------------------

    async def list_resources(self, caller: Caller | None) -> types.ListResourcesResult:
        warrant = self._gw.listing_warrant(caller)

        async def fetch(session: ClientSession, cursor: str | None
                        ) -> tuple[list[types.Resource], str | None]:
            page = await session.list_resources(params=_page(cursor))
            return page.resources, page.next_cursor

        found = await self._gather(warrant, READ_RESOURCE, "resources", fetch)
        return types.ListResourcesResult(resources=[
            resource.model_copy(update={"uri": exposed_uri(server, resource.uri)})
            for server, resource in found
            if warrant is not None and unsafe_uri(resource.uri) is None
            and _admits(warrant, server, READ_RESOURCE, {"uri": resource.uri})])

    async def list_templates(self, caller: Caller | None) -> types.ListResourceTemplatesResult:
        warrant = self._gw.listing_warrant(caller)

        async def fetch(session: ClientSession, cursor: str | None
                        ) -> tuple[list[types.ResourceTemplate], str | None]:
            page = await session.list_resource_templates(params=_page(cursor))
            return page.resource_templates, page.next_cursor

        # A template has no one URI to check constraints on: the grant decides, reads check.
        found = await self._gather(warrant, READ_RESOURCE, "resources", fetch)
        return types.ListResourceTemplatesResult(resource_templates=[
            template.model_copy(update={"uri_template": exposed_uri(server,
                                                                    template.uri_template)})
            for server, template in found])

    async def list_prompts(self, caller: Caller | None) -> types.ListPromptsResult:
        warrant = self._gw.listing_warrant(caller)

        async def fetch(session: ClientSession, cursor: str | None
                        ) -> tuple[list[types.Prompt], str | None]:
            page = await session.list_prompts(params=_page(cursor))
            return page.prompts, page.next_cursor

        found = await self._gather(warrant, GET_PROMPT, "prompts", fetch)
        return types.ListPromptsResult(prompts=[
            prompt.model_copy(update={"name": exposed_name(server, prompt.name)})
            for server, prompt in found
            if warrant is not None and UPSTREAM_TOOL.match(prompt.name)
            and _admits(warrant, server, GET_PROMPT, {"name": prompt.name, "arguments": {}})])

    async def _gather(self, warrant: warrants.Warrant | None, tool: str, capability: str,
                      fetch: Callable[[ClientSession, str | None],
                                      Awaitable[tuple[list[_ItemT], str | None]]],
                      ) -> list[tuple[str, _ItemT]]:
        """Every item of every upstream whose pseudo-tool `tool` the warrant grants."""
        if warrant is None:
            return []
        granted = frozenset(warrant.tools)
        found: dict[str, list[_ItemT]] = {}
        timeout = self._gw.config.limits.call_timeout_s

        async def one(upstream: Upstream, session: ClientSession) -> None:
            items: list[_ItemT] = []
            cursor: str | None = None
            try:
                with anyio.fail_after(timeout):
                    for _ in range(MAX_PAGES):
                        page, cursor = await fetch(session, cursor)
                        items.extend(page)
                        if not cursor:
                            break
            except Exception as exc:  # one failing upstream must not hide the others
                log.warning("listing %s of upstream %s failed: %s: %s", capability,
                            upstream.name, type(exc).__name__, str(exc)[:200])
                return
            found[upstream.name] = items

        async with anyio.create_task_group() as tg:
            for name, upstream in self._gw.upstreams.items():
                session = upstream.session
                if (f"{name}/{tool}" in granted and session is not None
                        and not self._gw.config.servers[name].memory_guard
                        and _offers(session, capability)):
                    tg.start_soon(one, upstream, session)
        # In configuration order, whatever order the upstreams answered in.
        return [(name, item) for name in self._gw.upstreams for item in found.get(name, ())]

    # -- resources/read and prompts/get -----------------------------------------------------

    async def read_resource(self, caller: Caller | None, uri: str) -> types.ReadResourceResult:
        parts = split_exposed_uri(uri)
        server = parts[0] if parts is not None else None
        label = f"{server}/{READ_RESOURCE}" if server else "resources/read"
        if caller is None:
            raise self._refused(caller, label, "no authenticated session", REJECTED)
        if parts is None or parts[0] not in self._gw.upstreams:
            raise self._refused(caller, label, f"unknown resource `{uri[:200]}`: this gateway "
                                "names resources `SERVER+URI`, as `resources/list` shows them")
        server, own = parts
        problem = unsafe_uri(own)
        if problem is not None:
            raise self._refused(caller, label, f"{problem} (`{uri[:200]}`)")
        call = self._call(caller, label, "resources/read", {"uri": uri})
        decision = self._allowed(caller, call)
        result = await self._forward(
            decision, self._gw.upstreams[server], types.ReadResourceResult,
            lambda session: session.read_resource(own))
        contents = [content.model_copy(update={
            "uri": exposed_uri(server, content.uri),
            **({"text": flow.spotlight(content.text, source=decision.tool,
                                       mode=self._gw.config.spotlight)}
               if isinstance(content, types.TextResourceContents) else {})})
            for content in result.contents]
        return types.ReadResourceResult(contents=contents)

    async def get_prompt(self, caller: Caller | None, name: str,
                         arguments: Mapping[str, str] | None) -> types.GetPromptResult:
        parts = split_exposed_name(name)
        label = f"{parts[0]}/{GET_PROMPT}" if parts is not None else "prompts/get"
        if caller is None:
            raise self._refused(caller, label, "no authenticated session", REJECTED)
        if parts is None or parts[0] not in self._gw.upstreams:
            raise self._refused(caller, label, f"unknown prompt `{name[:128]}`")
        server, prompt = parts
        call = self._call(caller, label, "prompts/get",
                          {"name": name, "arguments": dict(arguments or {})})
        decision = self._allowed(caller, call)
        result = await self._forward(
            decision, self._gw.upstreams[server], types.GetPromptResult,
            lambda session: session.get_prompt(prompt, arguments=dict(arguments or {})))
        messages = [message.model_copy(update={"content": message.content.model_copy(
            update={"text": flow.spotlight(message.content.text, source=decision.tool,
                                           mode=self._gw.config.spotlight)})})
            if isinstance(message.content, types.TextContent) else message
            for message in result.messages]
        return types.GetPromptResult(description=result.description, messages=messages)

    def _call(self, caller: Caller, label: str, method: str,
              params: Mapping[str, Any]) -> ToolCall:
        try:
            call = call_for_request(method, params)
        except (TypeError, ValueError) as exc:
            raise self._refused(caller, label, f"malformed request: {exc}") from None
        if call is None or call.server is None:  # not reached: the caller split the name
            raise self._refused(caller, label, f"malformed request to `{method}`")
        if self._gw.config.servers[call.server].memory_guard:
            raise self._refused(caller, label, f"server `{call.server}` is under the memory "
                                "guard, which vouches for its memory tools only; its "
                                "resources and prompts are not served")
        return call

    def _refused(self, caller: Caller | None, label: str, reason: str,
                 shown: str | None = None) -> MCPError:
        """Audit a request refused before the pipeline; the error to raise."""
        self._gw.refuse(caller, label, reason)
        return denied(f"denied: {shown or reason}")

    def _allowed(self, caller: Caller, call: ToolCall) -> Decision:
        """The pipeline's decision; raises the JSON-RPC error unless it allows."""
        decision = self._gw.decide(caller, call)
        if decision.effect is not Effect.ALLOW:
            raise denied(refusal(decision), decision)
        return decision

    async def _forward(self, decision: Decision, upstream: Upstream, kind: type[_ResultT],
                       request: Callable[[ClientSession], Awaitable[object]]) -> _ResultT:
        """Send an allowed request upstream; audit the outcome; the result, DLP-redacted."""
        gw, limits = self._gw, self._gw.config.limits
        try:
            session = upstream.require()
            with anyio.fail_after(limits.call_timeout_s):
                result = await request(session)
        except TimeoutError:
            raise self._failed(decision, f"upstream `{upstream.name}` did not answer within "
                                         f"{limits.call_timeout_s:g}s; the request was "
                                         "abandoned") from None
        except UpstreamUnavailable as exc:
            raise self._failed(decision, str(exc)) from None
        except MCPError as exc:  # the upstream's own error (e.g. no such resource)
            raise self._failed(decision, f"upstream `{upstream.name}`: {exc.message}"[:500],
                               code=exc.code) from None
        except Exception as exc:  # any other upstream failure is the caller's error
            raise self._failed(decision, f"upstream `{upstream.name}` failed: "
                                         f"{type(exc).__name__}: {exc}"[:500]) from None
        if not isinstance(result, kind):
            raise self._failed(decision, f"upstream `{upstream.name}` sent a result of an "
                                         "unexpected kind")
        size = len(result.model_dump_json(by_alias=True, exclude_none=True))
        if size > limits.max_message_bytes:
            raise self._failed(decision, f"upstream `{upstream.name}` sent {size} bytes, more "
                                         f"than the {limits.max_message_bytes} allowed; the "
                                         "result was dropped")
        payload = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        shown, redactions = gw.pipeline.inspect_output(payload)
        gw.record_outcome(decision, ok=True, result=payload, redactions=redactions)
        if not (redactions.findings or redactions.truncated):
            return result
        try:
            return kind.model_validate(shown)
        except ValidationError:  # redaction broke the result's shape: send nothing of it
            raise denied(f"the result of `{decision.tool}` held data that could not be "
                         "redacted safely; it was dropped", decision) from None

    def _failed(self, decision: Decision, message: str, *,
                code: int = UPSTREAM_FAILED) -> MCPError:
        self._gw.record_outcome(decision, ok=False, error=message)
        return MCPError(code, message, {"decision_id": decision.decision_id})


def _page(cursor: str | None) -> types.PaginatedRequestParams | None:
    return types.PaginatedRequestParams(cursor=cursor) if cursor else None


def _offers(session: ClientSession, capability: str) -> bool:
    """Whether the upstream declared `resources` / `prompts` (not all servers have them)."""
    capabilities = session.server_capabilities
    return capabilities is not None and getattr(capabilities, capability, None) is not None


def _admits(warrant: warrants.Warrant, server: str, tool: str,
            arguments: Mapping[str, Any]) -> bool:
    """Whether the warrant's own checks (grant, constraints, expiry) allow this call."""
    try:
        return not warrant.check(ToolCall(tool=tool, server=server, arguments=arguments))
    except (TypeError, ValueError):  # an upstream's odd item is simply not shown
        return False

