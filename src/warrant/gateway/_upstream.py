"""Connections to upstream MCP servers (stdio processes or streamable HTTP URLs).

Each upstream lives in its own task, which owns the transport and the
`ClientSession` (anyio requires a context to be exited by the task that entered
it). A crash or a disconnect ends that task only: the upstream is marked down
and calls to it fail with an error result, while the gateway keeps serving the
others. `notifications/tools/list_changed` makes the gateway list again, so a
changed definition is seen (and quarantined) mid-session.

Stdio servers run sandboxed (`warrant.sandbox.sandboxed_command`) unless their
config says `unsafe_no_sandbox`, which is logged on every start and refused
outright (the gateway does not start) when the domain is strict. When no
sandbox can be built the server does not start; it is reported down with how
to fix it, and the other upstreams keep working.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import mcp_types as types
from anyio.abc import TaskStatus
from mcp.client._transport import TransportStreams
from mcp.client.session import ClientSession, IncomingMessage
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from warrant.errors import WarrantError
from warrant.sandbox import SandboxRefused, get_profile, sandboxed_command

from ._catalogue import ToolDefinition
from ._config import HttpServer, StdioServer

log = logging.getLogger("warrant.gateway")

#: Called with the server's full tool list each time it is (re)listed.
OnTools = Callable[["Upstream", list[ToolDefinition]], Awaitable[None]]
CONNECT_TIMEOUT_S = 30.0


class UpstreamUnavailable(Exception):  # noqa: N818 - internal, turned into an error result
    """The upstream is not connected (it failed to start, crashed, or closed)."""


class Upstream:
    """One configured upstream server and its live session (if any)."""

    def __init__(self, name: str, config: StdioServer | HttpServer, on_tools: OnTools, *,
                 strict: bool = True):
        """Raises `SandboxRefused` for `unsafe_no_sandbox` when `strict` (the domain's
        setting; strict unless told otherwise)."""
        if isinstance(config, StdioServer) and config.unsafe_no_sandbox and strict:
            raise SandboxRefused(
                f"server `{name}` sets `unsafe_no_sandbox`, which is refused because the "
                "domain is strict; the gateway was not started",
                hint="remove `unsafe_no_sandbox` so the server runs sandboxed (add "
                     "`sandbox_bind_ro` for files it needs), or set `strict = false` in the "
                     "domain's config.toml")
        self.name = name
        self.config = config
        self._on_tools = on_tools
        self.session: ClientSession | None = None
        self.error: str | None = None
        self._stop = anyio.Event()
        self._relist = anyio.Event()
        #: The tools of the last listing, by upstream name.
        self.tools: dict[str, ToolDefinition] = {}

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect, list tools, then serve until stopped. Never raises (errors mark it down)."""
        started = False
        try:
            async with AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._transport())
                session = await stack.enter_async_context(ClientSession(
                    read, write, message_handler=self._on_message))
                # Only plain awaits inside the deadline: cancel scopes must nest (LIFO).
                with anyio.fail_after(CONNECT_TIMEOUT_S):
                    await session.initialize()
                    self.session = session
                    await self.refresh()
                task_status.started()
                started = True
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._relist_loop)
                    await self._stop.wait()
                    tg.cancel_scope.cancel()
        except WarrantError as exc:  # no sandbox: the server was not started
            self.error = (exc.message + (f"; to fix: {exc.hint}" if exc.hint else ""))[:800]
            log.warning("upstream %s is down: %s", self.name, self.error)
        except Exception as exc:  # any failure marks this upstream down
            self.error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("upstream %s is down: %s", self.name, self.error)
            log.debug("upstream %s failure", self.name, exc_info=True)
        finally:
            self.session = None
            if not started:
                task_status.started()

    def stop(self) -> None:
        self._stop.set()

    @asynccontextmanager
    async def _transport(self) -> AsyncIterator[TransportStreams]:
        if isinstance(self.config, StdioServer):
            params = await anyio.to_thread.run_sync(self._stdio_parameters, self.config)
            async with stdio_client(params, errlog=sys.stderr) as streams:
                yield streams
            return
        async with create_mcp_http_client(headers=self.config.headers or None) as client, \
                streamable_http_client(self.config.url, http_client=client) as streams:
            yield streams

    def _stdio_parameters(self, config: StdioServer) -> StdioServerParameters:
        """How to spawn the server: through the sandbox launcher, or bare if unsafe."""
        if config.unsafe_no_sandbox:
            log.warning("UNSAFE: starting upstream %s WITHOUT a sandbox (unsafe_no_sandbox): "
                        "it has the host's files, network and processes", self.name)
            command, *args = config.command
            return StdioServerParameters(command=command, args=args, env=config.env or None,
                                         cwd=config.cwd)
        # Blocking (checks bubblewrap once, compiles the filter): run in a worker thread.
        sandboxed = sandboxed_command(config.command, get_profile(config.sandbox),
                                      binds=config.sandbox_bind_ro, env=config.env,
                                      cwd=config.cwd)
        log.info("upstream %s runs in sandbox `%s` (read-only: %s)", self.name, config.sandbox,
                 ", ".join(sandboxed.binds) or "base system only")
        command, *args = sandboxed.argv
        # The SDK adds HOME, PATH, USER... of ours to the launcher's environment; the
        # launcher hands the server only the names `sandboxed.env` lists.
        return StdioServerParameters(command=command, args=args, env=dict(sandboxed.env),
                                     cwd="/")

    async def _on_message(self, message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            # Listing from inside the message handler would wait on ourselves; hand it off.
            self._relist.set()
        elif isinstance(message, Exception):
            log.warning("upstream %s transport error: %s", self.name, message)

    async def _relist_loop(self) -> None:
        while True:
            await self._relist.wait()
            self._relist = anyio.Event()
            try:
                await self.refresh()
            except Exception:
                log.exception("re-listing tools of upstream %s failed", self.name)

    async def refresh(self) -> None:
        """List every tool (all pages) and hand the definitions to the catalogue."""
        session = self.require()
        definitions: list[ToolDefinition] = []
        cursor: str | None = None
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            result = await session.list_tools(params=params)
            definitions.extend(_definition(self.name, tool) for tool in result.tools)
            cursor = result.next_cursor
            if not cursor:
                break
        self.tools = {d.name: d for d in definitions}
        await self._on_tools(self, definitions)

    def require(self) -> ClientSession:
        if self.session is None:
            raise UpstreamUnavailable(f"upstream server `{self.name}` is not connected"
                                      + (f" ({self.error})" if self.error else ""))
        return self.session


def _definition(server: str, tool: types.Tool) -> ToolDefinition:
    annotations = (tool.annotations.model_dump(by_alias=True, exclude_none=True, mode="json")
                   if tool.annotations is not None else None)
    return ToolDefinition(server=server, name=tool.name, description=tool.description or "",
                          input_schema=tool.input_schema, annotations=annotations)

