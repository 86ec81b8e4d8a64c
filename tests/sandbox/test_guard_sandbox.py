"""`@guard.tool(..., sandbox=...)`: an allowed call runs in the sandbox, not in our process,
and what the sandbox stopped lands in the audit log."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import AgentKit, make_agent
from warrant.enforce import Denied, Guard, TrustDomain
from warrant.sandbox import (
    SandboxError,
    SandboxLimits,
    SandboxProfile,
    SandboxProfileError,
    SandboxToolError,
    call_in_sandbox,
    get_profile,
)

FAST = SandboxProfile(name="fast", limits=SandboxLimits(timeout_seconds=10.0))
LIMIT = 3


def _helper(text: str) -> str:
    return text.upper()[:LIMIT]


def shout(text: str) -> dict[str, object]:
    """Uses a module import, a same-module helper and a module constant."""
    return {"text": _helper(text), "json": json.dumps([1]), "pid": os.getpid(),
            "uid": os.getuid()}


def read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def connect(port: int) -> str:
    import socket
    socket.create_connection(("127.0.0.1", port), 2)
    return "connected"


def write_proc_comm() -> str:
    with open("/proc/self/comm", "w", encoding="utf-8") as f:
        f.write("renamed")
    return "written"


def test_a_function_runs_in_the_sandbox_and_returns_its_value() -> None:
    value, result = call_in_sandbox(shout, {"text": "hello"}, FAST)
    assert isinstance(value, dict)
    assert value["text"] == "HEL" and value["json"] == "[1]"
    assert value["pid"] != os.getpid() and value["uid"] == 65534  # another process, nobody
    assert result.ok and result.violations == ()


@pytest.mark.claim("sandbox.no-host-files")
def test_a_sandboxed_tool_cannot_read_host_files_or_keys(domain: TrustDomain) -> None:
    key = next(p for p in Path(domain.home).rglob("*") if p.is_file())
    with pytest.raises(SandboxToolError, match="FileNotFoundError"):
        call_in_sandbox(read, {"path": str(key)}, FAST)


@pytest.mark.claim("sandbox.syscall-filter")
def test_landlock_file_rules_hold_inside_a_sandboxed_tool() -> None:
    from warrant.sandbox._landlock import abi_version
    if abi_version() == 0:
        pytest.skip("the kernel has no Landlock; the sandbox logs that it runs without it")
    with pytest.raises(SandboxToolError, match="PermissionError"):
        call_in_sandbox(write_proc_comm, {}, FAST)


def test_closures_and_unsendable_globals_are_refused_before_anything_runs() -> None:
    secret = "captured"

    def closure() -> str:
        return secret

    with pytest.raises(SandboxError, match="is a closure"):
        call_in_sandbox(closure, {}, FAST)
    with pytest.raises(SandboxError, match="are not JSON"):
        call_in_sandbox(shout, {"text": object()}, FAST)


@pytest.fixture
def guard(domain: TrustDomain) -> Guard:
    return Guard(domain)


def test_a_guarded_tool_with_a_sandbox_runs_there_and_is_audited(guard: Guard,
                                                                  agent: AgentKit) -> None:
    tool = guard.tool(risk="read-only", name="read_file", sandbox=FAST)(shout)
    with guard.session(credential=agent.credential, warrant=agent.warrant,
                       agent_key=agent.key):
        value = tool(text="hi there")
    assert isinstance(value, dict) and value["text"] == "HI " and value["uid"] == 65534
    tools = [e.record.tool for e in guard.domain.audit.tail(3)]
    assert tools == ["read_file", "sandbox.run", "read_file"]  # decision, run, outcome


@pytest.mark.claim("sandbox.no-network")
def test_a_sandboxed_tool_opening_a_socket_is_killed_and_the_violation_recorded(
        guard: Guard, domain: TrustDomain) -> None:
    kit = make_agent(domain, "netter", tools=("connect",))
    tool = guard.tool(risk="read-only", sandbox="none-network")(connect)
    with guard.session(credential=kit.credential, warrant=kit.warrant, agent_key=kit.key):
        with pytest.raises(SandboxToolError, match="did not complete"):
            tool(port=5432)
    details = [e.record.detail or {} for e in domain.audit.tail(4)]
    assert {"kind": "syscall"}.items() <= next(
        d for d in details if d.get("kind") == "syscall").items()


def test_a_denied_sandboxed_tool_never_starts_a_sandbox(guard: Guard, agent: AgentKit) -> None:
    tool = guard.tool(risk="destructive", name="drop_table", sandbox=FAST)(read)
    with guard.session(credential=agent.credential, warrant=agent.warrant, agent_key=agent.key):
        with pytest.raises(Denied):
            tool(path="/etc/hostname")
    assert "sandbox.run" not in [e.record.tool for e in guard.domain.audit.tail(3)]


@pytest.mark.no_bwrap_needed
def test_an_unknown_sandbox_profile_fails_at_decoration(guard: Guard) -> None:
    with pytest.raises(SandboxProfileError, match="no sandbox profile `nope`"):
        guard.tool(risk="read-only", sandbox="nope")(read)
    assert get_profile("none-network").network == "none"
