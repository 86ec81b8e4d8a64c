"""The response engine: records → detections → incidents → playbooks, in milliseconds.

The domain publishes every durable audit record to `_on_record` on the
appending thread. That listener does two cheap things: it runs the `inline`
detections that read the record (single-record matches such as a canary token;
detections are indexed by the record kinds and admin actions they read) and
contains at once when they fire, and it appends the record to the worker's
deque without ever blocking (a full queue raises a `response.backpressure`
alert instead) when a stateful detection reads it. The worker takes records in
batches, lingering `BATCH_LINGER` after each so a busy stream of allowed
calls wakes it once per batch, not once per record (a denial wakes it at
once), and runs the stateful and statistical detections.

Containment comes first: an alert whose playbook runs has its automatic
containment steps (revoke, suspend, narrow, quarantine…) executed right after
the incident is looked up, before the alert's bookkeeping, notifications and
triage (evidence with inclusion proofs and a drafted disposition), which run
after the batch, once the agent can no longer act.

INVARIANT: the engine only ever adds revocations. No step, failure or retry
restores a privilege, so a broken playbook can leave an agent less privileged,
never more.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from warrant.audit import AuditRecord
from warrant.config import DomainConfig
from warrant.errors import ConfigError
from warrant.store import SqliteIncidents

from ._detections import DetectionConfig, default_detections
from ._model import SEVERITY_RANK, Alert, Detection, Event, ResponseDomain, Severity
from ._playbooks import (
    CONTAINMENT,
    Playbook,
    Step,
    StepMode,
    default_playbooks,
    domain_playbooks,
)
from ._routing import DetectionIndex
from ._steps import STEPS, MemoryPort, Notifier, StepContext
from ._triage import TaskBook, draft_disposition, gather_evidence
from ._worker import BatchWorker

log = logging.getLogger("warrant.response")

#: Receives `(kind, incident_id, detail)`: alert, action, contained, pending, step-failed,
#: notified, triaged.
Observer = Callable[[str, str, Mapping[str, Any]], None]

#: Incidents waiting for triage at most (each alert stays untriaged, and counted, if dropped).
TRIAGE_QUEUE = 100_000

#: Alerts about the engine itself: recorded and triaged, but never drive playbooks.
INTERNAL = frozenset({"response.action", "response.backpressure", "response.step-failed"})
#: How many (incident, task) pairs the engine remembers having acted on.
MAX_ACTED = 100_000
#: How long the worker waits for more records after a batch (seconds). On a busy
#: stream the decision path then pays one thread wake-up (a context switch and a GIL
#: hand-off, ~100 µs of CPU on a loaded machine) per 10 ms instead of per record.
#: The stateful detections see an allowed call at most this much later; a denial,
#: and the first record after a quiet spell, wake the worker at once.
BATCH_LINGER = 0.01
#: Where the incident tables live, in the domain home (the CLI reads the same file).
INCIDENTS_DB = "incidents.db"


class ResponseEngine:
    """Detections, incidents and playbooks over one domain's event stream."""

    def __init__(self, domain: ResponseDomain, detections: Iterable[Detection] | None = None,
                 playbooks: Iterable[Playbook] | None = None, *,
                 incidents: SqliteIncidents | None = None, config: DetectionConfig | None = None,
                 queue_size: int = 10_000, window_seconds: float = 900.0,
                 webhook_url: str | None = None, clock: Callable[[], float] = time.time,
                 prime_records: int = 5_000, memory: MemoryPort | None = None):
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
        self._inline = DetectionIndex(d for d in detections if d.inline)
        self._stateful = DetectionIndex(d for d in detections if not d.inline)
        self._state: dict[str, dict[str, Any]] = {d.id: {} for d in self._stateful}
        self._worker = BatchWorker("warrant-response", self._work, max_items=queue_size,
                                   linger=BATCH_LINGER)
        # Triage has its own thread: however long evidence takes, it never delays
        # detecting and containing the next event on the worker.
        self._triage = BatchWorker("warrant-triage", self._run_triage, max_items=TRIAGE_QUEUE)
        self._memory = memory
        self._lock = threading.RLock()  # serialises incident handling (inline + worker)
        self._observers: list[Observer] = []
        self._pending: dict[str, list[tuple[Step, Alert]]] = {}
        self._acted: dict[tuple[str, str | None], None] = {}  # insertion-ordered: bounded LRU
        self._dropped, self._bp_open, self._bp_lock = 0, False, threading.Lock()
        self._window, self._webhook, self._clock = window_seconds, webhook_url, clock
        self._prime = prime_records
        self._notifier: Notifier | None = None

    def attach_memory(self, memory: MemoryPort) -> None:
        """The memory guard `quarantine_memory` acts through (set once, before decisions)."""
        self._memory = memory

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, *, listen: bool = True,
              primed_before: int | None = None) -> ResponseEngine:
        """Learn from the log's tail, subscribe, and start the worker.

        The tail primes the open tasks and every stateful detection's state (the
        per-agent rate baselines above all), each record at the time it was
        written, so a restarted engine compares against learned history instead
        of warming up again. Alerts from the past are not raised again: they
        were handled when they happened. `primed_before` limits the priming to
        records before that seq, and `listen=False` leaves the in-process
        subscription out: an `AuditFollower` then feeds every later record.
        """
        for entry in self.domain.audit.tail(self._prime) if self._prime else ():
            if primed_before is not None and entry.seq >= primed_before:
                break
            self.tasks.observe(entry.record)
            event = Event(entry.seq, entry.record, _written_at(entry.record.time))
            for detection in self._stateful.route(entry.record):
                try:
                    for _ in detection.detect(event, self._state[detection.id]):
                        pass
                except Exception:  # a record a detection cannot read must not stop start-up
                    log.exception("priming %s failed on record %d", detection.id, entry.seq)
        self._notifier = Notifier()
        self._triage.start()
        self._worker.start()
        if listen:
            self.domain.subscribe(self._on_record)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, finish queued work (bounded by `timeout`), stop the notifier."""
        self._worker.stop(timeout)
        self._triage.stop(timeout)
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
        """Wait until every queued record was processed and triaged; False on timeout."""
        deadline = time.monotonic() + timeout
        return (self._worker.drain(timeout)
                and self._triage.drain(max(0.0, deadline - time.monotonic())))

    @property
    def dropped(self) -> int:
        """Records dropped because the queue was full (each burst raised an alert)."""
        return self._dropped

    # -- the listener (appending thread: cheap, never blocks) --------------------------------

    def feed(self, seq: int, record: AuditRecord) -> None:
        """Examine one record appended by any process (what `AuditFollower` calls)."""
        self._on_record(seq, record)

    def _on_record(self, seq: int, record: AuditRecord) -> None:
        # The decision path: only the detections that read this record run here, and
        # the record is queued only if a stateful detection (or the task book) reads it.
        if not self._worker.running:
            return
        event = Event(seq, record, self._clock())
        for detection in self._inline.route(record):
            for alert in self._run_detection(detection, event, {}):
                self.handle(alert)
        queued = record.kind == "admin" or self._stateful.route(record)
        # A denial is what the stateful detections react to (repeated denials): it is
        # worked off at once; allowed calls wait for the worker's next batch.
        urgent = record.effect == "deny" and record.kind == "decision"
        if queued and not self._worker.submit(event, urgent=urgent):
            self._on_full(event)

    def _on_full(self, event: Event) -> None:
        with self._bp_lock:
            self._dropped += 1
            if self._bp_open:
                return
            self._bp_open = True
        # One alert per burst, written here: the worker may be what is stuck.
        self.handle(Alert("response.backpressure", Severity.HIGH,
                          f"response queue full ({self._worker.max_items} records); records are "
                          "being dropped from detection (they stay in the audit log)",
                          event_at=event.received_at, seqs=(event.seq,)))

    @staticmethod
    def _run_detection(detection: Detection, event: Event,
                       state: dict[str, Any]) -> Iterable[Alert]:
        try:
            alerts = detection.detect(event, state)
            # Most calls match nothing and return `()`: no list is built for them.
            return alerts if isinstance(alerts, tuple | list) else list(alerts)
        except Exception:
            # A broken detection loses its own signal only; the others keep running.
            log.exception("detection `%s` failed on record %d", detection.id, event.seq)
            return ()

    # -- the worker ------------------------------------------------------------------------

    def _work(self, batch: list[object]) -> None:
        for item in batch:
            if not isinstance(item, Event):
                continue
            try:
                self.tasks.observe(item.record)
                for detection in self._stateful.route(item.record):
                    for alert in self._run_detection(detection, item,
                                                     self._state[detection.id]):
                        self.handle(alert)
            except Exception:
                log.exception("response worker failed on record %d; continuing", item.seq)
        if self._bp_open and not len(self._worker):
            with self._bp_lock:
                self._bp_open = False

    # -- alerts, incidents, playbooks ------------------------------------------------------

    def handle(self, alert: Alert, *, incident_id: str | None = None) -> str:
        """Record an alert in its incident (opened or joined), run its playbook; the incident id.

        The playbook's automatic containment steps run first, straight after the
        incident lookup; the alert's records, other steps and triage follow.
        With `incident_id`, the alert is attached to that incident (the engine's
        own alerts about an incident's actions).
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
            playbook = None
            acted = (incident_id, alert.task_id)
            first = acted not in self._acted
            if alert.detection not in INTERNAL and (opened or escalated or first):
                self._acted[acted] = None
                if len(self._acted) > MAX_ACTED:
                    del self._acted[next(iter(self._acted))]
                playbook = next((p for p in self.playbooks if p.matches(alert)), None)
            later: list[Step] = []
            deferred: list[Callable[[], None]] = []
            if playbook is not None:
                for step in playbook.steps:
                    if step.mode is StepMode.AUTOMATIC and step.action in CONTAINMENT:
                        # INVARIANT: a failing step is recorded and skipped; later steps still run.
                        self._run_step(step, alert, incident_id, by=f"playbook:{playbook.id}",
                                       defer=deferred)
                    else:
                        later.append(step)
            for follow_up in deferred:
                follow_up()
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
            if playbook is not None:
                self._run_playbook(playbook, later, alert, incident_id)
        self._triage.submit(incident_id)  # evidence after containment, on its own thread
        return incident_id

    def _run_playbook(self, playbook: Playbook, steps: list[Step], alert: Alert,
                      incident_id: str) -> None:
        for step in steps:
            if step.mode is StepMode.NEEDS_APPROVAL:
                self._pending.setdefault(incident_id, []).append((step, alert))
                detail = {"action": step.action, "playbook": playbook.id}
                self.incidents.add_timeline(incident_id, self._clock(), "awaiting-approval",
                                            detail)
                self._emit("pending", incident_id, detail)
                continue
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
        self._triage.submit(incident_id)
        return len(chosen)

    def pending(self, incident_id: str) -> list[str]:
        """Actions of an incident waiting for a human."""
        return [s.action for s, _ in self._pending.get(incident_id, [])]

    def _run_step(self, step: Step, alert: Alert, incident_id: str, *, by: str,
                  defer: list[Callable[[], None]] | None = None) -> None:
        """Audit, then run one step; its records and follow-up alert go to `defer` if given."""
        assert self._notifier is not None, "start() the engine before handling alerts"
        action = {"incident_id": incident_id, "action": step.action, "by": by,
                  "detection": alert.detection, "agent": alert.agent, "task_id": alert.task_id}

        def delivered(ok: bool, error: str | None) -> None:
            detail = {"action": "notify", "ok": ok, "error": error}
            self.incidents.add_timeline(incident_id, self._clock(), "notified", detail)
            self._emit("notified", incident_id, detail)

        ctx = StepContext(self.domain, alert, incident_id, step, self._notifier, self._webhook,
                          delivered, self._memory, self.tasks)
        follow_up: Callable[[], None]
        try:
            self.domain.record_admin("response.action", action)
            outcome = STEPS[step.action](ctx)
        except Exception as exc:
            log.exception("playbook step `%s` failed for %s", step.action, incident_id)
            error = f"{type(exc).__name__}: {exc}"[:300]
            failed_at = self._clock()

            def follow_up() -> None:
                failed = {**action, "error": error}
                self.incidents.add_timeline(incident_id, failed_at, "step-failed", failed)
                self._emit("step-failed", incident_id, failed)
                self.handle(Alert("response.step-failed", Severity.HIGH,
                                  f"playbook step `{step.action}` failed: {error}",
                                  event_at=failed_at, agent=alert.agent, task_id=alert.task_id),
                            incident_id=incident_id)
        else:
            at = self._clock()
            done = {**action, "status": outcome.status, "outcome": outcome.detail}
            if outcome.contains and self.incidents.mark_contained(incident_id, at):
                self._emit("contained", incident_id,
                           {**done, "time_to_contain": at - alert.event_at})

            def follow_up() -> None:
                self.incidents.add_timeline(incident_id, at, "action", done)
                self._emit("action", incident_id, done)
                if outcome.status == "done":
                    # Automation is itself watched: every action it takes is an alert.
                    self.handle(Alert("response.action", Severity.INFO,
                                      f"{by} ran `{step.action}`: {outcome.detail}",
                                      event_at=at, agent=alert.agent, task_id=alert.task_id),
                                incident_id=incident_id)
        if defer is None:
            follow_up()
        else:
            defer.append(follow_up)

    def _run_triage(self, batch: list[object]) -> None:
        for incident_id in dict.fromkeys(batch):  # each incident once per batch
            try:
                self._triage_incident(str(incident_id))
            except Exception:
                log.exception("triage of %s failed", incident_id)

    def _triage_incident(self, incident_id: str) -> None:
        # The incident is read under the engine's lock, so triage never sees an
        # alert whose playbook is half-run (pending steps not yet recorded); the
        # slow part (evidence with proofs) runs outside it.
        with self._lock:
            incident = self.incidents.get(incident_id)
            pending = self.pending(incident_id)
        if incident is None:
            return
        untriaged = [a["alert_id"] for a in incident.alerts if a["triaged_at"] is None]
        if not untriaged:
            return
        seqs = [s for a in incident.alerts for s in a["seqs"]]
        evidence = gather_evidence(self.domain, seqs, self.tasks, incident.task_id)
        disposition = draft_disposition(incident, self.tasks, pending)
        self.incidents.set_triage(incident_id, untriaged, at=self._clock(), evidence=evidence,
                                  disposition=disposition)
        self._emit("triaged", incident_id, {"alerts": len(untriaged)})

    def _emit(self, kind: str, incident_id: str, detail: Mapping[str, Any]) -> None:
        for observer in self._observers:
            try:
                observer(kind, incident_id, detail)
            except Exception:
                log.exception("response observer failed")


def domain_engine(domain: ResponseDomain, public_key: Ed25519PublicKey,
                  config: DomainConfig) -> ResponseEngine:
    """The engine a domain runs, wherever it runs (a gateway, `warrant respond`): the
    domain's playbooks (verified when it requires signed configuration) and its
    canary tokens. Not started."""
    return ResponseEngine(domain, playbooks=domain_playbooks(
        domain.home, public_key, require_signed=config.require_signed_config),
        config=DetectionConfig(canaries=config.response_canaries))


def _written_at(stamp: str) -> float:
    """A record's `time` (ISO 8601, UTC) as a timestamp; now if it cannot be read."""
    try:
        return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()
