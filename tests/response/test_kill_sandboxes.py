"""`kill_sandboxes`: a contained agent's sandboxed processes stop — a real bubblewrap
process, and a real sandboxed MCP server behind the gateway's upstream."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import anyio
import pytest

from tests.conftest import make_agent
from warrant import sandbox
from warrant.enforce import Pipeline, TrustDomain
from warrant.gateway import StdioServer
from warrant.gateway._upstream import Upstream
from warrant.response import ResponseEngine

from .conftest import CANARY, Watch


def _sandboxed_sleep() -> subprocess.Popen[bytes]:
    try:
        command = sandbox.sandboxed_command(["/bin/sleep", "60"])
    except sandbox.SandboxUnavailable as exc:
        pytest.skip(f"bubblewrap cannot run here: {exc.message}")
    return subprocess.Popen(command.argv, env=dict(command.env), cwd="/")


def test_a_canary_hit_stops_the_agents_sandboxed_processes_and_no_one_elses(
        domain: TrustDomain, engine: ResponseEngine, watch: Watch, pipeline: Pipeline) -> None:
    agent = make_agent(domain, "mallory")
    bystander = make_agent(domain, "bob")
    mine, theirs = _sandboxed_sleep(), _sandboxed_sleep()
    try:
        sandbox.register_sandbox(kill=mine.kill, agent=agent.agent_id, label="tool run 1")
        other = sandbox.register_sandbox(kill=theirs.kill, agent=bystander.agent_id,
                                          label="tool run 2")
        pipeline.decide(agent.request("read_file", path=CANARY))
        _, detail = watch.wait("action", lambda i, d: d["action"] == "kill_sandboxes")
        assert detail["status"] == "done", detail
        assert mine.wait(timeout=10) != 0
        assert theirs.poll() is None  # another agent's sandbox keeps running
        assert sandbox.running_sandboxes(agent=agent.agent_id) == []
        records = [e.record for e in domain.audit.tail(50)
                   if e.record.kind == "admin" and e.record.tool == "response.kill-sandboxes"]
        assert records and records[-1].detail is not None
        assert list(records[-1].detail["killed"]) == ["tool run 1"]
        sandbox.unregister_sandbox(other)
    finally:
        for proc in (mine, theirs):
            proc.kill()
            proc.wait(timeout=10)


def test_a_failing_kill_is_reported_and_the_others_still_die() -> None:
    proc = _sandboxed_sleep()
    try:
        def stuck() -> None:
            raise OSError("operation not permitted")

        sandbox.register_sandbox(kill=stuck, agent="spiffe://acme.example/agent/x", label="a")
        sandbox.register_sandbox(kill=proc.kill, agent="spiffe://acme.example/agent/x",
                                 label="b")
        with pytest.raises(OSError, match="not permitted"):
            sandbox.kill_sandboxes(agent="spiffe://acme.example/agent/x")
        assert proc.wait(timeout=10) != 0
    finally:
        proc.kill()
        proc.wait(timeout=10)
        for entry in sandbox.running_sandboxes(agent="spiffe://acme.example/agent/x"):
            sandbox.unregister_sandbox(entry.token)


def test_the_gateways_sandboxed_mcp_server_stops_when_its_agent_is_contained() -> None:
    server = StdioServer(command=(sys.executable, "-m", "mcp_server_time",
                                  "--local-timezone", "UTC"))
    upstream = Upstream("time", server, _ignore_tools)
    upstream.agent = "spiffe://acme.example/agent/mallory"
    killed: list[str] = []

    async def scenario() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(upstream.run)
            if upstream.session is None:
                pytest.skip(f"the sandboxed time server did not start: {upstream.error}")
            assert [r.label for r in sandbox.running_sandboxes(agent=upstream.agent)] == [
                "MCP server `time`"]
            # The response engine's step runs on another thread.
            thread = threading.Thread(target=lambda: killed.extend(
                sandbox.kill_sandboxes(agent="spiffe://acme.example/agent/mallory")))
            thread.start()
            with anyio.fail_after(20):
                while upstream.session is not None:
                    await anyio.sleep(0.05)
            thread.join(timeout=10)

    started = time.monotonic()
    anyio.run(scenario)
    assert killed == ["MCP server `time`"]
    assert upstream.error is not None and "response engine" in upstream.error
    assert upstream.starts == 1  # a contained agent's server is not started again
    assert sandbox.running_sandboxes(agent="spiffe://acme.example/agent/mallory") == []
    assert time.monotonic() - started < 60


async def _ignore_tools(upstream: Upstream, definitions: object) -> None:
    return None
