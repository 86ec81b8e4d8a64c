"""The MCP gateway: Warrant between any MCP client and any MCP servers.

`warrant gateway --config FILE` connects to the configured upstream servers,
pins and scans their tools, and serves them to one MCP client over stdio under
`SERVER__TOOL` names. Every call goes through the one enforcement pipeline.
`guard_openai_tool` / `guard_langchain_tool` put an OpenAI Agents SDK or
LangChain tool behind the same pipeline in one line (the `Guard` PEP).
`WarrantHttpAuth` (or `request_headers`) is what an MCP client of the HTTP
gateway (`--listen`) sends: tokens, and a proof of possession per call.

Names are loaded on first use: `warrant hook claude-code` runs once per tool
use of a coding agent and needs only `_claude_code`, not the MCP SDK's server
and client stacks the proxy pulls in (~0.8 s of imports per hook call).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._adapters import guard_langchain_tool, guard_openai_tool
    from ._catalogue import Catalogue, ToolDefinition, exposed_name, split_exposed_name
    from ._claude_code import (
        BUILTIN_TOOLS,
        MAX_INPUT_BYTES,
        HookAnswer,
        answer_hook,
        run_hook,
    )
    from ._client import WarrantHttpAuth
    from ._config import (
        GatewayConfig,
        HttpServer,
        Limits,
        StdioServer,
        load_gateway_config,
        parse_gateway_config,
    )
    from ._http import request_headers
    from ._run import run_gateway
    from ._server import Gateway

#: Public name → the module that defines it.
_WHERE: dict[str, str] = {
    "guard_langchain_tool": "_adapters", "guard_openai_tool": "_adapters",
    "Catalogue": "_catalogue", "ToolDefinition": "_catalogue",
    "exposed_name": "_catalogue", "split_exposed_name": "_catalogue",
    "BUILTIN_TOOLS": "_claude_code", "MAX_INPUT_BYTES": "_claude_code",
    "HookAnswer": "_claude_code", "answer_hook": "_claude_code", "run_hook": "_claude_code",
    "GatewayConfig": "_config", "HttpServer": "_config", "Limits": "_config",
    "StdioServer": "_config", "load_gateway_config": "_config",
    "parse_gateway_config": "_config",
    "run_gateway": "_run",
    "WarrantHttpAuth": "_client", "request_headers": "_http",
    "Gateway": "_server",
}

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
    "WarrantHttpAuth",
    "answer_hook",
    "exposed_name",
    "guard_langchain_tool",
    "guard_openai_tool",
    "load_gateway_config",
    "parse_gateway_config",
    "request_headers",
    "run_gateway",
    "run_hook",
    "split_exposed_name",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
