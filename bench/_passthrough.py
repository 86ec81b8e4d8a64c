"""The SDK's floor: an MCP stdio proxy that forwards every tool call and enforces nothing.

Run by bench_gateway.py as `python bench/_passthrough.py -- COMMAND...`. Built like
the gateway (the SDK's low-level `Server` downstream, `stdio_client` + `ClientSession`
upstream) but with no authentication, policy, audit, DLP or data flow, and the
SDK's own stdio transports, so its row prices what the SDK plumbing costs before
Warrant does anything. Not a product: a bench baseline only.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server


async def main(command: list[str]) -> None:
    upstream = StdioServerParameters(command=command[0], args=command[1:])
    async with stdio_client(upstream) as (read, write), ClientSession(read, write) as client:
        await client.initialize()

        async def list_tools(_ctx: ServerRequestContext[Any],
                             _params: types.PaginatedRequestParams | None
                             ) -> types.ListToolsResult:
            return await client.list_tools()

        async def call_tool(_ctx: ServerRequestContext[Any],
                            params: types.CallToolRequestParams) -> types.CallToolResult:
            return await client.call_tool(params.name, params.arguments)

        server: Server[Any] = Server("passthrough", on_list_tools=list_tools,
                                     on_call_tool=call_tool)
        async with stdio_server() as (down_read, down_write):
            await server.run(down_read, down_write, server.create_initialization_options())


if __name__ == "__main__":
    if "--" not in sys.argv:
        sys.exit("usage: _passthrough.py -- COMMAND [ARGS...]")
    anyio.run(main, sys.argv[sys.argv.index("--") + 1:])
