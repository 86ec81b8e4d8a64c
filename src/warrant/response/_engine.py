"""The response engine: records → detections → incidents → playbooks, in milliseconds.

The domain publishes every durable audit record to `_on_record` on the
appending thread. That listener does two cheap things: it runs the `inline`
detections (single-record matches such as a canary token) and contains at once
when they fire, and it enqueues the record for the worker without ever
blocking (a full queue raises a `response.backpressure` alert instead). The
worker runs the stateful and statistical detections, then triages: evidence
with inclusion proofs and a drafted disposition for every alert.

INVARIANT: the engine only ever adds revocations. No step, failure or retry
restores a privilege, so a broken playbook can leave an agent less privileged,
never more.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from warrant.audit import AuditRecord
from warrant.errors import ConfigError
from warrant.store import SqliteIncidents

from ._detections import DetectionConfig, default_detections
from ._model import SEVERITY_RANK, Alert, Detection, Event, ResponseDomain, Severity
from ._playbooks import Playbook, Step, StepMode, default_playbooks
from ._steps import STEPS, Notifier, StepContext
from ._triage import TaskBook, draft_disposition, gather_evidence
from ._worker import QueueWorker

log = logging.getLogger("warrant.response")

#: Receives `(kind, incident_id, detail)`: alert, action, contained, pending, step-failed,
#: notified, triaged.
Observer = Callable[[str, str, Mapping[str, Any]], None]

#: Under sustained load, triage at least once per this many events.
TRIAGE_EVERY = 256

#: Alerts about the engine itself: recorded and triaged, but never drive playbooks.
INTERNAL = frozenset({"response.action", "response.backpressure", "response.step-failed"})
_WAKE = object()
#: Where the incident tables live, in the domain home (the CLI reads the same file).
INCIDENTS_DB = "incidents.db"


class ResponseEngine:
    """Detections, incidents and playbooks over one domain's event stream."""

    def __init__(self, domain: ResponseDomain, detections: Iterable[Detection] | None = None,
                 playbooks: Iterable[Playbook] | None = None, *,
                 incidents: SqliteIncidents | None = None, config: DetectionConfig | None = None,
                 queue_size: int = 10_000, window_seconds: float = 900.0,
                 webhook_url: str | None = None, clock: Callable[[], float] = time.time,
                 prime_records: int = 5_000):
        detections = list(default_detections(config) if detections is None else detections)
        ids = [d.id for d in detections]
        if len(set(ids)) != len(ids):
            raise ConfigError("detection ids must be unique")
        self.domain = domain
        self.playbooks = list(default_playbooks() if playbooks is None else playbooks)
        self._owns_incidents = incidents is None
        # Own file: the engine writes from its thread without contending for state.db.
        self.incidents = incidents or SqliteIncidents(Path(domain.home) / INCIDENTS_DB)
        self.tasks = TaskBook()
        self._inline = [d for d in detections if d.inline]
        self._stateful = [d for d in detections if not d.inline]
        self._state: dict[str, dict[str, Any]] = {d.id: {} for d in self._stateful}
        self._worker = QueueWorker("warrant-response", self._work, queue_size=queue_size)
        self._queue = self._worker.queue
        self._triage: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._since_triage = 0
        self._lock = threading.RLock()  # serialises incident handling (inline + worker)
        self._observers: list[Observer] = []
        self._pending: dict[str, list[tuple[Step, Alert]]] = {}
        self._acted: set[tuple[str, str | None]] = set()
        self._dropped, self._bp_open, self._bp_lock = 0, False, threading.Lock()
        self._window, self._webhook, self._clock = window_seconds, webhook_url, clock
        self._prime = prime_records
        self._notifier: Notifier | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> ResponseEngine:
        """Learn open tasks from the log's tail, subscribe, and start the worker."""
        for entry in self.domain.audit.tail(self._prime) if self._prime else ():
            self.tasks.observe(entry.record)
        self._notifier = Notifier()
        self._worker.start()
        self.domain.subscribe(self._on_record)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, finish queued work (bounded by `timeout`), stop the notifier."""
        self._worker.stop(None, timeout)
        if self._notifier is not None:
            self._notifier.close(timeout)
        if self._owns_incidents:
            self.incidents.close()

    def __enter__(self) -> ResponseEngine:
        return self.start() if not self._worker.running else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def observe(self, observer: Observer) -> None:
        """Call `observer(kind, incident_id, detail)` on every engine action (tests, UIs)."""
        self._observers.append(observer)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every queued record was processed; False on timeout."""
        return self._worker.drain(timeout)

    @property
    def dropped(self) -> int:
        """Records dropped because the queue was full (each burst raised an alert)."""
        return self._dropped

    # -- the listener (appending thread: cheap, never blocks) --------------------------------

    def _on_record(self, seq: int, record: AuditRecord) -> None:
        if not self._worker.running:
            return
        event = Event(seq, record, self._clock())
        for detection in self._inline:
            for alert in self._run_detection(detection, event, {}):
                self.handle(alert)
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._on_full(event)

    def _on_full(self, event: Event) -> None:
        with self._bp_lock:
            self._dropped += 1
            if self._bp_open:
                return
            self._bp_open = True
        # One alert per burst, written here: the worker may be what is stuck.
        self.handle(Alert("response.backpressure", Severity.HIGH,
                          f"response queue full ({self._queue.maxsize} records); records are "
                          "being dropped from detection (they stay in the audit log)",
                          event_at=event.received_at, seqs=(event.seq,)))

    @staticmethod
    def _run_detection(detection: Detection, event: Event,
                       state: dict[str, Any]) -> list[Alert]:
        try:
            return list(detection.detect(event, state))
        except Exception:
            # A broken detection loses its own signal only; the others keep running.
            log.exception("detection `%s` failed on record %d", detection.id, event.seq)
            return []

    # -- the worker ------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if isinstance(item, Event):
                    self.tasks.observe(item.record)
                    for detection in self._stateful:
                        for alert in self._run_detection(detection, item,
                                                         self._state[detection.id]):
                            self.handle(alert)
                # Evidence gathering is slow (proofs read the log); containment
                # is not. Triage when the queue is idle, or every so often under
                # sustained load, so it never delays detecting the next event.
                self._since_triage += 1
                if self._queue.empty() or self._since_triage >= TRIAGE_EVERY:
                    self._since_triage = 0
                    self._run_triage()
                if self._bp_open and self._queue.empty():
                    with self._bp_lock:
                        self._bp_open = False
            except Exception:
                log.exception("response worker failed on an item; continuing")
            finally:
                self._queue.task_done()

    # -- alerts, incidents, playbooks ------------------------------------------------------

    def handle(self, alert: Alert, *, incident_id: str | None = None) -> str:
        """Record an alert in its incident (opened or joined), run its playbook; the incident id.

        With `incident_id`, the alert is attached to that incident (the engine's own
        alerts about an incident's actions).
        """
        with self._lock:
            now = self._clock()
            opened = escalated = False
            if incident_id is None:
                incident_id, opened, escalated = self.incidents.open_or_join(
                    key=f"{alert.agent or '-'}|{alert.detection}", window_seconds=self._window,
                    now=now, severity=alert.severity.value, severity_rank=SEVERITY_RANK,
                    agent=alert.agent, task_id=alert.task_id, title=alert.summary[:200],
                    detection=alert.detection, event_at=alert.event_at)
            self.incidents.add_alert(
                incident_id=incident_id, detection=alert.detection,
                severity=alert.severity.value, at=now, event_at=alert.event_at,
                agent=alert.agent, task_id=alert.task_id, seqs=list(alert.seqs),
                summary=alert.summary)
            detail = {"detection": alert.detection, "severity": alert.severity.value,
                      "summary": alert.summary, "opened": opened,
                      "detection_latency": now - alert.event_at}
            self.incidents.add_timeline(incident_id, now, "alert", detail)
            self._emit("alert", incident_id, detail)
            first = (incident_id, alert.task_id) not in self._acted
            if alert.detection not in INTERNAL and (opened or escalated or first):
                self._acted.add((incident_id, alert.task_id))
                playbook = next((p for p in self.playbooks if p.matches(alert)), None)
                if playbook is not None:
                    self._run_playbook(playbook, alert, incident_id)
        self._triage.put(incident_id)
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_WAKE)  # wake the worker to triage now
        return incident_id

    def _run_playbook(self, playbook: Playbook, alert: Alert, incident_id: str) -> None:
        for step in playbook.steps:
            if step.mode is StepMode.NEEDS_APPROVAL:
                self._pending.setdefault(incident_id, []).append((step, alert))
                detail = {"action": step.action, "playbook": playbook.id}
                self.incidents.add_timeline(incident_id, self._clock(), "awaiting-approval",
                                            detail)
                self._emit("pending", incident_id, detail)
                continue
            # INVARIANT: a failing step is recorded and skipped; later steps still run.
            self._run_step(step, alert, incident_id, by=f"playbook:{playbook.id}")

    def approve(self, incident_id: str, action: str, *, by: str) -> int:
        """A human approves the pending `action` steps of an incident; returns how many ran."""
        if not by.startswith("user:") or len(by) < 6:
            raise ConfigError(f"approver `{by}` must name a person as `user:NAME`")
        with self._lock:
            pending = self._pending.get(incident_id, [])
            chosen = [(s, a) for s, a in pending if s.action == action]
            self._pending[incident_id] = [(s, a) for s, a in pending if s.action != action]
            for step, alert in chosen:
                self._run_step(step, alert, incident_id, by=by)
        self._triage.put(incident_id)
        return len(chosen)

    def pending(self, incident_id: str) -> list[str]:
        """Actions of an incident waiting for a human."""
        return [s.action for s, _ in self._pending.get(incident_id, [])]

    def _run_step(self, step: Step, alert: Alert, incident_id: str, *, by: str) -> None:
        assert self._notifier is not None, "start() the engine before handling alerts"
        action = {"incident_id": incident_id, "action": step.action, "by": by,
                  "detection": alert.detection, "agent": alert.agent, "task_id": alert.task_id}

        def delivered(ok: bool, error: str | None) -> None:
            detail = {"action": "notify", "ok": ok, "error": error}
            self.incidents.add_timeline(incident_id, self._clock(), "notified", detail)
            self._emit("notified", incident_id, detail)

        ctx = StepContext(self.domain, alert, incident_id, step, self._notifier, self._webhook,
                          delivered)
        try:
            self.domain.record_admin("response.action", action)
            outcome = STEPS[step.action](ctx)
        except Exception as exc:
            log.exception("playbook step `%s` failed for %s", step.action, incident_id)
            error = f"{type(exc).__name__}: {exc}"[:300]
            failed = {**action, "error": error}
            self.incidents.add_timeline(incident_id, self._clock(), "step-failed", failed)
            self._emit("step-failed", incident_id, failed)
            self.handle(Alert("response.step-failed", Severity.HIGH,
                              f"playbook step `{step.action}` failed: {error}",
                              event_at=self._clock(), agent=alert.agent, task_id=alert.task_id),
                        incident_id=incident_id)
            return
        at = self._clock()
        done = {**action, "status": outcome.status, "outcome": outcome.detail}
        self.incidents.add_timeline(incident_id, at, "action", done)
        self._emit("action", incident_id, done)
        if outcome.status == "done":
            # Automation is itself watched: every action it takes is an alert.
            self.handle(Alert("response.action", Severity.INFO,
                              f"{by} ran `{step.action}`: {outcome.detail}", event_at=at,
                              agent=alert.agent, task_id=alert.task_id), incident_id=incident_id)
        if outcome.contains and self.incidents.mark_contained(incident_id, at):
            self._emit("contained", incident_id, {**done, "time_to_contain": at - alert.event_at})

    def _run_triage(self) -> None:
        ids: dict[str, None] = {}
        while True:
            try:
                ids[self._triage.get_nowait()] = None
            except queue.Empty:
                break
        for incident_id in ids:
            try:
                self._triage_incident(incident_id)
            except Exception:
                log.exception("triage of %s failed", incident_id)

    def _triage_incident(self, incident_id: str) -> None:
        incident = self.incidents.get(incident_id)
        if incident is None:
            return
        untriaged = [a["alert_id"] for a in incident.alerts if a["triaged_at"] is None]
        if not untriaged:
            return
        seqs = [s for a in incident.alerts for s in a["seqs"]]
        evidence = gather_evidence(self.domain, seqs, self.tasks, incident.task_id)
        disposition = draft_disposition(incident, self.tasks, self.pending(incident_id))
        self.incidents.set_triage(incident_id, untriaged, at=self._clock(), evidence=evidence,
                                  disposition=disposition)
        self._emit("triaged", incident_id, {"alerts": len(untriaged)})

    def _emit(self, kind: str, incident_id: str, detail: Mapping[str, Any]) -> None:
        for observer in self._observers:
            try:
                observer(kind, incident_id, detail)
            except Exception:
                log.exception("response observer failed")
