"""Upstream tools as the domain knows them: exposed names, pinned digests, quarantine.

Naming: a tool `get_current_time` on the server configured as `time` is
exposed to MCP clients as `time__get_current_time` and is the qualified name
`time/get_current_time` everywhere else (warrants, policy, audit, catalogue).
Server names cannot contain `_`, so the first `__` always separates the two;
the exposed name keeps to `[A-Za-z0-9_-]`, which every MCP client and model API
accepts (some refuse `.`).

Resources and prompts: a server's `resources/read` and `prompts/get` are decided
as calls to its pseudo-tools `resources.read` and `prompts.get` (qualified
`fs/resources.read`; see `_resources`). They contain `.`, which no upstream tool
name and no exposed name may, so they never collide with a tool and `tools/call`
cannot reach them. Each configured server's pair is registered in the domain
catalogue at start (read-only unless `[risk]` overrides it), so policy sees a
risk class; they are not pinned (there is no upstream definition to pin).

Pinning: the digest is SHA-256 over the canonical JSON of the tool's name,
description, input schema and annotations. First sight pins it and registers
the tool in the domain catalogue with a risk class (config override, else the
annotations, else `write`). Poisoning findings, or any later change, quarantine
the tool until a person runs `warrant tools approve`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from warrant import scanners
from warrant.enforce import TrustDomain
from warrant.store import SqlitePins, ToolPin
from warrant.types import RiskClass, ToolInfo, canonical_json, sha256_hex

log = logging.getLogger("warrant.gateway")

SEPARATOR = "__"
#: What an exposed name may look like (MCP's recommended tool-name alphabet, minus `.`).
EXPOSED_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
#: Upstream tool names the gateway can carry through warrants and exposed names.
UPSTREAM_TOOL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]{0,95}$")
DEFAULT_RISK = RiskClass.WRITE
#: The pseudo-tool a server's `resources/read` is decided as (`SERVER/resources.read`).
READ_RESOURCE = "resources.read"
#: The pseudo-tool a server's `prompts/get` is decided as (`SERVER/prompts.get`).
GET_PROMPT = "prompts.get"
PSEUDO_TOOLS: Mapping[str, str] = {
    READ_RESOURCE: "Read a resource of MCP server `{server}` (resources/read through the "
                   "Warrant gateway; argument `uri`).",
    GET_PROMPT: "Get a prompt of MCP server `{server}` (prompts/get through the Warrant "
                "gateway; arguments `name` and `arguments`).",
}
#: Findings at these severities quarantine a tool; lower ones are only recorded.
QUARANTINE_SEVERITIES = frozenset({scanners.Severity.MEDIUM, scanners.Severity.HIGH,
                                   scanners.Severity.CRITICAL})


def exposed_name(server: str, tool: str) -> str:
    """`time`, `get_current_time` → `time__get_current_time`."""
    return f"{server}{SEPARATOR}{tool}"


def split_exposed_name(name: str) -> tuple[str, str] | None:
    """`time__get_current_time` → (`time`, `get_current_time`); None when malformed."""
    if not EXPOSED_NAME.match(name):
        return None
    server, sep, tool = name.partition(SEPARATOR)
    if not sep or not server or not tool or "_" in server:
        return None
    return server, tool


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """What a server says about one tool: the parts that are pinned."""

    server: str
    name: str
    description: str
    input_schema: Mapping[str, Any]
    annotations: Mapping[str, Any] | None

    @property
    def qualified_name(self) -> str:
        return f"{self.server}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "inputSchema": dict(self.input_schema),
                "annotations": dict(self.annotations) if self.annotations is not None else None}

    def digest(self) -> str:
        return sha256_hex(canonical_json(self.to_json()))


class Catalogue:
    """Pins, scans and registers upstream tools; answers "may this tool be used?"."""

    def __init__(self, domain: TrustDomain, pins: SqlitePins,
                 risk_overrides: Mapping[str, RiskClass]):
        self._domain = domain
        self._pins = pins
        self._risk = dict(risk_overrides)

    def observe(self, definitions: Collection[ToolDefinition]) -> list[ToolPin]:
        """Take in one server's full tool list (at connect or after `list_changed`)."""
        names = [d.name for d in definitions]
        seen = []
        for definition in definitions:
            pin = self._observe_one(definition, other_tools=[n for n in names
                                                             if n != definition.name])
            if pin is not None:
                seen.append(pin)
        return seen

    def _observe_one(self, definition: ToolDefinition,
                     other_tools: Collection[str]) -> ToolPin | None:
        qualified = definition.qualified_name
        if not UPSTREAM_TOOL.match(definition.name):
            log.warning("tool %r of server %r has a name the gateway cannot expose; skipped",
                        definition.name, definition.server)
            self._domain.record_admin("tool.skipped", {"tool": qualified[:200],
                                                       "reason": "unsupported tool name"})
            return None
        findings = scanners.scan_tool_definition(
            definition.name, definition.description, definition.input_schema,
            definition.annotations, other_tools=other_tools)
        serious = [f.to_json() for f in findings if f.severity in QUARANTINE_SEVERITIES]
        recorded = [f.to_json() for f in findings]
        now = time.time()
        pin, newly_quarantined = self._pins.observe(
            qualified, digest=definition.digest(), definition=definition.to_json(),
            findings=recorded if serious else [], now=now)
        if pin.pinned_digest == pin.seen_digest:
            # Only the accepted definition is catalogued; a changed one waits for a person.
            risk = self.risk_class(definition)
            known = self._domain.store.get_tool(qualified)
            if known is None or known.risk_class is not risk or \
                    known.description != definition.description:
                self._domain.store.put_tool(ToolInfo(
                    name=definition.name, server=definition.server, risk_class=risk,
                    description=definition.description), now)
        if newly_quarantined:
            log.warning("tool %s quarantined: %s", qualified, pin.reason)
            # The definition that caused it goes on record: the pin keeps only the last
            # one seen, so a server that reverts would otherwise erase the evidence.
            self._domain.record_admin("tool.quarantined", {
                "tool": qualified, "reason": pin.reason, "pinned_digest": pin.pinned_digest,
                "seen_digest": pin.seen_digest, "findings": pin.findings,
                "seen_definition": _bounded(definition.to_json())})
        return pin

    def register_pseudo_tools(self, servers: Iterable[str]) -> None:
        """Put each server's `resources.read` and `prompts.get` in the domain catalogue."""
        now = time.time()
        for server in servers:
            for tool, description in PSEUDO_TOOLS.items():
                qualified = f"{server}/{tool}"
                risk = self._risk.get(qualified, RiskClass.READ_ONLY)
                text = description.format(server=server)
                known = self._domain.store.get_tool(qualified)
                if known is None or known.risk_class is not risk or known.description != text:
                    self._domain.store.put_tool(ToolInfo(
                        name=tool, server=server, risk_class=risk, description=text), now)

    def risk_class(self, definition: ToolDefinition) -> RiskClass:
        """Config override, else what the annotations (and name) say, else `write`."""
        override = self._risk.get(definition.qualified_name)
        if override is not None:
            return override
        try:
            derived = scanners.risk_class_from_annotations(
                definition.annotations, name=definition.name,
                description=definition.description)
        except Exception:  # an untrusted definition must not stop the gateway
            log.exception("risk class of %s could not be derived", definition.qualified_name)
            return DEFAULT_RISK
        return RiskClass(derived) if derived else DEFAULT_RISK

    def blocked(self, qualified_name: str) -> str | None:
        """Why calls to this tool are refused before the pipeline, or None if usable."""
        status = self._pins.status(qualified_name)
        if status is None:
            return f"tool `{qualified_name}` is not known to the gateway"
        state, reason = status
        if state != "active":
            return (f"tool `{qualified_name}` is quarantined ({reason}); a person must review "
                    f"it and run `warrant tools approve {qualified_name} --by user:NAME`")
        return None


#: How much of a quarantined definition the audit record keeps (its JSON, in characters).
MAX_EVIDENCE_CHARS = 16_000


def _bounded(definition: dict[str, Any]) -> dict[str, Any]:
    """`definition`, or its JSON cut to `MAX_EVIDENCE_CHARS` when larger (the digest
    recorded beside it names the whole)."""
    text = json.dumps(definition, sort_keys=True, ensure_ascii=False)
    if len(text) <= MAX_EVIDENCE_CHARS:
        return definition
    return {"truncated_json": text[:MAX_EVIDENCE_CHARS], "json_chars": len(text)}
