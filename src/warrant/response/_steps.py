"""Playbook steps: one callable shape, `step(ctx) -> StepOutcome`, raising on failure.

Every containment step only ever adds a revocation, so running, failing or
repeating any of them can never leave an agent more privileged than before.
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

from warrant.types import RevocationKind

from ._model import Alert, ResponseDomain
from ._playbooks import Step

log = logging.getLogger("warrant.response")

#: Called with `(ok, error)` once a webhook delivery finished (or gave up).
Delivered = Callable[[bool, str | None], None]


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
    count = ctx.domain.revoke_credentials_of(ctx.alert.agent, ctx.reason)
    return StepOutcome("done", f"{count} credentials of `{ctx.alert.agent}` revoked",
                       contains=True)


def quarantine_agent(ctx: StepContext) -> StepOutcome:
    if not ctx.alert.agent:
        return StepOutcome("skipped", "the alert names no agent")
    ctx.domain.revoke(RevocationKind.AGENT, ctx.alert.agent, ctx.reason)
    return StepOutcome("done", f"agent `{ctx.alert.agent}` revoked", contains=True)


def kill_switch(ctx: StepContext) -> StepOutcome:
    ctx.domain.revoke(RevocationKind.ALL, "*", ctx.reason)
    return StepOutcome("done", "every warrant and credential in the domain revoked",
                       contains=True)


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
    "kill_switch": kill_switch, "notify": notify, "quarantine_agent": quarantine_agent,
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
