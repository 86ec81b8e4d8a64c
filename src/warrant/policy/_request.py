"""What policy is asked (`PolicyRequest`), what it answers (`PolicyResult`), and
how a request is encoded as a Cedar request plus its entities.

The encoding is the contract with policy authors (see `schema.cedarschema`):

- principal `Warrant::Agent::"<spiffe id>"` with `owner`, `risk_tier`, `name`, `domain`;
- resource `Warrant::Tool::"<server>/<tool>"` (or `"<tool>"`), member of each
  `Warrant::Toolset` and of its `Warrant::Server`; for `delegate` a
  `Warrant::Agent`, for `memory_*` a `Warrant::MemoryNamespace`;
- `context.args` / `context.num_args`: entities whose *tags* are the call's
  top-level arguments, as String and as Long respectively.

INVARIANT: every value here is frozen; encoding never mutates the request.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from warrant.types import Effect, Reason, RiskClass, SpiffeId, canonical_json

ACTIONS = frozenset({"call_tool", "delegate", "memory_read", "memory_write"})

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$", re.ASCII)
_ARGS = {"__entity": {"type": "Warrant::Args", "id": "call"}}
_NUM_ARGS = {"__entity": {"type": "Warrant::NumArgs", "id": "call"}}


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    """One question for the policy set: may `agent` do `action` on a resource now?

    `tool`/`server`/`risk_class`/`toolsets` describe the resource of `call_tool`;
    `target` names the resource of `delegate` (an agent's SPIFFE id, with
    `target_attrs`) and of `memory_read`/`memory_write` (a namespace).
    `now` must carry a timezone.
    """

    agent: str
    tool: str = ""
    risk_class: RiskClass = RiskClass.READ_ONLY
    action: str = "call_tool"
    agent_attrs: Mapping[str, str] = field(default_factory=_empty)
    server: str | None = None
    toolsets: tuple[str, ...] = ()
    arguments: Mapping[str, Any] = field(default_factory=_empty)
    task_id: str = ""
    on_behalf_of: str = ""
    chain: tuple[str, ...] = ()
    labels: frozenset[str] = frozenset()
    #: Per-argument data-flow labels as `"<argument>:<label>"` (`"to:destination-unverified"`).
    arg_labels: frozenset[str] = frozenset()
    #: The tools (`server/tool`) whose results the call's flagged values came from.
    sources: frozenset[str] = frozenset()
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    risk_score: int = 0
    budget_remaining: int = 0
    target: str = ""
    target_attrs: Mapping[str, str] = field(default_factory=_empty)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown policy action `{self.action}`")
        if self.action == "call_tool" and not self.tool:
            raise ValueError("a `call_tool` policy request needs a tool name")
        if self.now.tzinfo is None:
            raise ValueError("the request time must carry a timezone")
        object.__setattr__(self, "risk_class", RiskClass(self.risk_class))
        object.__setattr__(self, "agent_attrs", MappingProxyType(dict(self.agent_attrs)))
        object.__setattr__(self, "target_attrs", MappingProxyType(dict(self.target_attrs)))
        object.__setattr__(self, "arguments", MappingProxyType(dict(self.arguments)))
        object.__setattr__(self, "toolsets", tuple(self.toolsets))
        object.__setattr__(self, "chain", tuple(self.chain))
        object.__setattr__(self, "labels", frozenset(self.labels))
        object.__setattr__(self, "arg_labels", frozenset(self.arg_labels))
        object.__setattr__(self, "sources", frozenset(self.sources))

    @property
    def resource_id(self) -> str:
        if self.action == "call_tool":
            return f"{self.server}/{self.tool}" if self.server else self.tool
        return self.target


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """The policy set's answer: an effect with its reasons, never a bare bool.

    `policy_ids` are the determining policies (their `@id` when they have one).
    """

    effect: Effect
    reasons: tuple[Reason, ...]
    policy_ids: tuple[str, ...]
    revision: str

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOW


def _clamp(value: int) -> int:
    return max(_LONG_MIN, min(_LONG_MAX, value))


def _as_long(value: Any) -> int | None:  # noqa: PLR0911 - one return per JSON type
    """A numeric argument as a Cedar Long; fractions round away from zero.

    Rounding away from zero keeps thresholds conservative: `1000.01` is seen as
    1001 by `amount > 1000`, and `-0.5` as -1 by `amount < 0`.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not _DECIMAL.match(value.strip()):
            return None
        text = value.strip()
        digits = text.lstrip("+-")
        if digits.isdigit() and len(digits) > 19:  # beyond any Long: saturate
            return _LONG_MIN if text.startswith("-") else _LONG_MAX
        value = int(text) if digits.isdigit() else float(text)
    if isinstance(value, int):
        return _clamp(value)
    if isinstance(value, float) and math.isfinite(value):
        rounded = math.ceil(value) if value >= 0 else math.floor(value)
        return _clamp(rounded)
    if isinstance(value, float):  # inf: the most extreme Long with its sign
        return _LONG_MAX if value > 0 else _LONG_MIN
    return None


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return canonical_json(value).decode("utf-8")
    except (TypeError, ValueError):
        return json.dumps(repr(value))


