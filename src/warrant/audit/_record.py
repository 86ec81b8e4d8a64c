"""The audit record: one versioned, canonical-JSON entry of the log.

A record describes a decision, the outcome of an allowed call, an admin action
or another event. Its bytes are `canonical_json` of its fields plus
`"schema": "warrant.audit/v1"`; those bytes are what the Merkle tree commits to.
A change of shape is a new schema version, never an edit of v1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from warrant.errors import AuditIntegrityError
from warrant.types import Decision, canonical_json

SCHEMA = "warrant.audit/v1"
KINDS = frozenset({"decision", "outcome", "admin", "event"})
OUTCOME_STATUSES = frozenset({"ok", "error"})

_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_REASON_KEYS = frozenset({"code", "message", "source"})
_OPTIONAL_STR = (
    "decision_id", "effect", "agent", "task_id", "tool", "argument_digest", "policy_revision",
)  # fmt: skip


def utc_now() -> str:
    """The current time as RFC 3339 UTC with millisecond precision (`...T12:00:00.123Z`)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _freeze(value: Any) -> Any:
    # Records are frozen values: nested JSON becomes read-only mappings and tuples.
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _plain(value: Any) -> Any:
    # The inverse of _freeze for serialisation. Exact type checks, not
    # isinstance, because this runs on every append (json.dumps takes tuples).
    kind = type(value)
    if kind is MappingProxyType or kind is dict:
        return {k: _plain(v) for k, v in value.items()}
    if kind is tuple or kind is list:
        return [_plain(v) for v in value]
    return value


def _json_object(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"`{name}` must be a JSON object")
    frozen: Mapping[str, Any] = _freeze(value)
    return frozen


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One entry of the audit log. Valid by construction (raises `ValueError`/`TypeError`).

    `arguments_redacted`, `outcome` and `detail` must already be redacted by the
    caller: the log stores exactly what it is given, forever.
    """

    kind: str
    time: str
    decision_id: str | None = None
    effect: str | None = None
    agent: str | None = None
    principal_chain: tuple[str, ...] = ()
    task_id: str | None = None
    tool: str | None = None
    argument_digest: str | None = None
    arguments_redacted: Mapping[str, Any] = field(default_factory=dict, hash=False)
    reasons: tuple[Mapping[str, str], ...] = field(default=(), hash=False)
    policy_revision: str | None = None
    latency_us: float | None = None
    outcome: Mapping[str, Any] | None = field(default=None, hash=False)
    detail: Mapping[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown record kind `{self.kind}`")
        if not isinstance(self.time, str) or not _TIME.match(self.time):
            raise ValueError(f"record time `{self.time}` is not RFC 3339 UTC with milliseconds")
        for name in _OPTIONAL_STR:
            if not isinstance(getattr(self, name), str | None):
                raise TypeError(f"`{name}` must be a string or null")
        chain = self.principal_chain
        if not isinstance(chain, list | tuple) or not all(isinstance(p, str) for p in chain):
            raise ValueError("`principal_chain` must be a list of strings")
        object.__setattr__(self, "principal_chain", tuple(chain))
        if not isinstance(self.reasons, list | tuple):
            raise TypeError("`reasons` must be a list")
        for reason in self.reasons:
            if (
                not isinstance(reason, Mapping)
                or set(reason) != _REASON_KEYS
                or not all(isinstance(v, str) for v in reason.values())
            ):
                raise ValueError("each reason must have string `code`, `message` and `source`")
        object.__setattr__(self, "reasons", tuple(_freeze(r) for r in self.reasons))
        latency = self.latency_us
        if latency is not None and (
            isinstance(latency, bool) or not isinstance(latency, int | float)
        ):
            raise ValueError("`latency_us` must be a number or null")
        object.__setattr__(
            self, "arguments_redacted", _json_object("arguments_redacted", self.arguments_redacted)
        )
        if self.outcome is not None:
            outcome = _json_object("outcome", self.outcome)
            if outcome.get("status") not in OUTCOME_STATUSES:
                raise ValueError("`outcome.status` must be `ok` or `error`")
            object.__setattr__(self, "outcome", outcome)
        if self.detail is not None:
            object.__setattr__(self, "detail", _json_object("detail", self.detail))

    @classmethod
    def for_decision(
        cls,
        decision: Decision,
        *,
        argument_digest: str | None,
        arguments_redacted: Mapping[str, Any],
        detail: Mapping[str, Any] | None = None,
        time: str | None = None,
    ) -> AuditRecord:
        """The `decision` record for a `Decision` value (arguments already redacted)."""
        return cls(
            kind="decision",
            time=time or utc_now(),
            decision_id=decision.decision_id,
            effect=decision.effect.value,
            agent=decision.agent,
            principal_chain=decision.principal_chain,
            task_id=decision.task_id,
            tool=decision.tool,
            argument_digest=argument_digest,
            arguments_redacted=arguments_redacted,
            reasons=tuple(r.to_json() for r in decision.reasons),
            policy_revision=decision.policy_revision,
            latency_us=round(decision.latency_us, 1),
            detail=detail,
        )

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON values, including its `schema` version."""
        return {
            "schema": SCHEMA,
            "kind": self.kind,
            "time": self.time,
            "decision_id": self.decision_id,
            "effect": self.effect,
            "agent": self.agent,
            "principal_chain": list(self.principal_chain),
            "task_id": self.task_id,
            "tool": self.tool,
            "argument_digest": self.argument_digest,
            "arguments_redacted": _plain(self.arguments_redacted),
            "reasons": [dict(r) for r in self.reasons],
            "policy_revision": self.policy_revision,
            "latency_us": self.latency_us,
            "outcome": _plain(self.outcome),
            "detail": _plain(self.detail),
        }

    def to_bytes(self) -> bytes:
        """Canonical JSON bytes: the exact bytes the log stores and hashes."""
        return canonical_json(self.to_json())

    @classmethod
    def from_bytes(cls, data: bytes) -> AuditRecord:
        """Parse stored bytes. Raises `AuditIntegrityError` for anything but canonical v1."""
        try:
            obj = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise AuditIntegrityError("audit record is not valid JSON", detail=str(exc)) from None
        if not isinstance(obj, dict):
            raise AuditIntegrityError("audit record is not a JSON object")
        schema = obj.pop("schema", None)
        if schema != SCHEMA:
            raise AuditIntegrityError(f"unknown audit record schema `{str(schema)[:80]}`")
        expected = set(_FIELDS)
        if set(obj) != expected:
            odd = sorted(set(obj) ^ expected)
            raise AuditIntegrityError(f"audit record has wrong fields: {', '.join(odd)[:200]}")
        try:
            record = cls(**obj)
            canonical = record.to_bytes()
        except (TypeError, ValueError, RecursionError) as exc:
            raise AuditIntegrityError("audit record is invalid", detail=str(exc)) from None
        # One record, one byte string: anything else could hide a second meaning.
        if canonical != data:
            raise AuditIntegrityError("audit record bytes are not canonical JSON")
        return record


def _reject_constant(name: str) -> Any:
    raise ValueError(f"`{name}` is not allowed in an audit record")


_FIELDS = tuple(AuditRecord.__dataclass_fields__)
