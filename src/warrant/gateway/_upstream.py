"""Connections to upstream MCP servers (stdio processes or streamable HTTP URLs).

Each upstream lives in its own task, which owns the transport and the
`ClientSession` (anyio requires a context to be exited by the task that entered
it). A crash or a disconnect ends that task only: the upstream is marked down
and calls to it fail with an error result, while the gateway keeps serving the
others. `notifications/tools/list_changed` makes the gateway list again, so a
changed definition is seen (and quarantined) mid-session.
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

    def __init__(self, name: str, config: StdioServer | HttpServer, on_tools: OnTools):
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
            command, *args = self.config.command
            params = StdioServerParameters(command=command, args=args, env=self.config.env or None,
                                           cwd=self.config.cwd)
            async with stdio_client(params, errlog=sys.stderr) as streams:
                yield streams
            return
        async with create_mcp_http_client(headers=self.config.headers or None) as client, \
                streamable_http_client(self.config.url, http_client=client) as streams:
            yield streams

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

