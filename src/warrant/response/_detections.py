"""The shipped detections, each a factory returning one `Detection`.

Extension point: a detection is `Detection(id, severity, description, fn)`
with `fn(event, state) -> Iterable[Alert]`. Detections that depend on other
components plug in the same way once those components emit their records
(`admin_action(...)` for any admin record).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from warrant import scanners
from warrant.audit import AuditRecord

from ._delegation import delegation_detections
from ._model import Alert, Detection, Event, Severity

#: The record kinds detections read (`Detection.kinds`): the engine routes by them.
DECISIONS = frozenset({"decision"})
OUTCOMES = frozenset({"outcome"})
ADMIN = frozenset({"admin"})
#: Denial codes that mean a containment step is doing its job.
CONTAINED = frozenset({"revoked", "narrowed", "delegation.requester-revoked"})


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    """Tunables of the default detections (defaults are deliberately conservative)."""

    #: Repeated denials: `denials` denied calls by one agent within `denial_window` seconds.
    denials: int = 5
    denial_window: float = 60.0
    #: Canary (honey) tokens planted in data; any use in call arguments is critical.
    canaries: tuple[str, ...] = ()
    #: Rate anomaly: calls per `rate_bucket` seconds vs an EWMA baseline per agent.
    rate_bucket: float = 60.0
    rate_alpha: float = 0.2
    rate_z: float = 4.0
    rate_warmup_buckets: int = 5
    rate_min_calls: int = 20
    #: Declared working hours (UTC, `[start, end)` hours) per agent id; "*" for all agents.
    declared_hours: Mapping[str, tuple[int, int]] = field(default_factory=dict)


def _alerts(*items: Alert) -> Iterator[Alert]:
    yield from items


def repeated_denials(config: DetectionConfig) -> Detection:
    """N denied calls by one agent within T seconds (exfiltration or probing attempts)."""

    def detect(event: Event, state: dict[str, Any]) -> Iterable[Alert]:
        record = event.record
        if record.kind != "decision" or record.effect != "deny" or record.agent is None:
            return ()
        codes = {r["code"] for r in record.reasons}
        if codes & CONTAINED:
            # Denials caused by a revocation or narrowing are containment working, not a
            # new attack (a narrowed agent retrying its writes must not escalate itself
            # to a revoked task). A denial stops the pipeline, so a containment code
            # among the reasons is the cause; the others are earlier stages' allows.
            return ()
        recent: deque[tuple[float, int]] = state.setdefault(record.agent, deque())
        recent.append((event.received_at, event.seq))
        while recent and recent[0][0] < event.received_at - config.denial_window:
            recent.popleft()
        if len(recent) < config.denials:
            return ()
        seqs = tuple(seq for _, seq in recent)
        recent.clear()
        return _alerts(detection.alert(
            event, f"{len(seqs)} denied calls by `{record.agent}` within "
                   f"{config.denial_window:g}s (last: `{record.tool}`, {', '.join(sorted(codes))})",
            seqs=seqs, reasons=sorted(codes)))

    detection = Detection("response.repeated-denials", Severity.HIGH,
                          f"{config.denials} denied calls by one agent within "
                          f"{config.denial_window:g} seconds", detect, kinds=DECISIONS)
    return detection


def admin_action(action: str, detection_id: str, severity: Severity,
                 description: str) -> Detection:
    """Any admin record whose action is `action` (e.g. `tool.quarantined`)."""

    def detect(event: Event, state: dict[str, Any]) -> Iterable[Alert]:
        record = event.record
        if record.kind != "admin" or record.tool != action:
            return ()
        detail = dict(record.detail or {})
        agent = detail.get("agent") if isinstance(detail.get("agent"), str) else None
        task = detail.get("task_id") if isinstance(detail.get("task_id"), str) else None
        what = _summary(detail)
        extra = {"namespace": detail["namespace"]} if isinstance(detail.get("namespace"),
                                                                 str) else {}
        return _alerts(detection.alert(event, f"{action}: {what}", agent=agent, task_id=task,
                                       **extra))

    detection = Detection(detection_id, severity, description, detect, inline=True,
                          kinds=ADMIN, actions=frozenset({action}))
    return detection


#: Detail fields an admin alert's summary names first (what it is about, then why).
_LEADING = ("tool", "server", "namespace", "agent", "reason", "by")


def _summary(detail: Mapping[str, Any]) -> str:
    """`key=value` of an admin record's scalar fields, the subject first; a list or
    mapping (findings, a diff) shows as its size: the title is one readable line."""
    keys = [k for k in _LEADING if k in detail] + sorted(k for k in detail if k not in _LEADING)
    parts = []
    for key in keys[:6]:
        value = detail[key]
        if isinstance(value, str | int | float | bool) or value is None:
            parts.append(f"{key}={str(value)[:80]}")
        elif isinstance(value, Mapping | list | tuple):
            parts.append(f"{key}: {len(value)}")
    return ", ".join(parts)


def tool_quarantined() -> Detection:
    """A rug pull or poisoned tool: the catalogue quarantined a tool."""
    return admin_action("tool.quarantined", "response.tool-quarantined", Severity.HIGH,
                        "a tool changed after approval or was found poisoned (rug pull)")


def sandbox_violation() -> Detection:
    """The sandbox stopped tool code trying to escape (network, filesystem, syscalls)."""
    return admin_action("sandbox.violation", "response.sandbox-violation", Severity.HIGH,
                        "sandboxed tool code tried to break out of its sandbox")


def memory_integrity() -> Detection:
    """A memory item failed verification on read (tampered, replayed or unlogged)."""
    return admin_action("memory.integrity-failure", "response.memory-integrity", Severity.HIGH,
                        "a stored memory item failed its signature or audit-log check")


def _collect_strings(value: Any, into: list[str], depth: int = 0) -> None:
    """Append every string (keys too) inside `value` to `into`.

    Exact type checks, not isinstance(Mapping) (an ABC check, slow): this runs
    inline on every decision, and records freeze every mapping to a
    MappingProxyType and every list to a tuple.
    """
    if depth > 8:
        return
    kind = type(value)
    if kind is MappingProxyType or kind is dict:
        for k, v in value.items():
            into.append(str(k))
            _collect_strings(v, into, depth + 1)
    elif kind is tuple or kind is list:
        for v in value:
            _collect_strings(v, into, depth + 1)
    elif isinstance(value, str):
        into.append(value)


def _redacted_canaries(record: AuditRecord, by_fingerprint: Mapping[str, str]) -> list[str]:
    """Canaries among the values DLP redacted from the record's arguments."""
    findings = (record.detail or {}).get("dlp")
    if not isinstance(findings, list | tuple):
        return []
    return [by_fingerprint[f["fingerprint"]] for f in findings
            if isinstance(f, Mapping) and f.get("fingerprint") in by_fingerprint]


