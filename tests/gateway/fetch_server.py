"""An MCP server whose tool fetches a URL (run: python fetch_server.py).

Tool `fetch` with `url`: plain `urllib` (which honours HTTP_PROXY, as the
sandbox's egress profile sets it); answers `ok: BODY` or `blocked: WHY`.
Tool `connect` with `host`, `port`: a raw TCP connection that ignores the
proxy; answers `ok: connected` or `blocked: WHY`.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

READ_ONLY = types.ToolAnnotations(read_only_hint=True, destructive_hint=False,
                                  open_world_hint=False)


async def list_tools(ctx: ServerRequestContext[Any],
                     params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[
        types.Tool(name="fetch", description="Fetch a URL.", annotations=READ_ONLY,
                   input_schema={"type": "object", "properties": {"url": {"type": "string"}},
                                 "required": ["url"]}),
        types.Tool(name="connect", description="Open a TCP connection.", annotations=READ_ONLY,
                   input_schema={"type": "object", "properties": {
                       "host": {"type": "string"}, "port": {"type": "integer"}},
                       "required": ["host", "port"]}),
    ])


def run(name: str, args: dict[str, Any]) -> str:
    if name == "fetch":
        try:
            with urllib.request.urlopen(str(args["url"]), timeout=10) as reply:
                data: bytes = reply.read(200)
                return "ok: " + data.decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return f"blocked: HTTP {exc.code}: " + exc.read(200).decode(errors="replace")
    with socket.create_connection((str(args["host"]), int(args["port"])), timeout=3):
        return "ok: connected"


async def call_tool(ctx: ServerRequestContext[Any],
                    params: types.CallToolRequestParams) -> types.CallToolResult:
    try:
        answer = await anyio.to_thread.run_sync(run, params.name, params.arguments or {})
    except OSError as exc:
        answer = f"blocked: {type(exc).__name__}: {exc}"
    return types.CallToolResult(content=[types.TextContent(text=answer)])


async def main() -> None:
    server: Server[Any] = Server("fetch", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
