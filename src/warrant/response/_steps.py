"""Playbook steps: one callable shape, `step(ctx) -> StepOutcome`, raising on failure.

Every containment step only ever adds a revocation (a narrowing is one too) or a
quarantine, so running, failing or repeating any of them can never leave an
agent more privileged than before.
`notify` never blocks: the webhook is posted by a background `Notifier`
(retries with backoff, short timeout), so a dead webhook cannot delay or stop
containment.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from warrant import sandbox
from warrant.errors import ConfigError
from warrant.memory import MemoryGuard, check_namespace
from warrant.types import RevocationKind, RiskClass

from ._model import Alert, ResponseDomain
from ._playbooks import Step
from ._triage import TaskBook

log = logging.getLogger("warrant.response")

#: Called with `(ok, error)` once a webhook delivery finished (or gave up).
Delivered = Callable[[bool, str | None], None]
#: The memory guard `quarantine_memory` acts through (`warrant.enforce.GuardedMemory` is one).
MemoryPort = MemoryGuard


@dataclass(frozen=True, slots=True)
class StepOutcome:
    #: `done` or `skipped` (nothing to act on, e.g. no task for `revoke_task`).
    status: str
    detail: str
    #: True when this step revoked something (the incident counts as contained).
    contains: bool = False


@dataclass(frozen=True, slots=True)
class StepContext:
    domain: ResponseDomain
    alert: Alert
    incident_id: str
    step: Step
    notifier: Notifier
    webhook_url: str | None
    on_delivered: Delivered
    memory: MemoryPort | None = None
    tasks: TaskBook | None = None

    @property
    def reason(self) -> str:
        return f"incident {self.incident_id}: {self.alert.detection}"


def revoke_task(ctx: StepContext) -> StepOutcome:
    if not ctx.alert.task_id:
        return StepOutcome("skipped", "the alert names no task")
    ctx.domain.revoke(RevocationKind.TASK, ctx.alert.task_id, ctx.reason)
    return StepOutcome("done", f"task `{ctx.alert.task_id}` revoked", contains=True)


def suspend_agent(ctx: StepContext) -> StepOutcome:
    if not ctx.alert.agent:
        return StepOutcome("skipped", "the alert names no agent")
    # Suspended, not only its credentials revoked: a renewal cannot undo it.
    count = ctx.domain.suspend_agent(ctx.alert.agent, ctx.reason)
    return StepOutcome("done", f"`{ctx.alert.agent}` suspended ({count} credentials revoked; "
                               "`warrant agent resume` lifts it)", contains=True)


def quarantine_agent(ctx: StepContext) -> StepOutcome:
    if not ctx.alert.agent:
        return StepOutcome("skipped", "the alert names no agent")
    ctx.domain.revoke(RevocationKind.AGENT, ctx.alert.agent, ctx.reason)
    return StepOutcome("done", f"agent `{ctx.alert.agent}` revoked", contains=True)


def kill_switch(ctx: StepContext) -> StepOutcome:
    ctx.domain.revoke(RevocationKind.ALL, "*", ctx.reason)
    return StepOutcome("done", "every warrant and credential in the domain revoked",
                       contains=True)


#: What `narrow` takes away: every risk class but read-only, the most damaging first
#: (each is in force from the next decision on, so this is the order of relief).
NARROWED_CLASSES = (RiskClass.MONEY_MOVEMENT, RiskClass.EXTERNAL_COMMUNICATION,
                    RiskClass.DESTRUCTIVE, RiskClass.CODE_EXECUTION, RiskClass.WRITE)


def narrow(ctx: StepContext) -> StepOutcome:
    """Cut the task down to its read-only tools.

    Each other risk class is recorded as a `narrow` revocation of the task,
    which the pipeline enforces on the next decision (code `narrowed`); the
    agent can still read and answer while a human looks. If recording the
    narrowing fails, the task is revoked outright instead: narrower than asked,
    never wider.

    Only a task is narrowed: an agent-wide narrowing would outlive every task
    and has no automatic end, so it is left to an operator.
    """
    task = ctx.alert.task_id
    if not task:
        return StepOutcome("skipped", "the alert names no task")
    granted = ctx.tasks.tools_of(task) if ctx.tasks is not None else []
    keep: list[str] = []
    drop: list[str] = []
    for name in granted:
        tool = ctx.domain.store.get_tool(name)
        (keep if tool is not None and tool.risk_class is RiskClass.READ_ONLY else drop).append(name)
    try:
        ctx.domain.record_admin("response.narrow", {
            "agent": ctx.alert.agent, "task_id": task, "keep": keep, "drop": drop,
            "forbid": [c.value for c in NARROWED_CLASSES], "incident_id": ctx.incident_id})
        for risk in NARROWED_CLASSES:
            ctx.domain.revoke(RevocationKind.NARROW,
                              RevocationKind.narrowing_value("task", task, risk), ctx.reason)
    except Exception as exc:
        # INVARIANT: a narrowing that did not land leaves the task revoked, not as it was.
        log.exception("narrowing task %s failed; revoking the task instead", task)
        error = f"{type(exc).__name__}: {exc}"[:200]
        ctx.domain.revoke(RevocationKind.TASK, task,
                          f"{ctx.reason} (narrowing failed, revoked instead: {error})")
        return StepOutcome("done", f"narrowing task `{task}` failed ({error}); the task was "
                                   "revoked instead", contains=True)
    return StepOutcome("done", f"task `{task}` narrowed to read-only tools (keeps "
                               f"{', '.join(keep) or 'no granted tool'}; loses "
                               f"{', '.join(drop) or 'no granted tool'})", contains=True)


def kill_sandboxes(ctx: StepContext) -> StepOutcome:
    """End every sandboxed process this process runs for the agent (its stdio MCP
    servers, its sandboxed tool runs): a compromised agent's tools stop mid-flight."""
    if not ctx.alert.agent:
        return StepOutcome("skipped", "the alert names no agent")
    ended = sandbox.kill_sandboxes(agent=ctx.alert.agent)
    if not ended:
        return StepOutcome("skipped", f"no sandboxed process runs for `{ctx.alert.agent}` here")
    ctx.domain.record_admin("response.kill-sandboxes", {
        "agent": ctx.alert.agent, "killed": ended, "incident_id": ctx.incident_id})
    return StepOutcome("done", f"killed {len(ended)} sandboxed process(es) of "
                               f"`{ctx.alert.agent}`: {', '.join(ended)}", contains=True)