def canary_token(config: DetectionConfig) -> Detection:
    """Any call whose (redacted) arguments carry a planted canary token: critical.

    Runs inline. The audit log keeps redacted arguments: a canary shaped like a
    secret (an AWS key, a GitHub token) is replaced before it is seen, and is
    recognised instead by the fingerprint DLP noted for the value it replaced
    (`detail.dlp`), which works when DLP took the canary whole. A canary under a
    secret-looking key (`token`, `password`) that DLP does not recognise is
    redacted unseen, so plant other canaries as values that travel in ordinary
    fields (URLs, bodies, ids).
    """
    canaries = tuple(c for c in config.canaries if c)
    by_fingerprint = {scanners.finding_fingerprint(c): c for c in canaries}

    def detect(event: Event, state: dict[str, Any]) -> Iterable[Alert]:
        record = event.record
        if not canaries or record.kind != "decision" or not record.arguments_redacted:
            return ()
        texts: list[str] = []
        _collect_strings(record.arguments_redacted, texts)
        # One search per canary over all the strings; NUL keeps a match inside one string.
        blob = "\0".join(texts)
        found = [c for c in canaries if c in blob] or _redacted_canaries(record, by_fingerprint)
        if found:
            return _alerts(detection.alert(
                event, f"canary token used by `{record.agent}` in a call to "
                       f"`{record.tool}`", canary=found[0][:8] + "…"))
        return ()

    # Without canaries there is nothing to look for: the detection reads no record.
    detection = Detection("response.canary-token", Severity.CRITICAL,
                          "a planted canary (honey) token appeared in a call", detect, inline=True,
                          kinds=DECISIONS if canaries else frozenset())
    return detection


