"""SIEM export: audit records and incidents as OCSF events; the file, syslog and webhook sinks."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import pytest
from ocsf.v1_7_0 import events as ocsf_events
from pydantic import BaseModel

from tests.conftest import AgentKit, make_agent
from warrant.audit import AuditRecord, utc_now
from warrant.enforce import Pipeline, TrustDomain
from warrant.response import (
    INCIDENTS_DB,
    OCSF_VERSION,
    FileSink,
    OcsfExporter,
    SyslogSink,
    WebhookSink,
    export_events,
    incident_to_ocsf,
    log_events,
    to_ocsf,
)
from warrant.store import SqliteIncidents

MODELS: Mapping[int, type[BaseModel]] = {
    6003: ocsf_events.ApiActivity, 3001: ocsf_events.AccountChange,
    2005: ocsf_events.IncidentFinding,
}
#: Fields of the OCSF profiles Warrant applies (security_control, trace, incident).
PROFILE_FIELDS = {"action", "action_id", "disposition", "disposition_id", "policy", "trace"}
AGENT = "spiffe://acme.example/agent/billing"


@cache
def dictionary() -> Mapping[str, Any]:
    schema = resources.files("ocsf") / "schemas" / "v1_7_0.json"
    loaded: Mapping[str, Any] = json.loads(schema.read_text(encoding="utf-8"))["dictionary"]
    return loaded["attributes"]  # type: ignore[no-any-return]


def assert_valid(event: Mapping[str, Any]) -> None:
    """The event parses with the OCSF 1.7 model of its class, with no unknown fields."""
    assert event["metadata"]["version"] == OCSF_VERSION == "1.7.0"
    model = MODELS[event["class_uid"]]
    model.model_validate(event)
    known = {f.alias or name for name, f in model.model_fields.items()} | PROFILE_FIELDS
    assert set(event) <= known, set(event) - known
    for enum_field in ("action_id", "disposition_id", "severity_id", "status_id"):
        if enum_field in event and model is not ocsf_events.IncidentFinding:
            assert str(event[enum_field]) in dictionary()[enum_field]["enum"], enum_field


def decision(effect: str, **extra: Any) -> AuditRecord:
    return AuditRecord(
        kind="decision", time=utc_now(), decision_id="d-1", effect=effect, agent=AGENT,
        principal_chain=("user:alice", AGENT), task_id="task-1", tool="mail/send_email",
        argument_digest="ab" * 32, arguments_redacted={"to": "ops@acme.example"},
        reasons=({"code": "policy.permit", "message": "m", "source": "policy"},),
        policy_revision="sha256:0e37", latency_us=512.0, **extra)


@pytest.mark.parametrize(("effect", "action_id", "disposition_id", "status_id"), [
    ("allow", 1, 1, 1), ("deny", 2, 2, 2), ("needs-approval", 99, 14, 99)])
def test_a_decision_is_an_api_activity_with_its_verdict(
        effect: str, action_id: int, disposition_id: int, status_id: int) -> None:
    event = to_ocsf(decision(effect), seq=7, tenant="acme.example")
    assert_valid(event)
    assert event["class_uid"] == 6003
    assert event["type_uid"] == 600399
    assert (event["action_id"], event["disposition_id"], event["status_id"]) == (
        action_id, disposition_id, status_id)
    assert event["actor"]["user"]["uid"] == AGENT
    assert event["actor"]["invoked_by"] == "user:alice"
    assert event["actor"]["session"]["uid"] == "task-1"
    assert event["api"]["operation"] == "mail/send_email"
    assert event["api"]["service"]["name"] == "mail"
    assert event["api"]["request"]["uid"] == "d-1"
    assert event["metadata"]["uid"] == "d-1"
    assert event["metadata"]["sequence"] == 7
    assert event["metadata"]["tenant_uid"] == "acme.example"
    assert event["metadata"]["product"]["name"] == "Warrant"
    assert event["policy"]["uid"] == "sha256:0e37"
    assert event["unmapped"]["principal_chain"] == ["user:alice", AGENT]
    assert event["status_detail"] == "policy.permit"


def test_a_decision_in_a_trace_carries_the_trace_profile() -> None:
    event = to_ocsf(decision("allow", detail={"trace_id": "a" * 32, "span_id": "b" * 16}))
    assert_valid(event)
    assert "trace" in event["metadata"]["profiles"]
    assert event["trace"]["uid"] == "a" * 32
    assert event["trace"]["span"]["uid"] == "b" * 16


@pytest.mark.parametrize(("status", "status_id"), [("ok", 1), ("error", 2)])
def test_an_outcome_is_an_api_activity_with_the_tools_status(status: str,
                                                             status_id: int) -> None:
    record = AuditRecord(kind="outcome", time=utc_now(), decision_id="d-1", effect="allow",
                         agent=AGENT, task_id="task-1", tool="read_file",
                         outcome={"status": status, "result_digest": "cd" * 32,
                                  "result_bytes": 12, "error": "boom"})
    event = to_ocsf(record)
    assert_valid(event)
    assert event["status_id"] == status_id
    assert event["metadata"]["uid"] == "d-1/outcome"
    assert event["metadata"]["correlation_uid"] == "d-1"
    assert event["api"]["response"]["data"]["result_bytes"] == 12


def test_agent_account_changes_are_account_change_events() -> None:
    record = AuditRecord(kind="admin", time=utc_now(), decision_id="a-1", tool="agent.register",
                         detail={"agent": AGENT, "owner": "finance"})
    event = to_ocsf(record)
    assert_valid(event)
    assert (event["class_uid"], event["activity_id"]) == (3001, 1)
    assert event["user"]["uid"] == AGENT


def test_other_admin_actions_name_the_person_who_acted() -> None:
    record = AuditRecord(kind="admin", time=utc_now(), decision_id="a-2",
                         tool="approval.approve", detail={"approval_id": "x", "by": "user:bob"})
    event = to_ocsf(record)
    assert_valid(event)
    assert event["class_uid"] == 6003
    assert event["api"]["operation"] == "approval.approve"
    assert event["actor"]["user"] == {"uid": "user:bob", "name": "bob", "type": "User",
                                      "type_id": 1}


def test_memory_events_are_api_activity() -> None:
    record = AuditRecord(kind="event", time=utc_now(), decision_id="e-1", agent=AGENT,
                         tool="memory.write", argument_digest="ef" * 32,
                         detail={"namespace": "notes", "key": "k"})
    event = to_ocsf(record)
    assert_valid(event)
    assert event["api"]["operation"] == "memory.write"


def test_every_record_of_a_real_log_maps_to_a_valid_event(
        domain: TrustDomain, pipeline: Pipeline, agent: AgentKit) -> None:
    allowed = pipeline.decide(agent.request("read_file", path="a"))
    pipeline.record_outcome(allowed, ok=True, result={"text": "hi"})
    pipeline.decide(agent.request("drop_table"))
    domain.retire_agent(agent.name)
    events = list(log_events(domain.audit, tenant=domain.domain))
    assert len(events) == domain.audit.head()[0]
    for seq, event in enumerate(events):
        assert_valid(event)
        assert event["metadata"]["sequence"] == seq
    assert {e["class_uid"] for e in events} == {6003, 3001}


def test_an_incident_is_an_incident_finding_with_its_alerts(domain: TrustDomain) -> None:
    store = SqliteIncidents(domain.home / INCIDENTS_DB)
    try:
        now = time.time()
        incident_id, _, _ = store.open_or_join(
            key="k", window_seconds=60, now=now, severity="high",
            severity_rank={"high": 3}, agent=AGENT, task_id="task-1",
            title="five denials in a minute", detection="denials", event_at=now - 1)
        store.add_alert(incident_id=incident_id, detection="denials", severity="high", at=now,
                        event_at=now - 1, agent=AGENT, task_id="task-1", seqs=[4, 5],
                        summary="five denials")
        incident = store.get(incident_id)
        assert incident is not None
        event = incident_to_ocsf(incident, tenant="acme.example")
        closed = store.set_status(incident_id, "closed", by="user:alice", at=now + 5)
        closed_event = incident_to_ocsf(closed)
    finally:
        store.close()
    assert_valid(event)
    assert (event["class_uid"], event["severity_id"], event["status_id"]) == (2005, 4, 1)
    [finding] = event["finding_info_list"]
    assert finding["analytic"]["uid"] == "denials"
    assert [r["uid"] for r in finding["related_events"]] == ["4", "5"]
    assert "assignee_group" in event
    assert_valid(closed_event)
    assert (closed_event["activity_id"], closed_event["status_id"]) == (3, 5)
    assert closed_event["assignee"]["uid"] == "user:alice"


# -- sinks ----------------------------------------------------------------------------------


def test_the_file_sink_appends_json_lines(tmp_path: Path, domain: TrustDomain,
                                          pipeline: Pipeline, agent: AgentKit) -> None:
    decisions = [pipeline.decide(agent.request("read_file", path=str(i))) for i in range(3)]
    path = tmp_path / "ocsf.jsonl"
    sink = FileSink(path)
    written = export_events(log_events(domain.audit), sink, batch_size=2)
    sink.close()
    sink = FileSink(path)  # appends, never truncates
    export_events(log_events(domain.audit, since=written - 1), sink)
    sink.close()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == written + 1
    uids = [e["metadata"]["uid"] for e in lines]
    assert all(d.decision_id in uids for d in decisions)


_RFC5424 = re.compile(
    r"^<(?P<pri>\d+)>1 (?P<ts>\S+) (?P<host>\S+) warrant (?P<pid>\d+) ocsf-(?P<cls>\d+) - "
    r"(?P<msg>\{.*\})$", re.DOTALL)


def test_the_syslog_sink_sends_rfc5424_over_udp() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(5)
        sink = SyslogSink("127.0.0.1", server.getsockname()[1])
        sink.write([to_ocsf(decision("deny"))])
        sink.close()
        data, _ = server.recvfrom(65535)
    match = _RFC5424.match(data.decode("utf-8"))
    assert match, data
    assert int(match["pri"]) == 13 * 8 + 4  # log audit, warning (OCSF severity Medium)
    assert match["cls"] == "6003"
    assert json.loads(match["msg"])["disposition"] == "Blocked"


def test_the_syslog_sink_frames_tcp_with_octet_counts() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(5)
        sink = SyslogSink("127.0.0.1", server.getsockname()[1], tcp=True)
        sink.write([to_ocsf(decision("allow")), to_ocsf(decision("deny"))])
        sink.close()
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5)
            received = b""
            while chunk := conn.recv(65536):
                received += chunk
    messages = []
    while received:
        length, _, rest = received.partition(b" ")
        messages.append(rest[:int(length)])
        received = rest[int(length):]
    assert len(messages) == 2
    assert all(_RFC5424.match(m.decode("utf-8")) for m in messages)


class _Hook(BaseHTTPRequestHandler):
    """A webhook receiver: fails the first `failures` posts, then accepts."""

    failures: ClassVar[int] = 0
    attempts: ClassVar[list[int]] = []
    received: ClassVar[list[Any]] = []
    release: ClassVar[threading.Event | None] = None

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).attempts.append(1)
        if self.release is not None:
            self.release.wait(10)  # a wedged receiver
        if len(self.attempts) <= self.failures:
            self.send_response(500)
        else:
            type(self).received.append(json.loads(body))
            self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[_Hook]]]:
    class Hook(_Hook):
        attempts: ClassVar[list[int]] = []
        received: ClassVar[list[Any]] = []

    handler = Hook
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ocsf", handler
    if handler.release is not None:
        handler.release.set()
    server.shutdown()
    server.server_close()


def test_the_webhook_sink_retries_until_the_receiver_accepts(
        webhook: tuple[str, type[_Hook]]) -> None:
    url, hook = webhook
    hook.failures = 2
    WebhookSink(url, retries=3, backoff=0).write([to_ocsf(decision("allow"))])
    assert len(hook.attempts) == 3
    [batch] = hook.received
    assert batch[0]["metadata"]["uid"] == "d-1"


def test_the_webhook_sink_gives_up_after_bounded_retries(
        webhook: tuple[str, type[_Hook]]) -> None:
    url, hook = webhook
    hook.failures = 100
    with pytest.raises(OSError, match="failed 3 times"):
        WebhookSink(url, retries=2, backoff=0).write([to_ocsf(decision("allow"))])
    assert len(hook.attempts) == 3


def test_the_live_exporter_streams_decisions_to_the_webhook(
        domain: TrustDomain, pipeline: Pipeline, agent: AgentKit,
        webhook: tuple[str, type[_Hook]]) -> None:
    url, hook = webhook
    with OcsfExporter(domain, WebhookSink(url, backoff=0), tenant=domain.domain) as exporter:
        decided = [pipeline.decide(agent.request("read_file", path=str(i))) for i in range(5)]
        assert exporter.drain()
        assert exporter.metrics()["failed"] == 0
    uids = {e["metadata"]["uid"] for batch in hook.received for e in batch}
    assert {d.decision_id for d in decided} <= uids


def test_a_wedged_webhook_never_blocks_decisions(
        domain: TrustDomain, pipeline: Pipeline, webhook: tuple[str, type[_Hook]]) -> None:
    url, hook = webhook
    agent = make_agent(domain, "busy", tools=("read_file",), total_budget=100)
    hook.release = threading.Event()
    exporter = OcsfExporter(domain, WebhookSink(url, timeout=10, retries=0), queue_size=2,
                            batch_size=1).start()
    try:
        started = time.perf_counter()
        decisions = [pipeline.decide(agent.request("read_file", path=str(i))) for i in range(20)]
        elapsed = time.perf_counter() - started
        assert all(d.allowed for d in decisions)
        assert elapsed < 5  # the receiver holds every post for 10 s
        assert exporter.dropped >= 15
        dropped = [e.record for e in domain.audit.tail(30) if e.record.tool == "export.dropped"]
        assert len(dropped) == 1  # one admin record per burst
    finally:
        hook.release.set()
        exporter.stop()


def test_a_dead_webhook_is_counted_as_failed_and_decisions_keep_flowing(
        domain: TrustDomain, pipeline: Pipeline, agent: AgentKit) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/"  # bound, never listening
        with OcsfExporter(domain, WebhookSink(dead, retries=1, backoff=0)) as exporter:
            assert all(pipeline.decide(agent.request("read_file", path=str(i))).allowed
                       for i in range(3))
            assert exporter.drain()
            counts = exporter.metrics()
    assert counts["failed"] >= 3
    assert counts["exported"] == 0
