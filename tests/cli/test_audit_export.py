"""`warrant audit export`: the audit log to a SIEM as OCSF events, run as a real process."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from tests.cli._run import warrant
from warrant.response import INCIDENTS_DB
from warrant.store import SqliteIncidents


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A domain with admin records and two decisions (one allowed, one denied)."""
    path = tmp_path_factory.mktemp("export") / "home"
    warrant(path, "init", "--domain", "acme.example")
    warrant(path, "agent", "register", "billing", "--owner", "finance", "--purpose", "pays")
    warrant(path, "tools", "add", "read_file", "--risk", "read-only")
    cred = json.loads(warrant(path, "credential", "issue", "billing", "--ttl", "5m", "--json"))
    minted = json.loads(warrant(path, "mint", "--agent", "billing", "--task", "read",
                                "--tool", "read_file", "--json"))
    (path / "w.tok").write_text(minted["token"])
    (path / "c.tok").write_text(cred["token"])
    base = ["check", "--warrant", f"@{path / 'w.tok'}", "--credential", f"@{path / 'c.tok'}",
            "--agent-key", str(path / "agents" / "billing.key"), "--json"]
    warrant(path, *base, "--tool", "read_file", "--args", '{"path": "a"}')
    warrant(path, *base, "--tool", "drop_table", "--args", "{}", expect=1)
    return path


def _events(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_export_writes_every_record_as_an_ocsf_event_to_a_file(home: Path,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "siem.jsonl"
    said = warrant(home, "audit", "export", "--format", "ocsf", "--out", str(out))
    events = _events(out.read_text(encoding="utf-8"))
    size = json.loads(warrant(home, "audit", "verify", "--json"))["size"]
    assert f"exported {len(events)} ocsf event(s)" in said
    assert len(events) == size
    decisions = [e for e in events if e.get("activity_name") == "Call Tool"]
    assert [e["disposition"] for e in decisions] == ["Allowed", "Blocked"]
    assert {e["class_uid"] for e in events} == {6003, 3001}
    assert all(e["metadata"]["tenant_uid"] == "acme.example" for e in events)  # type: ignore[index]


def test_export_since_a_seq_goes_to_standard_output(home: Path) -> None:
    events = _events(warrant(home, "audit", "export", "--since", "3"))
    assert events
    assert events[0]["metadata"]["sequence"] == 3  # type: ignore[index]


def test_export_to_syslog_over_udp(home: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(10)
        port = server.getsockname()[1]
        warrant(home, "audit", "export", "--since", "4", "--syslog", f"127.0.0.1:{port}")
        first, _ = server.recvfrom(65535)
    assert first.startswith(b"<")
    assert b" warrant " in first and b"ocsf-" in first


def test_export_to_a_dead_webhook_fails_with_a_clear_error(home: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/"
        said = warrant(home, "audit", "export", "--webhook", url, expect=2)
    assert "export failed" in said


def test_export_refuses_two_destinations(home: Path, tmp_path: Path) -> None:
    said = warrant(home, "audit", "export", "--out", str(tmp_path / "x"), "--syslog",
                   "127.0.0.1:514", expect=2)
    assert "at most one of" in said


def test_export_includes_incidents_when_asked(home: Path) -> None:
    store = SqliteIncidents(home / INCIDENTS_DB)  # as the response engine writes them
    try:
        now = time.time()
        incident_id, _, _ = store.open_or_join(
            key="k", window_seconds=60, now=now, severity="critical",
            severity_rank={"critical": 4}, agent=None, task_id=None, title="canary touched",
            detection="canary", event_at=now)
    finally:
        store.close()
    without = _events(warrant(home, "audit", "export"))
    events = _events(warrant(home, "audit", "export", "--incidents"))
    [finding] = [e for e in events if e["class_uid"] == 2005]
    assert len(events) == len(without) + 1
    assert finding["metadata"]["uid"] == incident_id  # type: ignore[index]
    assert finding["severity_id"] == 5
