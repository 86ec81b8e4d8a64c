"""`warrant respond`: detection and containment for PEPs that run no engine of their own.

Every process here is a real `warrant` process on one home, as a Claude Code
hook or a script calling `warrant check` would be.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli._run import warrant
from tests.conftest import AgentKit, make_agent
from warrant.enforce import TrustDomain
from warrant.response import ResponseLock
from warrant.store import SqliteIncidents


def check(home: Path, agent: AgentKit, tool: str, expect: int | None,
          **arguments: object) -> dict[str, Any]:
    (home / "w.tok").write_text(agent.warrant)
    (home / "c.tok").write_text(agent.credential)
    out = warrant(home, "check", "--warrant", f"@{home / 'w.tok'}",
                  "--credential", f"@{home / 'c.tok'}",
                  "--agent-key", str(home / "agents" / f"{agent.name}.key"), "--json",
                  "--tool", tool, "--args", json.dumps(arguments), expect=expect)
    decision: dict[str, Any] = json.loads(out)
    return decision


@pytest.mark.claim("response.auto-containment")
def test_denials_decided_by_warrant_check_processes_get_the_task_revoked(
        domain: TrustDomain) -> None:
    home = domain.home
    agent = make_agent(domain)
    assert "up to record" in warrant(home, "respond", "--once")  # starts at the log's head
    # A compromised agent probing, one short-lived PEP process per call.
    for _ in range(5):
        check(home, agent, "drop_table", expect=1, table="users")
    # Run after the fact (cron, or a restart): it examines what was appended meanwhile.
    out = warrant(home, "respond", "--once")
    assert "response.repeated-denials" in out and "revoke_task" in out
    after = check(home, agent, "read_file", expect=1, path="a.txt")
    assert "revoked" in {r["code"] for r in after["reasons"]}
    incidents = SqliteIncidents(home / "incidents.db")
    try:
        (incident,) = incidents.list(status=None, limit=10)
    finally:
        incidents.close()
    assert incident.status == "contained" and incident.task_id == agent.task_id
    # Nothing is examined twice: a second catch-up finds nothing new to act on.
    assert "revoke_task" not in warrant(home, "respond", "--once")


def test_a_running_follower_contains_within_its_polling_interval(domain: TrustDomain) -> None:
    home = domain.home
    agent = make_agent(domain)
    env = {**os.environ, "WARRANT_HOME": str(home)}
    follower = subprocess.Popen([sys.executable, "-m", "warrant", "respond", "--interval", "0.05"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
    try:
        deadline = time.monotonic() + 30
        while not (home / "response.cursor").exists() and time.monotonic() < deadline:
            if follower.poll() is not None:
                break
            check(home, agent, "read_file", expect=0, path="warm-up.txt")
            time.sleep(0.2)
        for _ in range(5):
            check(home, agent, "drop_table", expect=1, table="users")
        revoked = False
        while not revoked and time.monotonic() < deadline:
            time.sleep(0.2)
            # The probe itself is a record too; only its outcome matters here.
            after = check(home, agent, "read_file", expect=None, path="a.txt")
            revoked = "revoked" in {r["code"] for r in after["reasons"]}
        assert revoked, "the follower did not contain the agent within 30 s"
    finally:
        follower.send_signal(signal.SIGTERM)
        out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert "Traceback" not in err
    assert "revoke_task" in out


def test_respond_refuses_to_start_while_a_gateway_runs_its_own_engine(
        domain: TrustDomain) -> None:
    gateway = ResponseLock(domain.home)
    assert gateway.shared()  # what `warrant gateway` holds while its engine runs
    try:
        out = warrant(domain.home, "respond", "--once", expect=2)
    finally:
        gateway.release()
    assert "another process does detection for this domain" in out
    assert "up to record" in warrant(domain.home, "respond", "--once")


def test_a_gateway_beside_a_follower_leaves_detection_to_it(tmp_path: Path) -> None:
    follower, gateway = ResponseLock(tmp_path), ResponseLock(tmp_path)
    assert follower.exclusive()
    assert not gateway.shared()
    follower.release()
    assert gateway.shared()
    assert not ResponseLock(tmp_path).exclusive()
    gateway.release()


def test_a_damaged_cursor_is_a_clear_error_that_says_what_to_do(domain: TrustDomain) -> None:
    (domain.home / "response.cursor").write_text("{not json")
    out = warrant(domain.home, "respond", "--once", expect=2)
    assert "response.cursor is damaged" in out and "delete it" in out
