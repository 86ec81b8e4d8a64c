"""Detections meet only the records they read; the worker batches a busy stream."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import pytest

from tests.conftest import AgentKit
from warrant import audit
from warrant.enforce import Pipeline, TrustDomain
from warrant.response import (
    Alert,
    Detection,
    DetectionConfig,
    Event,
    ResponseEngine,
    Severity,
    default_detections,
)
from warrant.response._routing import DetectionIndex
from warrant.response._worker import BatchWorker


def record(kind: str, tool: str = "read_file") -> audit.AuditRecord:
    if kind == "decision":
        return audit.AuditRecord(kind="decision", time=audit.utc_now(), effect="allow",
                                 agent="spiffe://acme.example/agent/a", tool=tool)
    return audit.AuditRecord(kind=kind, time=audit.utc_now(), tool=tool)


def noop(event: Event, state: dict[str, Any]) -> Iterable[Alert]:
    return ()


def detection(name: str, kinds: frozenset[str] | None = None,
              actions: frozenset[str] = frozenset()) -> Detection:
    return Detection(name, Severity.LOW, name, noop, kinds=kinds, actions=actions)


def test_each_record_meets_only_the_detections_that_read_its_kind_and_action() -> None:
    every = detection("every")
    decisions = detection("decisions", frozenset({"decision"}))
    admin = detection("admin", frozenset({"admin"}))
    rug_pull = detection("rug-pull", frozenset({"admin"}), frozenset({"tool.quarantined"}))
    nothing = detection("nothing", frozenset())
    index = DetectionIndex([every, decisions, admin, rug_pull, nothing])

    def ids(r: audit.AuditRecord) -> list[str]:
        return [d.id for d in index.route(r)]

    assert ids(record("decision")) == ["every", "decisions"]
    assert ids(record("outcome")) == ["every"]
    assert ids(record("admin", "tool.quarantined")) == ["every", "admin", "rug-pull"]
    assert ids(record("admin", "warrant.mint")) == ["every", "admin"]
    assert ids(record("decision")) == ["every", "decisions"]  # from the cache, same answer


def test_a_detection_naming_admin_actions_must_read_admin_records() -> None:
    with pytest.raises(ValueError, match="admin"):
        detection("wrong", frozenset({"decision"}), frozenset({"tool.quarantined"}))


def test_every_default_detection_says_what_it_reads() -> None:
    unconfigured = {d.id: d for d in default_detections()}
    assert all(d.kinds is not None for d in unconfigured.values())
    # Nothing to look for, nothing read: a decision never pays for them.
    assert unconfigured["response.canary-token"].kinds == frozenset()
    assert unconfigured["response.outside-hours"].kinds == frozenset()
    configured = {d.id: d for d in default_detections(
        DetectionConfig(canaries=("CANARY-x",), declared_hours={"*": (9, 17)}))}
    assert configured["response.canary-token"].kinds == frozenset({"decision"})
    assert configured["response.outside-hours"].kinds == frozenset({"decision"})
    decision_readers = {d.id for d in DetectionIndex(configured.values()).route(
        record("decision"))}
    assert decision_readers == {"response.repeated-denials", "response.canary-token",
                                "response.rate-anomaly", "response.outside-hours",
                                "response.injection-then-sink"}


def test_the_engine_calls_a_detection_only_with_the_records_it_reads(
        domain: TrustDomain, pipeline: Pipeline, agent: AgentKit) -> None:
    seen: dict[str, list[str]] = {"inline": [], "worker": []}

    def watcher(where: str) -> Any:
        def detect(event: Event, state: dict[str, Any]) -> Iterable[Alert]:
            seen[where].append(event.record.kind)
            return ()
        return detect

    engine = ResponseEngine(domain, [
        Detection("test.inline-outcomes", Severity.LOW, "x", watcher("inline"), inline=True,
                  kinds=frozenset({"outcome"})),
        Detection("test.worker-decisions", Severity.LOW, "x", watcher("worker"),
                  kinds=frozenset({"decision"})),
    ], playbooks=[])
    with engine:
        decision = pipeline.decide(agent.request("read_file", path="a"))
        pipeline.record_outcome(decision, ok=True, result="contents")
        domain.record_admin("test.something", {})
        assert engine.drain()
    assert seen == {"inline": ["outcome"], "worker": ["decision"]}


def test_a_lingering_worker_still_handles_every_item_and_drains() -> None:
    handled: list[object] = []
    batches: list[int] = []
    lock = threading.Lock()

    def work(batch: list[object]) -> None:
        with lock:
            handled.extend(batch)
            batches.append(len(batch))

    worker = BatchWorker("test-linger", work, max_items=1_000, linger=0.05)
    worker.start()
    try:
        assert worker.submit(0)
        assert worker.drain(5)  # the first item after a quiet spell is handled at once
        for i in range(1, 200):
            assert worker.submit(i)
        assert worker.drain(5)
    finally:
        worker.stop(5)
    assert handled == list(range(200))
    assert sum(batches) == 200


def test_an_urgent_item_is_not_held_back_by_the_linger() -> None:
    handled: list[object] = []
    arrived = {name: threading.Event() for name in ("first", "urgent")}

    def work(batch: list[object]) -> None:
        handled.extend(batch)
        for item in batch:
            if item in arrived:
                arrived[str(item)].set()

    # A linger far longer than any wait below: only an urgent submit ends it in time.
    worker = BatchWorker("test-urgent", work, max_items=100, linger=600)
    worker.start()
    try:
        assert worker.submit("first")
        assert arrived["first"].wait(10)
        assert worker.submit("allowed")
        assert worker.submit("urgent", urgent=True)
        assert arrived["urgent"].wait(10)
    finally:
        worker.stop(10)
    assert handled == ["first", "allowed", "urgent"]
