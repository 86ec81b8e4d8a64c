"""The downstream side: an MCP server over stdio that enforces every call.

`tools/list` shows only tools the caller's warrant grants that are pinned and
not quarantined (least privilege in discovery). `tools/call` runs, in order:

1. no caller (no stdio session, no tokens in the HTTP request) → "credential
   rejected" (audited), nothing else;
2. unknown or quarantined tool → refused before the pipeline (audited);
3. the one pipeline (`GuardSession.check`): warrant, revocation, catalogue,
   Cedar policy, approvals, budgets; the decision is audited before anything
   reaches the upstream;
4. allow → forward with a timeout and audit the outcome; deny or
   needs-approval → an `isError` result with the decision's reasons.

Who the caller is comes with each request: over stdio, the `GuardSession`
opened at launch (or re-opened from its renewed token files, `_refresh`); over
HTTP, the tokens and proof of possession that request presented (`Presented`,
parsed from headers by `_http`), which the pipeline's Authenticate stage
verifies like any remote PEP's.

Every failure is an `isError` result with a readable message: the gateway keeps
serving when an upstream hangs, crashes or floods.

`resources/*` and `prompts/*` of the upstreams are served by `_resources`: each
`resources/read` and `prompts/get` is decided by the same `decide` as a tool
call (as the pseudo-tools `SERVER/resources.read` and `SERVER/prompts.get`),
and a refusal is a JSON-RPC error. Over stdio, frames longer than
`limits.max_message_bytes` are refused without being read (`_stdio`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage

from warrant import flow, identity, scanners, warrants
from warrant.enforce import CallRequest, GuardSession, Pipeline, TrustDomain
from warrant.errors import InvalidCredential, InvalidWarrant
from warrant.store import SqlitePins
from warrant.types import Decision, Effect, ToolCall

from ._auth import REJECTED
from ._catalogue import Catalogue, ToolDefinition, exposed_name, split_exposed_name
from ._config import GatewayConfig
from ._memory import MemoryBridge, Shape, memory_bridges
from ._refresh import SessionSource
from ._refusal import refusal
from ._resources import ResourceFront
from ._stdio import stdio_server
from ._upstream import Upstream, UpstreamUnavailable

log = logging.getLogger("warrant.gateway")
SERVER_NAME = "warrant-gateway"
#: JSON-RPC 2.0's code for a frame that is not valid JSON (or not a message).
PARSE_ERROR = -32700


#: Where the HTTP front end leaves a request's `Presented` tokens in its ASGI scope.
PRESENTED_SCOPE_KEY = "warrant.presented"


def error_result(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)


@dataclass(frozen=True, slots=True)
class Presented:
    """The tokens one HTTP request presents; nothing here is verified yet.

    The pipeline verifies them on every call (credential signature and lifetime,
    proof of possession over the exact call, warrant); listing verifies the
    credential and warrant (there is no call for a proof to cover).
    """

    credential: str
    warrant: str
    #: Proof of possession for the one `tools/call` in the request (None otherwise).
    proof: str | None = None


#: Who is behind one request: the stdio launch session, or one HTTP request's tokens.
Caller = GuardSession | Presented


class Gateway:
    """Aggregates the configured upstreams behind one enforcing MCP server."""

    def __init__(self, domain: TrustDomain, config: GatewayConfig, pins: SqlitePins,
                 pipeline: Pipeline, session: GuardSession | SessionSource | None):
        """`session`: the stdio caller's (a `SessionSource` follows renewed token files)."""
        self.domain = domain
        self.config = config
        self.catalogue = Catalogue(domain, pins, config.risk)
        self.pipeline = pipeline
        self.sessions = (session if isinstance(session, SessionSource)
                         else SessionSource(session))
        self.upstreams = {name: Upstream(name, server, self._on_tools,
                                         strict=domain.config.strict,
                                         restart_after_s=config.limits.restart_after_s,
                                         max_restarts=config.limits.max_restarts)
                          for name, server in config.servers.items()}
        self._downstream: ServerSession | None = None
        self.catalogue.register_pseudo_tools(config.servers)
        self.resources = ResourceFront(self)
        self.server: Server[Any] = Server(
            SERVER_NAME, on_list_tools=self._list_tools, on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_resource_templates,
            on_read_resource=self._read_resource, on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt)
        # -- memory guard hook (gateway/_memory.py): servers with `memory_guard = true`
        self.memory: dict[str, MemoryBridge] = memory_bridges(
            domain, {name: (s.memory_guard, s.memory_namespace)
                     for name, s in config.servers.items()}, pipeline, self.sessions.current())

    @property
    def session(self) -> GuardSession | None:
        """The stdio caller's session now (None: every call is "credential rejected")."""
        return self.sessions.current()

    # -- lifecycle ---------------------------------------------------------------------------

    async def serve_stdio(self) -> None:
        """Connect every upstream, then serve one MCP client on stdin/stdout until it leaves."""
        async def downstream() -> None:
            async with stdio_server(max_frame_bytes=self.config.limits.max_message_bytes) as (
                    read, write), anyio.create_task_group() as tg:
                # The SDK drops a line it cannot parse without a word; JSON-RPC 2.0 asks
                # for an error with id null, so the client learns its frame was refused.
                send, receive = anyio.create_memory_object_stream[
                    SessionMessage | Exception](0)

                async def answer_parse_errors() -> None:
                    async with send:
                        async for item in read:
                            if isinstance(item, Exception):
                                log.info("refused an unparseable stdio frame: %s",
                                         str(item)[:200])
                                await write.send(SessionMessage(types.JSONRPCError(
                                    jsonrpc="2.0", id=None, error=types.ErrorData(
                                        code=PARSE_ERROR, message="parse error: the frame is "
                                        "not a valid JSON-RPC 2.0 message"))))
                            else:
                                await send.send(item)

                tg.start_soon(answer_parse_errors)
                options = self.server.create_initialization_options(
                    NotificationOptions(tools_changed=True))
                await self.server.run(receive, write, options)
                tg.cancel_scope.cancel()

        await self.serve(downstream)

    async def serve(self, downstream: Callable[[], Awaitable[None]]) -> None:
        """Connect every upstream, run `downstream` (a transport) until it returns, stop them."""
        async with anyio.create_task_group() as tg:
            async with anyio.create_task_group() as starting:
                for upstream in self.upstreams.values():
                    starting.start_soon(tg.start, upstream.run)
            try:
                await downstream()
            finally:
                for upstream in self.upstreams.values():
                    upstream.stop()
                for bridge in self.memory.values():  # memory guard hook: close its store
                    bridge.memory.close()

    async def _on_tools(self, upstream: Upstream, definitions: list[ToolDefinition]) -> None:
        self.catalogue.observe(definitions)
        if self._downstream is not None:
            try:
                await self._downstream.send_tool_list_changed()
            except Exception:  # the client may be gone; listing still works
                log.debug("could not notify the client of a tool list change", exc_info=True)

    # -- tools/list --------------------------------------------------------------------------

    def _caller(self, ctx: ServerRequestContext[Any]) -> Caller | None:
        """The stdio session, or the tokens the HTTP front end found on this request."""
        if ctx.request is None:  # stdio: the one client this process serves
            self._downstream = ctx.session
            return self.sessions.current()
        scope = getattr(ctx.request, "scope", None)
        presented = scope.get(PRESENTED_SCOPE_KEY) if isinstance(scope, dict) else None
        return presented if isinstance(presented, Presented) else None

    async def _list_tools(self, ctx: ServerRequestContext[Any],
                          params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        granted = self._granted(self._caller(ctx))
        tools = []
        for upstream in self.upstreams.values():
            for definition in upstream.tools.values():
                qualified = definition.qualified_name
                if qualified in granted and self.catalogue.blocked(qualified) is None:
                    tools.append(_exposed(definition))
        return types.ListToolsResult(tools=tools)

    def _granted(self, caller: Caller | None) -> frozenset[str]:
        """Tool names the caller's warrant grants now (none without valid tokens)."""
        warrant = self.listing_warrant(caller)
        return frozenset(warrant.tools) if warrant is not None else frozenset()

    def listing_warrant(self, caller: Caller | None) -> warrants.Warrant | None:
        """The caller's warrant if it may be used now, to filter listings; else None.

        Credential, expiry, holder and revocation (of the task, its tokens and
        every agent of its delegation chain); the verified warrant is kept so its
        argument constraints can filter listed items too.
        """
        now = time.time()
        try:
            match caller:
                case None:
                    return None
                case GuardSession():  # stdio: verified (with its key) at launch
                    credential, token = caller.credential, caller.warrant
                case Presented():  # HTTP: verify the credential now; no call, so no proof
                    credential = identity.verify_credential(
                        caller.credential, self.domain.public_key, domain=self.domain.domain,
                        now=now)
                    token = caller.warrant
            if now >= credential.expires_at:
                return None
            warrant = warrants.verify_warrant(token, self.domain.public_key,
                                              domain=self.domain.domain,
                                              now=dt.datetime.fromtimestamp(now, dt.UTC))
        except (InvalidCredential, InvalidWarrant):
            return None
        agent = credential.agent_id
        if warrant.holder != agent or self.domain.store.revoked(
                task_id=warrant.task_id, agent_id=agent,
                credential_id=credential.credential_id, token_ids=warrant.revocation_ids,
                agent_ids=warrant.agents):
            return None
        return warrant

    # -- resources and prompts (gateway/_resources.py) ---------------------------------------

    async def _list_resources(self, ctx: ServerRequestContext[Any],
                              params: types.PaginatedRequestParams | None
                              ) -> types.ListResourcesResult:
        return await self.resources.list_resources(self._caller(ctx))

    async def _list_resource_templates(self, ctx: ServerRequestContext[Any],
                                       params: types.PaginatedRequestParams | None
                                       ) -> types.ListResourceTemplatesResult:
        return await self.resources.list_templates(self._caller(ctx))

    async def _list_prompts(self, ctx: ServerRequestContext[Any],
                            params: types.PaginatedRequestParams | None
                            ) -> types.ListPromptsResult:
        return await self.resources.list_prompts(self._caller(ctx))

    async def _read_resource(self, ctx: ServerRequestContext[Any],
                             params: types.ReadResourceRequestParams
                             ) -> types.ReadResourceResult:
        try:
            return await self.resources.read_resource(self._caller(ctx), params.uri)
        except MCPError:
            raise
        except Exception:
            log.exception("resources/read `%s` failed inside the gateway", params.uri[:200])
            raise MCPError(types.INTERNAL_ERROR, "the gateway failed to handle this read; it "
                           "was not forwarded") from None

    async def _get_prompt(self, ctx: ServerRequestContext[Any],
                          params: types.GetPromptRequestParams) -> types.GetPromptResult:
        try:
            return await self.resources.get_prompt(self._caller(ctx), params.name,
                                                   params.arguments)
        except MCPError:
            raise
        except Exception:
            log.exception("prompts/get `%s` failed inside the gateway", params.name[:128])
            raise MCPError(types.INTERNAL_ERROR, "the gateway failed to handle this request; "
                           "it was not forwarded") from None

    # -- tools/call --------------------------------------------------------------------------

    async def _call_tool(self, ctx: ServerRequestContext[Any],
                         params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            return await self._enforce(self._caller(ctx), params.name, params.arguments or {})
        except Exception:
            log.exception("tools/call `%s` failed inside the gateway", params.name[:128])
            return error_result("the gateway failed to handle this call; it was not forwarded")

    async def _enforce(  # noqa: PLR0911 - one early answer per refusal, in order
            self, caller: Caller | None, name: str,
            arguments: Mapping[str, Any]) -> types.CallToolResult:
        if caller is None:
            self.refuse(caller, name, "no authenticated session")
            return error_result(f"denied: {REJECTED}")
        parts = split_exposed_name(name)
        if parts is None or parts[0] not in self.upstreams:
            message = f"unknown tool `{name[:128]}`"
            self.refuse(caller, name, message)
            return error_result(f"denied: {message}")
        server, tool = parts
        blocked = self.catalogue.blocked(f"{server}/{tool}")
        if blocked is not None:
            self.refuse(caller, name, blocked)
            return error_result(f"denied: {blocked}")
        try:
            call = ToolCall(tool=tool, server=server, arguments=arguments)
        except (TypeError, ValueError) as exc:
            return error_result(f"denied: malformed call: {exc}")
        decision = self.decide(caller, call)
        match decision.effect:
            case Effect.ALLOW:
                bridge = self.memory.get(server)
                if bridge is not None:  # memory guard hook: vet/sign writes, verify reads
                    upstream = self.upstreams[server]
                    return await bridge.call(decision, call, lambda c, shape: self._forward(
                        decision, upstream, c, shape=shape))
                return await self._forward(decision, self.upstreams[server], call)
            case Effect.NEEDS_APPROVAL | Effect.DENY:
                return error_result(refusal(decision))

    def decide(self, caller: Caller, call: ToolCall) -> Decision:
        """The one pipeline's decision on `call` for this caller (audited by the pipeline)."""
        match caller:
            case GuardSession():  # possession proved at launch
                return caller.check(call)
            case Presented():  # the pipeline verifies credential, proof and warrant
                return self.pipeline.decide(CallRequest(
                    call=call, credential=caller.credential, warrant=caller.warrant,
                    proof=caller.proof))

    def record_outcome(self, decision: Decision, *, ok: bool, result: Any = None,
                       error: str | None = None,
                       redactions: scanners.DlpReport | None = None) -> None:
        """Audit what an allowed request did (and feed the session's data-flow ledger)."""
        self._outcome(decision, ok=ok, result=result, error=error, redactions=redactions)

    def refuse(self, caller: Caller | None, name: str, reason: str) -> None:
        """Audit a call refused before the pipeline (it never got a decision)."""
        # Only a launch session's agent is known here: HTTP tokens are unverified yet.
        agent = caller.credential.agent_id if isinstance(caller, GuardSession) else None
        self.domain.record_admin("gateway.call-refused", {
            "tool": name[:200], "reason": reason, "agent": agent})

    async def _forward(self, decision: Decision, upstream: Upstream,  # noqa: PLR0911 - one answer per failure, in order
                       call: ToolCall, *, shape: Shape | None = None) -> types.CallToolResult:
        """Call the upstream; `shape` (memory guard hook) reworks a successful raw result."""
        limits = self.config.limits
        try:
            session = upstream.require()
            with anyio.fail_after(limits.call_timeout_s):
                result = await session.call_tool(call.tool, call.arguments_json())
        except TimeoutError:
            message = (f"upstream `{upstream.name}` did not answer within "
                       f"{limits.call_timeout_s:g}s; the call was abandoned")
            self._outcome(decision, ok=False, error=message)
            return error_result(message)
        except UpstreamUnavailable as exc:
            self._outcome(decision, ok=False, error=str(exc))
            return error_result(str(exc))
        except Exception as exc:  # any upstream failure is the caller's error
            message = f"upstream `{upstream.name}` failed: {type(exc).__name__}: {exc}"[:500]
            self._outcome(decision, ok=False, error=message)
            return error_result(message)
        if not isinstance(result, types.CallToolResult):
            self._outcome(decision, ok=False, error="unexpected result type")
            return error_result(f"upstream `{upstream.name}` sent a result of an unknown kind")
        payload = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        size = len(result.model_dump_json(by_alias=True, exclude_none=True))
        if size > limits.max_message_bytes:
            message = (f"upstream `{upstream.name}` sent {size} bytes, more than the "
                       f"{limits.max_message_bytes} allowed; the result was dropped")
            self._outcome(decision, ok=False, error=message)
            return error_result(message)
        if shape is not None and not result.is_error:  # memory guard hook (within the limit)
            result = shape(result)
            payload = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        shown, redactions = self.pipeline.inspect_output(payload)
        self._outcome(decision, ok=not result.is_error, result=payload, redactions=redactions)
        if redactions.findings or redactions.truncated:
            try:
                result = types.CallToolResult.model_validate(shown)
            except ValueError:  # redaction broke the result's shape: send nothing of it
                return error_result(f"the result of `{decision.tool}` held data that could "
                                    "not be redacted safely; it was dropped")
        return self._spotlight(result, decision.tool)

    def _spotlight(self, result: types.CallToolResult, source: str) -> types.CallToolResult:
        mode = self.config.spotlight
        if mode == "off":
            return result
        content = [block.model_copy(update={"text": flow.spotlight(
            block.text, source=source, mode=mode)})
            if isinstance(block, types.TextContent) else block for block in result.content]
        return result.model_copy(update={"content": content})

    def _outcome(self, decision: Decision, *, ok: bool, result: Any = None,
                 error: str | None = None, redactions: scanners.DlpReport | None = None) -> None:
        try:
            self.pipeline.record_outcome(decision, ok=ok, result=result, error=error,
                                         redactions=redactions)
        except Exception:  # the effect already happened; say so loudly
            log.critical("outcome of decision %s could not be audited", decision.decision_id,
                         exc_info=True)


def _exposed(definition: ToolDefinition) -> types.Tool:
    annotations = (types.ToolAnnotations.model_validate(definition.annotations)
                   if definition.annotations else None)
    return types.Tool(name=exposed_name(definition.server, definition.name),
                      description=definition.description,
                      input_schema=dict(definition.input_schema), annotations=annotations)
