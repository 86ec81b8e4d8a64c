"""Scanners: deterministic detectors over untrusted text (tool definitions, tool results).

`scan_tool_definition` finds tool poisoning (threat T4) in an MCP tool's name,
description, input schema and annotations; `risk_class_from_annotations` turns
MCP annotation hints into the risk class policy sees. `scan_sensitive` and
`redact_sensitive` find and redact secrets and personal data (DLP) in arguments
and outputs.
"""

from ._dlp import (
    DlpReport,
    SensitiveFinding,
    finding_fingerprint,
    inspect_sensitive,
    redact_sensitive,
    scan_sensitive,
)
from ._findings import Finding, Severity
from ._injection import InjectionDetector, InjectionVerdict, detect_injection
from ._poisoning import scan_tool_definition
from ._risk import risk_class_from_annotations
from ._rules import MAX_DESCRIPTION_CHARS

__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "DlpReport",
    "Finding",
    "InjectionDetector",
    "InjectionVerdict",
    "SensitiveFinding",
    "Severity",
    "detect_injection",
    "finding_fingerprint",
    "inspect_sensitive",
    "redact_sensitive",
    "risk_class_from_annotations",
    "scan_sensitive",
    "scan_tool_definition",
]
