"""An MCP server that records every `tools/call` it receives (run: python recording_server.py FILE).

One tool, `echo`, answers with its `text` argument. Before answering, the server
appends one JSON line `{"tool": ..., "arguments": ...}` to FILE and flushes it,
so a test can tell exactly what a gateway let through to its upstream.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

RECORD = Path(sys.argv[1])
ECHO = types.Tool(
    name="echo", description="Echo the given text back.",
    input_schema={"type": "object", "properties": {"text": {"type": "string"}}},
    annotations=types.ToolAnnotations(read_only_hint=True, destructive_hint=False,
                                      open_world_hint=False))


async def list_tools(ctx: ServerRequestContext[Any],
                     params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[ECHO])


async def call_tool(ctx: ServerRequestContext[Any],
                    params: types.CallToolRequestParams) -> types.CallToolResult:
    arguments = params.arguments or {}
    with RECORD.open("a", encoding="utf-8") as record:
        record.write(json.dumps({"tool": params.name, "arguments": arguments}) + "\n")
    return types.CallToolResult(content=[types.TextContent(text=str(arguments.get("text")))])


async def main() -> None:
    server: Server[Any] = Server("recorder", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
