"""An MCP server with resources and prompts that records every read and get it receives.

Run: python resource_server.py FILE. Before answering a `resources/read` or a
`prompts/get`, it appends one JSON line (`{"method": ..., "uri" | "name": ...}`)
to FILE and flushes it, so a test can tell exactly what a gateway let through.

Resources: `file:///docs/readme.md`, `file:///docs/keys.md` (holds an AWS key id),
`file:///private/payroll.csv`; template `file:///docs/{name}` (any name reads
as a short text). Prompts: `greet` (argument `who`), `internal`. One tool,
`echo` (the gateway lists every upstream's tools when it connects).
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
from mcp.shared.exceptions import MCPError

RECORD = Path(sys.argv[1])
AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"  # AWS's documented example key id
TEXTS = {
    "file:///docs/readme.md": "Welcome to the docs.",
    "file:///docs/keys.md": f"deploy with aws_access_key_id = {AWS_KEY}",
    "file:///private/payroll.csv": "name,salary\nalice,100",
}
PROMPTS = [
    types.Prompt(name="greet", description="Greet someone.",
                 arguments=[types.PromptArgument(name="who", required=True)]),
    types.Prompt(name="internal", description="An internal prompt."),
]


ECHO = types.Tool(name="echo", description="Echo the given text back.",
                  input_schema={"type": "object", "properties": {"text": {"type": "string"}}},
                  annotations=types.ToolAnnotations(read_only_hint=True))


def record(entry: dict[str, Any]) -> None:
    with RECORD.open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")


async def list_tools(ctx: ServerRequestContext[Any],
                     params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[ECHO])


async def call_tool(ctx: ServerRequestContext[Any],
                    params: types.CallToolRequestParams) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(
        text=str((params.arguments or {}).get("text")))])


async def list_resources(ctx: ServerRequestContext[Any],
                         params: types.PaginatedRequestParams | None
                         ) -> types.ListResourcesResult:
    return types.ListResourcesResult(resources=[
        types.Resource(uri=uri, name=uri.rsplit("/", 1)[-1], mime_type="text/plain")
        for uri in TEXTS])


async def list_templates(ctx: ServerRequestContext[Any],
                         params: types.PaginatedRequestParams | None
                         ) -> types.ListResourceTemplatesResult:
    return types.ListResourceTemplatesResult(resource_templates=[types.ResourceTemplate(
        uri_template="file:///docs/{name}", name="doc")])


async def read_resource(ctx: ServerRequestContext[Any],
                        params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
    record({"method": "resources/read", "uri": params.uri})
    text = TEXTS.get(params.uri)
    if text is None and params.uri.startswith("file:///docs/"):
        text = f"the document {params.uri.removeprefix('file:///docs/')}"
    if text is None:
        raise MCPError(-32002, f"resource {params.uri} not found")
    return types.ReadResourceResult(contents=[types.TextResourceContents(
        uri=params.uri, text=text, mime_type="text/plain")])


async def list_prompts(ctx: ServerRequestContext[Any],
                       params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
    return types.ListPromptsResult(prompts=PROMPTS)


async def get_prompt(ctx: ServerRequestContext[Any],
                     params: types.GetPromptRequestParams) -> types.GetPromptResult:
    record({"method": "prompts/get", "name": params.name, "arguments": params.arguments})
    who = (params.arguments or {}).get("who", "nobody")
    return types.GetPromptResult(messages=[types.PromptMessage(
        role="user", content=types.TextContent(text=f"Say hello to {who}."))])


async def main() -> None:
    server: Server[Any] = Server(
        "resources", on_list_tools=list_tools, on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates, on_read_resource=read_resource,
        on_list_prompts=list_prompts, on_get_prompt=get_prompt)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