def rate_anomaly(config: DetectionConfig) -> Detection:
    """Calls per bucket far above the agent's own EWMA baseline (z-score, tunable).

    Per agent: mean and variance of calls per bucket, updated as each bucket
    closes (empty buckets count as zero). The current bucket alerts once when
    its count exceeds `mean + z * max(std, 1)` after `rate_warmup_buckets`.
    """
    alpha = config.rate_alpha

    def detect(event: Event, state: dict[str, Any]) -> Iterable[Alert]:
        record = event.record
        if record.kind != "decision" or record.agent is None:
            return ()
        bucket = math.floor(event.received_at / config.rate_bucket)
        s = state.setdefault(record.agent, {"bucket": bucket, "count": 0, "mean": 0.0,
                                            "var": 0.0, "seen": 0, "alerted": False})
        if bucket != s["bucket"]:
            # Close the finished bucket and any empty ones after it (capped: a long
            # quiet spell decays the baseline to ~0 well within 100 buckets).
            for count in [s["count"]] + [0] * min(bucket - s["bucket"] - 1, 100):
                delta = count - s["mean"]
                s["mean"] += alpha * delta
                s["var"] = (1 - alpha) * (s["var"] + alpha * delta * delta)
                s["seen"] += 1
            s.update(bucket=bucket, count=0, alerted=False)
        s["count"] += 1
        if s["alerted"] or s["seen"] < config.rate_warmup_buckets:
            return ()
        threshold = s["mean"] + config.rate_z * max(math.sqrt(s["var"]), 1.0)
        if s["count"] < max(threshold, config.rate_min_calls):
            return ()
        s["alerted"] = True
        return _alerts(detection.alert(
            event, f"`{record.agent}` made {s['count']} calls this {config.rate_bucket:g}s "
                   f"bucket; baseline {s['mean']:.1f} ± {math.sqrt(s['var']):.1f}",
            count=s["count"], baseline=round(s["mean"], 2)))

    detection = Detection("response.rate-anomaly", Severity.MEDIUM,
                          "call volume far above the agent's learned baseline", detect,
                          kinds=DECISIONS)
    return detection


def outside_hours(config: DetectionConfig) -> Detection:
    """A call outside the agent's declared working hours (UTC), once per agent per hour."""

    def detect(event: Event, state: dict[str, Any]) -> Iterable[Alert]:
        record = event.record
        if record.kind != "decision" or record.agent is None:
            return ()
        hours = config.declared_hours.get(record.agent) or config.declared_hours.get("*")
        if hours is None:
            return ()
        at = dt.datetime.fromtimestamp(event.received_at, dt.UTC)
        start, end = hours
        inside = start <= at.hour < end if start <= end else (at.hour >= start or at.hour < end)
        hour_key = math.floor(event.received_at / 3600)
        if inside or state.get(record.agent) == hour_key:
            return ()
        state[record.agent] = hour_key
        return _alerts(detection.alert(
            event, f"`{record.agent}` called `{record.tool}` at {at:%H:%M} UTC, outside its "
                   f"declared hours {start:02d}-{end:02d}"))

    # Without declared hours nobody can be outside them: the detection reads no record.
    detection = Detection("response.outside-hours", Severity.MEDIUM,
                          "activity outside the agent's declared hours", detect,
                          kinds=DECISIONS if config.declared_hours else frozenset())
    return detection


def injection_then_sink() -> Detection:
    """An agent tried to put values from injected instructions into a sink call.

    The data-flow rules already denied the call; the alert says the agent is
    following an attacker, so the task is contained (the high playbook revokes it).
    """

    def detect(event: Event, state: dict[str, Any]) -> Iterable[Alert]:
        record = event.record
        if record.kind != "decision" or record.effect != "deny":
            return ()
        if not any("flow.forbid-injected-values" in str(r.get("message", ""))
                   for r in record.reasons):
            return ()
        flow = (record.detail or {}).get("flow") or {}
        sources = ", ".join(flow.get("sources") or ()) or "an untrusted result"
        return _alerts(detection.alert(
            event, f"`{record.agent}` tried to pass values from injected instructions "
                   f"(read from {sources}) to `{record.tool}`"))

    detection = Detection("response.injection-then-sink", Severity.HIGH,
                          "a sink call carried values found only in injected instructions",
                          detect, inline=True, kinds=DECISIONS)
    return detection


def injected_content_seen() -> Detection:
    """A tool returned text the injection detector flagged (a signal, not yet an attack)."""

    def detect(event: Event, state: dict[str, Any]) -> Iterable[Alert]:
        record = event.record
        if record.kind != "outcome" or not record.outcome:
            return ()
        spans = record.outcome.get("injected_spans")
        if not spans:
            return ()
        return _alerts(detection.alert(
            event, f"`{record.tool}` returned {spans} span(s) that look like injected "
                   "instructions"))

    detection = Detection("response.injected-content", Severity.LOW,
                          "a tool result holds text that looks like injected instructions",
                          detect, inline=True, kinds=OUTCOMES)
    return detection


def default_detections(config: DetectionConfig | None = None) -> list[Detection]:
    """Every shipped detection with `config` (defaults when None)."""
    config = config or DetectionConfig()
    return [repeated_denials(config), tool_quarantined(), sandbox_violation(),
            memory_integrity(), canary_token(config), rate_anomaly(config),
            outside_hours(config), injection_then_sink(), injected_content_seen(),
            *delegation_detections()]
