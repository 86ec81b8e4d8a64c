"""Scanners: deterministic detectors over untrusted text (tool definitions, tool results).

`scan_tool_definition` finds tool poisoning (threat T4) in an MCP tool's name,
description, input schema and annotations; `risk_class_from_annotations` turns
MCP annotation hints into the risk class policy sees.
"""

from ._findings import Finding, Severity
from ._poisoning import scan_tool_definition
from ._risk import risk_class_from_annotations
from ._rules import MAX_DESCRIPTION_CHARS

__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "Finding",
    "Severity",
    "risk_class_from_annotations",
    "scan_tool_definition",
]
