"""Tool-poisoning scanner for MCP tool definitions (threat T4). Placeholder API."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ._findings import Finding


def scan_tool_definition(
    name: str,
    description: str,
    input_schema: Mapping[str, Any],
    annotations: Mapping[str, Any] | None = None,
    *,
    other_tools: Collection[str] = (),
) -> tuple[Finding, ...]:
    """Scan one tool's name, description, schema and annotations for poisoning."""
    return ()
