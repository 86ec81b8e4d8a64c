"""Tool-poisoning scanner for MCP tool definitions (threat T4).

A poisoned tool hides instructions for the model in text the user rarely sees:
the description, parameter descriptions, enum values, defaults, annotation
titles. `scan_tool_definition` collects every string of a definition (and the
tool and parameter names), reads each the way a model would and as hidden text
decoded (see `_text`), and runs every rule of `_rules.RULES` over each reading.

The scan is deterministic and does no I/O. It never raises on malformed input:
a definition is untrusted data, and an error must not let a tool through
unscanned. Anything found is reason to quarantine the tool until a human looks.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Any

from ._findings import Finding, Severity
from ._rules import RULES, ScanContext
from ._text import escape, views

#: Deeper or larger schemas are not scanned past the limit and are reported as oversized.
MAX_SCHEMA_DEPTH = 32
MAX_SCHEMA_STRINGS = 5_000
_RANK = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}
_PROPERTY_MAPS = frozenset({"properties", "patternProperties"})
# Keys that are JSON Schema or MCP vocabulary carry no text of the server's own.
_KEYWORDS = frozenset({
    "$defs", "$ref", "$schema", "additionalProperties", "allOf", "anyOf", "const", "default",
    "definitions", "description", "destructiveHint", "enum", "examples", "exclusiveMaximum",
    "exclusiveMinimum", "format", "idempotentHint", "items", "maxItems", "maxLength", "maximum",
    "minItems", "minLength", "minimum", "nullable", "oneOf", "openWorldHint", "pattern",
    "properties", "readOnlyHint", "required", "title", "type", "uniqueItems",
})


def scan_tool_definition(
    name: str,
    description: str,
    input_schema: Mapping[str, Any],
    annotations: Mapping[str, Any] | None = None,
    *,
    other_tools: Collection[str] = (),
) -> tuple[Finding, ...]:
    """Scan one tool's name, description, schema and annotations for poisoning.

    `other_tools` should name the tools of the *other* servers the client sees:
    a description giving instructions about one of them is shadowing
    (`poisoning.cross-tool`). Tools of the same server routinely refer to each
    other ("use `list_issues` to find the number"), so pass them only if that
    is not the case.

    Returns the findings, most severe first; an empty tuple means nothing was
    found. Codes: `poisoning.invisible-characters`, `poisoning.hidden-instruction`,
    `poisoning.exfiltration`, `poisoning.secret-reference`, `poisoning.cross-tool`,
    `poisoning.confusable-name`, `poisoning.encoded-payload`, `poisoning.oversized`.
    """
    own = _text(name)
    context = ScanContext(
        tool_name=own,
        other_tools=frozenset(t for t in map(_text, other_tools) if t and t != own),
    )
    fields: list[tuple[str, str, str]] = [("name", "name", own),
                                          ("description", "description", _text(description))]
    complete = _collect(input_schema, "inputSchema", fields, depth=0, names=False)
    complete &= _collect(annotations or {}, "annotations", fields, depth=0, names=False)
    findings = [f for location, kind, text in fields for f in _scan_field(location, kind, text,
                                                                          context)]
    if not complete:
        findings.append(Finding("poisoning.oversized", Severity.MEDIUM,
                                "the definition is too large or too deeply nested to scan "
                                f"completely (limits: {MAX_SCHEMA_STRINGS} strings, depth "
                                f"{MAX_SCHEMA_DEPTH})", "inputSchema"))
    return tuple(sorted(findings, key=lambda f: _RANK[f.severity]))


def _scan_field(location: str, kind: str, text: str, context: ScanContext) -> Iterator[Finding]:
    """Run every rule over every reading of one field, each finding once."""
    plain: set[tuple[str, str]] = set()
    for view in views(location, kind, text):
        for rule in RULES:
            for finding in rule(view, context):
                key = (finding.code, finding.message)
                if view.encoding and key in plain:
                    continue  # a decoding that merely repeats what the plain text says
                plain.add(key)
                yield finding


def _collect(value: Any, path: str, out: list[tuple[str, str, str]], *, depth: int,
             names: bool) -> bool:
    """Append (location, kind, text) for each string and key under `value`.

    `names` says that `value` is a `properties` map, whose keys are parameter
    names. Returns False when a limit cut the walk short.
    """
    if depth > MAX_SCHEMA_DEPTH or len(out) > MAX_SCHEMA_STRINGS:
        return False
    complete = True
    if isinstance(value, Mapping):
        for raw_key, item in value.items():
            key = _text(raw_key)
            here = f"{path}.{_segment(key)}"
            if names:
                out.append((here, "parameter-name", key))
            elif key not in _KEYWORDS:
                out.append((here, "text", key))
            if isinstance(item, str):
                out.append((here, "description" if key == "description" else "text", item))
            else:
                complete &= _collect(item, here, out, depth=depth + 1,
                                     names=key in _PROPERTY_MAPS and not names)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if isinstance(item, str):
                out.append((f"{path}[{index}]", "text", item))
            else:
                complete &= _collect(item, f"{path}[{index}]", out, depth=depth + 1,
                                     names=False)
    elif isinstance(value, str):
        out.append((path, "text", value))
    return complete


def _segment(key: str) -> str:
    """A key as it appears in a location: printable and short."""
    shown = escape(key)
    return shown if len(shown) <= 40 else shown[:39] + "…"


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    return "" if value is None else str(value)
