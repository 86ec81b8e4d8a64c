"""`warrant incidents approve`: a step that waited for a human runs from the CLI, is
audited with the approver, and takes effect on the agent's next call."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import make_agent
from warrant import warrants
from warrant.enforce import Pipeline, TrustDomain
from warrant.errors import IdentityError
from warrant.response import ResponseEngine

from .conftest import Watch


def cli(domain: TrustDomain, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "warrant", *args, "--home", str(domain.home)],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ})


def test_a_pending_suspension_approved_by_a_person_cuts_the_agent_off(
        domain: TrustDomain, engine: ResponseEngine, watch: Watch, pipeline: Pipeline) -> None:
    agent = make_agent(domain, "mallory")
    for _ in range(5):  # out-of-scope probes: the high playbook revokes the task and
        pipeline.decide(agent.request("drop_table", table="users"))  # waits on suspension
    incident_id, detail = watch.wait("pending")
    assert detail["action"] == "suspend_agent"
    watch.wait("triaged", lambda i, d: i == incident_id)

    refused = cli(domain, "incidents", "approve", incident_id, "kill_switch", "--by",
                  "user:alice")
    assert refused.returncode != 0 and "not waiting" in refused.stderr
    bad_person = cli(domain, "incidents", "approve", incident_id, "suspend_agent", "--by",
                     "agent:mallory")
    assert bad_person.returncode != 0 and "user:NAME" in bad_person.stderr

    done = cli(domain, "incidents", "approve", incident_id, "suspend_agent", "--by",
               "user:alice", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "done"
    # Suspended: its credential is revoked, and it gets no warrant for a new task either.
    after = pipeline.decide(agent.request("read_file", path="a"))
    assert "revoked" in {r.code for r in after.reasons}
    with pytest.raises(IdentityError, match="suspended"):
        domain.mint(agent="mallory", task="another task",
                    tools=[warrants.parse_tool_spec("read_file")])
    approvals = [e.record.detail for e in domain.audit.tail(200)
                 if e.record.kind == "admin" and e.record.tool == "response.action"
                 and (e.record.detail or {}).get("approved")]
    assert approvals and (approvals[-1] or {})["by"] == "user:alice"
    again = cli(domain, "incidents", "approve", incident_id, "suspend_agent", "--by",
                "user:alice")
    assert again.returncode != 0 and "not waiting" in again.stderr
