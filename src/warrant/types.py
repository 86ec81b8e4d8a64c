"""Values shared by every component: calls, decisions, reasons, identities.

These are frozen and valid by construction. Parsing of untrusted input happens
at the edges; what reaches here is already checked.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeAlias

JsonValue: TypeAlias = (
    bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None
)


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, no whitespace, UTF-8.

    Used wherever bytes are hashed or signed, so the same value always gives the
    same digest.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_arguments(arguments: Mapping[str, Any]) -> str:
    """The argument digest proofs, approvals and audit records bind to."""
    return sha256_hex(canonical_json(arguments))


class Effect(str, enum.Enum):
    """What a decision says about an action."""

    ALLOW = "allow"
    DENY = "deny"
    NEEDS_APPROVAL = "needs-approval"


class RiskClass(str, enum.Enum):
    """How much damage a tool can do; policy sees this class."""

    READ_ONLY = "read-only"
    WRITE = "write"
    DESTRUCTIVE = "destructive"
    EXTERNAL_COMMUNICATION = "external-communication"
    MONEY_MOVEMENT = "money-movement"
    CODE_EXECUTION = "code-execution"


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason behind a decision.

    `code` is a stable identifier (`warrant.tool-not-granted`, `policy.forbid`,
    `budget.exhausted`); `message` is for people; `source` names the stage.
    """

    code: str
    message: str
    source: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "source": self.source}


_SPIFFE_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.\-]{0,253}[a-z0-9])?$")
_SPIFFE_SEGMENT = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


@dataclass(frozen=True, slots=True)
class SpiffeId:
    """A SPIFFE-style identifier: `spiffe://DOMAIN/PATH`."""

    domain: str
    path: str

    def __post_init__(self) -> None:
        if not _SPIFFE_DOMAIN.match(self.domain):
            raise ValueError(f"invalid trust domain name `{self.domain}`")
        segments = self.path.split("/")
        if not self.path or any(not _SPIFFE_SEGMENT.match(s) or s in {".", ".."} for s in segments):
            raise ValueError(f"invalid SPIFFE path `{self.path}`")

    @classmethod
    def parse(cls, text: str) -> SpiffeId:
        prefix = "spiffe://"
        if not text.startswith(prefix):
            raise ValueError(f"`{text}` is not a SPIFFE ID (expected spiffe://DOMAIN/PATH)")
        rest = text[len(prefix) :]
        domain, sep, path = rest.partition("/")
        if not sep:
            raise ValueError(f"`{text}` has no path (expected spiffe://DOMAIN/PATH)")
        return cls(domain=domain, path=path)

    @classmethod
    def agent(cls, domain: str, name: str) -> SpiffeId:
        return cls(domain=domain, path=f"agent/{name}")

    def __str__(self) -> str:
        return f"spiffe://{self.domain}/{self.path}"


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Turn frozen argument values back into plain JSON-compatible objects."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call an agent wants to make: which tool (on which server) with which arguments."""

    tool: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    server: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.tool, str) or not self.tool:
            raise ValueError("a tool call needs a tool name")
        if not isinstance(self.arguments, Mapping):
            raise TypeError("tool arguments must be a JSON object")
        object.__setattr__(self, "arguments", _freeze(self.arguments))

    @property
    def qualified_name(self) -> str:
        """`server/tool` when the call names a server, else the tool name."""
        return f"{self.server}/{self.tool}" if self.server else self.tool

    def arguments_json(self) -> dict[str, Any]:
        result: dict[str, Any] = thaw(self.arguments)
        return result

    def argument_digest(self) -> str:
        """SHA-256 over the canonical JSON of the arguments (what the audit log keeps)."""
        return digest_arguments(self.arguments_json())


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to "may this call happen?" — a value with its reasons, never a bool."""

    effect: Effect
    reasons: tuple[Reason, ...]
    decision_id: str
    policy_revision: str | None
    latency_us: float
    tool: str
    agent: str | None = None
    task_id: str | None = None
    principal_chain: tuple[str, ...] = ()
    audit_seq: int | None = None

    @property
    def allowed(self) -> bool:
        """True only for an explicit allow (needs-approval is not allowed)."""
        return self.effect is Effect.ALLOW

    def to_json(self) -> dict[str, Any]:
        return {
            "effect": self.effect.value,
            "reasons": [r.to_json() for r in self.reasons],
            "decision_id": self.decision_id,
            "policy_revision": self.policy_revision,
            "latency_us": round(self.latency_us, 1),
            "tool": self.tool,
            "agent": self.agent,
            "task_id": self.task_id,
            "principal_chain": list(self.principal_chain),
            "audit_seq": self.audit_seq,
        }


class AgentStatus(str, enum.Enum):
    ACTIVE = "active"
    #: Contained by the response engine: no new credentials until a person resumes it.
    SUSPENDED = "suspended"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """A registered agent as the store keeps it.

    `public_key` is the raw 32-byte Ed25519 public key the agent proves
    possession of; `attestation` is the digest of its code/config/model id, when
    one was bound at registration.
    """

    agent_id: str
    name: str
    owner: str
    purpose: str
    public_key: bytes
    created_at: float
    status: AgentStatus = AgentStatus.ACTIVE
    attestation: str | None = None
    risk_tier: str = "standard"
    key_generated_by_domain: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "name": self.name,
            "owner": self.owner,
            "purpose": self.purpose,
            "public_key": self.public_key.hex(),
            "created_at": self.created_at,
            "status": self.status.value,
            "attestation": self.attestation,
            "risk_tier": self.risk_tier,
            "key_generated_by_domain": self.key_generated_by_domain,
        }


class RevocationKind(str, enum.Enum):
    """What a revocation names: one credential, one task, one agent, everything, or a
    narrowing.

    A narrowing takes one risk class away from one task or one agent (and every
    sub-agent of its chain); its other tools keep working. Its value is
    `task:TASK_ID|RISK_CLASS` or `agent:AGENT_ID|RISK_CLASS` (`narrowing_value`):
    neither task ids nor SPIFFE IDs can contain `|`, so the value parses back.
    """

    CREDENTIAL = "credential"
    TASK = "task"
    AGENT = "agent"
    ALL = "all"
    NARROW = "narrow"

    @staticmethod
    def narrowing_value(scope: str, subject: str, risk_class: RiskClass) -> str:
        """The value of a NARROW revocation: `scope` (`task` or `agent`) may no longer
        use `risk_class`."""
        if scope not in ("task", "agent"):
            raise ValueError(f"a narrowing names a `task` or an `agent`, not `{scope}`")
        if not subject or "|" in subject:
            raise ValueError(f"cannot narrow `{subject}`: not a task id or agent id")
        return f"{scope}:{subject}|{risk_class.value}"

    @staticmethod
    def parse_narrowing(value: str) -> tuple[str, str, RiskClass]:
        """`(scope, subject, risk_class)` of a NARROW revocation's value."""
        scoped, _, risk = value.rpartition("|")
        scope, _, subject = scoped.partition(":")
        if scope not in ("task", "agent") or not subject:
            raise ValueError(f"`{value}` is not a narrowing (expected task:ID|CLASS or "
                             "agent:ID|CLASS)")
        return scope, subject, RiskClass(risk)


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """What the domain knows about a tool: its name, server, risk class and toolsets."""

    name: str
    risk_class: RiskClass
    server: str | None = None
    description: str = ""
    toolsets: tuple[str, ...] = ()

    @property
    def qualified_name(self) -> str:
        return f"{self.server}/{self.name}" if self.server else self.name
