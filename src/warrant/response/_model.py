"""The response engine's values: severities, events, alerts, detections, the domain it needs.

A detection is one small callable, `detect(event, state) -> Iterable[Alert]`,
wrapped with its id, severity and description. `inline=True` marks detections
that look at one record only and are cheap: they run on the appending thread,
so a critical match is contained before the offending call's decision is even
returned. Everything stateful or statistical runs on the engine's worker.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from warrant.audit import AuditLog, AuditRecord
from warrant.store import StateStore
from warrant.types import RevocationKind


class Severity(str, enum.Enum):
    """How bad an alert is. `info` is for the engine's own actions (never playbook-driven)."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return SEVERITY_RANK[self.value]


SEVERITY_RANK: Mapping[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


@dataclass(frozen=True, slots=True)
class Event:
    """One durable audit record as the engine saw it: seq, record and when it arrived."""

    seq: int
    record: AuditRecord
    #: The engine's clock when the record was published (the offending moment).
    received_at: float


@dataclass(frozen=True, slots=True)
class Alert:
    """One detection firing on one or more events."""

    detection: str
    severity: Severity
    summary: str
    event_at: float
    agent: str | None = None
    task_id: str | None = None
    #: Audit seqs of the records that made the detection fire (the evidence).
    seqs: tuple[int, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)


#: The one shape of every detection function.
DetectFn = Callable[[Event, dict[str, Any]], Iterable[Alert]]


@dataclass(frozen=True, slots=True)
class Detection:
    """A detection: an id, a severity, a description and its function.

    `kinds` names the record kinds the function reads (None: every record) and
    `actions` the admin actions (an admin record's `tool`) it reads (empty:
    every admin record of `kinds`). The engine indexes detections by both and
    calls a function only with records it reads, so a decision costs nothing
    in the detections that watch admin actions. A function must still ignore
    what it does not handle (it may be called directly, e.g. in tests).

    INVARIANT: an `inline` detection must be cheap and must not keep state
    between calls (it runs concurrently on every thread that appends records).
    """

    id: str
    severity: Severity
    description: str
    detect: DetectFn
    inline: bool = False
    kinds: frozenset[str] | None = None
    actions: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.actions and self.kinds is not None and "admin" not in self.kinds:
            raise ValueError(f"detection `{self.id}` names admin actions but does not read "
                             "admin records")

    def alert(self, event: Event, summary: str, *, seqs: tuple[int, ...] | None = None,
              agent: str | None = None, task_id: str | None = None,
              **detail: Any) -> Alert:
        """An alert of this detection about `event` (agent and task from the record)."""
        record = event.record
        return Alert(detection=self.id, severity=self.severity, summary=summary,
                     event_at=event.received_at, agent=agent or record.agent,
                     task_id=task_id or record.task_id,
                     seqs=seqs if seqs is not None else (event.seq,), detail=detail)


class ResponseDomain(Protocol):
    """What the engine needs from a trust domain (`warrant.enforce.TrustDomain` fits).

    A protocol, not an import: `enforce` and `response` are sibling composers
    and stay independent; the edge wires one to the other.
    """

    @property
    def home(self) -> Path: ...
    @property
    def store(self) -> StateStore: ...
    @property
    def audit(self) -> AuditLog: ...

    def subscribe(self, listener: Callable[[int, AuditRecord], None]) -> None: ...
    def record_admin(self, action: str, detail: Mapping[str, Any]) -> int: ...
    def revoke(self, kind: RevocationKind, value: str, reason: str) -> bool: ...
    def revoke_credentials_of(self, name_or_id: str, reason: str) -> int: ...
    def suspend_agent(self, name_or_id: str, reason: str) -> int: ...