def _agent_entity(spiffe: str, attrs: Mapping[str, str]) -> dict[str, Any]:
    try:
        parsed = SpiffeId.parse(spiffe)
        name, domain = parsed.path.rpartition("/")[2], parsed.domain
    except ValueError:
        name, domain = spiffe, ""
    return {
        "uid": {"type": "Warrant::Agent", "id": spiffe},
        "attrs": {
            "owner": str(attrs.get("owner", "")),
            "risk_tier": str(attrs.get("risk_tier", "")),
            "name": name,
            "domain": domain,
        },
        "parents": [],
    }


def _resource_uid(request: PolicyRequest) -> dict[str, str]:
    kind = {"call_tool": "Warrant::Tool", "delegate": "Warrant::Agent"}
    return {"type": kind.get(request.action, "Warrant::MemoryNamespace"), "id": request.resource_id}


def _resource(request: PolicyRequest) -> tuple[dict[str, str], list[dict[str, Any]]]:
    rid = request.resource_id
    if request.action == "call_tool":
        parents = [{"type": "Warrant::Toolset", "id": t} for t in request.toolsets]
        if request.server:
            parents.append({"type": "Warrant::Server", "id": request.server})
        tool = {
            "uid": {"type": "Warrant::Tool", "id": rid},
            "attrs": {
                "name": request.tool,
                "server": request.server or "",
                "risk_class": request.risk_class.value,
            },
            "parents": parents,
        }
        return {"type": "Warrant::Tool", "id": rid}, [tool]
    if request.action == "delegate":
        if rid == request.agent:  # already in the entity list as the principal
            return {"type": "Warrant::Agent", "id": rid}, []
        return {"type": "Warrant::Agent", "id": rid}, [_agent_entity(rid, request.target_attrs)]
    return {"type": "Warrant::MemoryNamespace", "id": rid}, []


def entity_key(request: PolicyRequest) -> tuple[object, ...]:
    """Everything the principal and resource entities depend on (a cache key)."""
    return (
        request.agent,
        tuple(sorted(request.agent_attrs.items())),
        request.action,
        request.resource_id,
        request.tool,
        request.server,
        request.risk_class,
        request.toolsets,
        tuple(sorted(request.target_attrs.items())),
    )


def base_entities(request: PolicyRequest) -> str:
    """Entities JSON for the principal and the resource (not the arguments)."""
    _, entities = _resource(request)
    entities.append(_agent_entity(request.agent, request.agent_attrs))
    return json.dumps(entities)


def argument_entities(request: PolicyRequest) -> str:
    """Entities JSON for `context.args` and `context.num_args`."""
    texts = {str(k): _as_text(v) for k, v in request.arguments.items()}
    numbers = {}
    for key, value in request.arguments.items():
        number = _as_long(value)
        if number is not None:
            numbers[str(key)] = number
    return json.dumps(
        [
            {"uid": _ARGS["__entity"], "attrs": {}, "parents": [], "tags": texts},
            {"uid": _NUM_ARGS["__entity"], "attrs": {}, "parents": [], "tags": numbers},
        ]
    )


EMPTY_ARGUMENTS = json.dumps(
    [
        {"uid": _ARGS["__entity"], "attrs": {}, "parents": [], "tags": {}},
        {"uid": _NUM_ARGS["__entity"], "attrs": {}, "parents": [], "tags": {}},
    ]
)


#: Every attribute of the `call_tool` context, as the schema declares it.
CONTEXT_KEYS = frozenset({"task_id", "on_behalf_of", "chain", "chain_length", "args",
                          "num_args", "labels", "arg_labels", "sources", "hour", "weekday",
                          "risk_score",
                          "budget_remaining"})


def cedar_request(request: PolicyRequest,
                  keep: frozenset[str] = CONTEXT_KEYS) -> dict[str, Any]:
    """The Cedar request for `request`, its context already JSON text.

    `keep` limits the context to the attributes the loaded policies can read
    (cedarpy parses the context on every call, so unread attributes cost time).
    """
    now = request.now.astimezone(UTC)
    context = {
        "task_id": request.task_id,
        "on_behalf_of": request.on_behalf_of,
        "chain": list(request.chain),
        "chain_length": len(request.chain),
        "args": _ARGS,
        "num_args": _NUM_ARGS,
        "labels": sorted(request.labels),
        "arg_labels": sorted(request.arg_labels),
        "sources": sorted(request.sources),
        "hour": now.hour,
        "weekday": now.weekday(),
        "risk_score": _clamp(request.risk_score),
        "budget_remaining": _clamp(request.budget_remaining),
    }
    if keep is not CONTEXT_KEYS:
        context = {k: v for k, v in context.items() if k in keep}
    return {
        "principal": {"type": "Warrant::Agent", "id": request.agent},
        "action": {"type": "Warrant::Action", "id": request.action},
        "resource": _resource_uid(request),
        "context": json.dumps(context),
    }


def encode(request: PolicyRequest) -> tuple[dict[str, Any], str]:
    """The Cedar request and all its entities as one JSON document (used by tests and tools)."""
    entities = json.loads(base_entities(request)) + json.loads(argument_entities(request))
    return cedar_request(request), json.dumps(entities)