def _namespaces(alert: Alert) -> list[str]:
    named = alert.detail.get("namespace")
    if isinstance(named, str) and named:
        return [check_namespace(named)]
    if alert.agent:
        # An agent's own namespace is `agent:NAME` (its SPIFFE ID's last segment).
        return [check_namespace(f"agent:{alert.agent.rstrip('/').rsplit('/', 1)[-1]}")]
    return []


def quarantine_memory(ctx: StepContext) -> StepOutcome:
    """Stop serving every live item of the namespace (forensic copies are kept).

    Each item goes through the memory guard's own audited `quarantine`; the
    namespace is the one the alert names, else the agent's own.
    """
    namespaces = _namespaces(ctx.alert)
    if not namespaces:
        return StepOutcome("skipped", "the alert names no memory namespace and no agent")
    if ctx.memory is None:
        raise ConfigError("no memory guard is attached to the response engine "
                          "(`ResponseEngine(..., memory=GuardedMemory(domain))`)")
    count = 0
    for namespace in namespaces:
        for row in ctx.memory.store.latest_all(namespace):
            if row.status != "ok":
                continue  # already quarantined or purged: nothing is served
            ctx.memory.quarantine(namespace, row.key, by=f"response:{ctx.incident_id}",
                                  reason=ctx.reason, version=row.version)
            count += 1
    return StepOutcome("done", f"{count} memory item(s) in `{'`, `'.join(namespaces)}` "
                               "quarantined", contains=True)


def notify(ctx: StepContext) -> StepOutcome:
    url = ctx.step.url or ctx.webhook_url
    if not url:
        return StepOutcome("skipped", "no webhook configured")
    alert = ctx.alert
    payload = {"schema": "warrant.response.alert/v1", "incident_id": ctx.incident_id,
               "detection": alert.detection, "severity": alert.severity.value,
               "summary": alert.summary, "agent": alert.agent, "task_id": alert.task_id,
               "seqs": list(alert.seqs)}
    ctx.notifier.post(url, payload, retries=ctx.step.retries,
                      timeout=ctx.step.timeout_seconds, done=ctx.on_delivered)
    return StepOutcome("done", f"notification queued for `{url}`")


STEPS: Mapping[str, Callable[[StepContext], StepOutcome]] = {
    "kill_sandboxes": kill_sandboxes, "kill_switch": kill_switch, "narrow": narrow,
    "notify": notify,
    "quarantine_agent": quarantine_agent, "quarantine_memory": quarantine_memory,
    "revoke_task": revoke_task, "suspend_agent": suspend_agent,
}


def _post(url: str, body: bytes, timeout: float) -> None:
    """POST JSON with the standard library (no extra dependency for one request)."""
    request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 - http(s) URL validated by the playbook
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - as above
        status = response.status
    if status >= 300:
        raise OSError(f"webhook answered {status}")


class Notifier:
    """Posts webhooks from one daemon thread, so containment never waits for the network."""

    def __init__(self, post: Callable[[str, bytes, float], None] = _post):
        self._post = post
        self._queue: queue.SimpleQueue[tuple[str, bytes, int, float, Delivered] | None] = (
            queue.SimpleQueue())
        self._thread = threading.Thread(target=self._run, name="warrant-notify", daemon=True)
        self._thread.start()

    def post(self, url: str, payload: Mapping[str, Any], *, retries: int, timeout: float,
             done: Delivered) -> None:
        self._queue.put((url, json.dumps(payload).encode(), retries, timeout, done))

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            url, body, retries, timeout, done = item
            error: str | None = None
            for attempt in range(retries + 1):
                try:
                    self._post(url, body, timeout)
                    error = None
                    break
                except Exception as exc:  # any failure is retried, then reported
                    error = f"{type(exc).__name__}: {exc}"[:300]
                    if attempt < retries:
                        time.sleep(min(0.1 * 2**attempt, 2.0))  # backoff between retries
            try:
                done(error is None, error)
            except Exception:
                log.exception("webhook delivery callback failed")
