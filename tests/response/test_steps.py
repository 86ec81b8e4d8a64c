"""The memory steps, the memory-integrity detection, containment order, bounds."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.conftest import AgentKit
from warrant import audit
from warrant.enforce import GuardedMemory, Pipeline, TrustDomain
from warrant.memory import MemoryIntegrityError, MemoryQuarantined
from warrant.response import (
    DetectionConfig,
    Event,
    ResponseEngine,
    default_detections,
    memory_integrity,
    parse_playbook,
)
from warrant.response._triage import TaskBook
from warrant.types import thaw

from .conftest import CANARY, Watch


def canary_call(pipeline: Pipeline, agent: AgentKit) -> None:
    pipeline.decide(agent.request("send_email", to="ops@acme.example", body=f"key {CANARY}"))


def admin_details(domain: TrustDomain, action: str) -> list[dict[str, object]]:
    return [thaw(e.record.detail or {}) for e in domain.audit.tail(5_000)
            if e.record.kind == "admin" and e.record.tool == action]


def revocations(domain: TrustDomain) -> set[tuple[str, str]]:
    return {(k, v) for k, v, _, _ in domain.store.list_revocations()}


def test_containment_runs_before_the_alert_is_recorded(
        domain: TrustDomain, engine: ResponseEngine, watch: Watch, pipeline: Pipeline,
        agent: AgentKit) -> None:
    for _ in range(5):
        pipeline.decide(agent.request("drop_table"))
    incident_id, _ = watch.wait("contained")
    watch.wait("triaged", lambda i, d: i == incident_id)
    mine = [k for k, i, _ in watch.seen if i == incident_id]
    assert mine.index("contained") < mine.index("alert") < mine.index("triaged")


def test_the_memory_integrity_detection_fires_on_the_memory_guards_record(
        domain: TrustDomain) -> None:
    record = audit.AuditRecord(kind="admin", time=audit.utc_now(), tool="memory.integrity-failure",
                               detail={"namespace": "agent:billing", "key": "payee",
                                       "reason": "signature"})
    detection = memory_integrity()
    assert detection.inline
    [alert] = detection.detect(Event(7, record, 1.0), {})
    assert alert.detection == "response.memory-integrity" and alert.seqs == (7,)
    assert alert.detail["namespace"] == "agent:billing"
    assert "response.memory-integrity" in {d.id for d in default_detections()}


@pytest.mark.claim("response.auto-containment")
def test_a_tampered_memory_item_quarantines_the_whole_namespace(
        domain: TrustDomain, watch: Watch, agent: AgentKit) -> None:
    with GuardedMemory(domain) as memory:
        memory.put("billing", "agent:billing", "payee", {"iban": "DE00 1234"})
        memory.put("billing", "agent:billing", "limit", 100)
        engine = ResponseEngine(domain, memory=memory)
        engine.observe(watch)
        with engine:
            with sqlite3.connect(str(memory.store.path), isolation_level=None) as db:
                db.execute("UPDATE items SET content = ? WHERE key = 'payee'",
                           (json.dumps({"iban": "XX99 6666"}),))
            with pytest.raises(MemoryIntegrityError):
                memory.get("billing", "agent:billing", "payee")
            incident_id, done = watch.wait("contained")
            assert done["action"] == "quarantine_memory"
            # The untouched item is no longer served either: the namespace is quarantined.
            with pytest.raises(MemoryQuarantined):
                memory.get("billing", "agent:billing", "limit")
            assert engine.drain()
            incident = engine.incidents.get(incident_id)
            assert incident is not None
            assert incident.detections == ["response.memory-integrity"]
        quarantines = admin_details(domain, "memory.quarantine")
        # Inline: the engine acts while the guard is still recording the failure, so the
        # tampered item may be quarantined by both; the untouched one by the engine.
        assert "limit" in {q["key"] for q in quarantines}
        actions = [d["action"] for d in admin_details(domain, "response.action")]
        assert "quarantine_memory" in actions


@pytest.mark.claim("response.fail-safe-playbooks")
def test_a_memory_step_without_a_memory_guard_fails_loudly_and_containment_goes_on(
        domain: TrustDomain, watch: Watch, pipeline: Pipeline, agent: AgentKit) -> None:
    before = revocations(domain)
    engine = ResponseEngine(domain, playbooks=[parse_playbook("""
id: contain
match: {severities: [critical]}
steps: [{action: quarantine_memory}, {action: narrow}, {action: revoke_task}]
""")], config=DetectionConfig(canaries=(CANARY,)))
    engine.observe(watch)
    with engine:
        canary_call(pipeline, agent)
        incident_id, failed = watch.wait("step-failed")
        assert failed["action"] == "quarantine_memory"
        assert "no memory guard" in str(failed["error"])
        watch.wait("contained")
        assert engine.drain()
        detections = {a["detection"] for a in engine.incidents.alerts(incident_id)}
    assert "response.step-failed" in detections
    assert before < revocations(domain)  # only ever more revoked
    assert not pipeline.decide(agent.request("read_file", path="a")).allowed


def test_the_task_book_stays_bounded_and_keeps_the_most_recent_tasks() -> None:
    book = TaskBook(max_tasks=100)
    for i in range(1_000):
        book.observe(audit.AuditRecord(
            kind="admin", time=audit.utc_now(), tool="warrant.mint",
            detail={"task_id": f"task-{i}", "agent": f"spiffe://x/agent/a{i % 7}",
                    "tools": ["read_file"]}))
    assert len(book) == 100
    assert book.tools_of("task-999") == ["read_file"]
    assert book.tools_of("task-0") == []
    assert len(book.open_tasks("spiffe://x/agent/a0")) <= 100
    with pytest.raises(ValueError, match="at least one"):
        TaskBook(max_tasks=0)
