"""The MCP gateway: Warrant between any MCP client and any MCP servers.

`warrant gateway --config FILE` connects to the configured upstream servers,
pins and scans their tools, and serves them to one MCP client over stdio under
`SERVER__TOOL` names. Every call goes through the one enforcement pipeline.
`guard_openai_tool` / `guard_langchain_tool` put an OpenAI Agents SDK or
LangChain tool behind the same pipeline in one line (the `Guard` PEP).
"""

from ._adapters import guard_langchain_tool, guard_openai_tool
from ._catalogue import Catalogue, ToolDefinition, exposed_name, split_exposed_name
from ._claude_code import BUILTIN_TOOLS, MAX_INPUT_BYTES, HookAnswer, answer_hook, run_hook
from ._config import (
    GatewayConfig,
    HttpServer,
    Limits,
    StdioServer,
    load_gateway_config,
    parse_gateway_config,
)
from ._run import run_gateway
from ._server import Gateway

__all__ = [
    "BUILTIN_TOOLS",
    "MAX_INPUT_BYTES",
    "Catalogue",
    "Gateway",
    "GatewayConfig",
    "HookAnswer",
    "HttpServer",
    "Limits",
    "StdioServer",
    "ToolDefinition",
    "answer_hook",
    "exposed_name",
    "guard_langchain_tool",
    "guard_openai_tool",
    "load_gateway_config",
    "parse_gateway_config",
    "run_gateway",
    "run_hook",
    "split_exposed_name",
]
