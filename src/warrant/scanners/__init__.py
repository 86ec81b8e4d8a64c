"""Scanners: deterministic detectors over untrusted text (tool definitions, tool results)."""

from ._findings import Finding, Severity
from ._poisoning import scan_tool_definition

__all__ = ["Finding", "Severity", "scan_tool_definition"]
