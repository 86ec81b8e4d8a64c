"""The egress proxy of a long-running sandboxed server (`sandboxed_command` with a network
profile): the launcher hands the proxy host the sandbox's PID over a control socket, the
proxy is placed in the server's network namespace before the server starts, and anything
that does not add up kills the sandbox instead of running it. Loopback only."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.sandbox.test_egress import allowed_port, other_service, profile
from warrant.sandbox import EgressRecord, SandboxError, sandboxed_command
from warrant.sandbox._server_egress import ServerEgress

__all__ = ["allowed_port", "other_service"]  # fixtures, shared with test_egress

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="placing the proxy needs root")

CLIENT = """
import socket, sys, urllib.request
def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return "ok " + reply.read().decode()
    except Exception as exc:
        return "blocked " + str(exc)
print(fetch(sys.argv[1]))
print(fetch(sys.argv[2]))
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[3])), timeout=3)
    print("raw ok")
except OSError as exc:
    print("raw blocked", exc)
"""


@needs_root
@pytest.mark.claim("sandbox.no-network")
def test_a_server_reaches_its_listed_host_through_the_proxy_and_nothing_else(
        allowed_port: int, other_service: object) -> None:
    other = other_service.getsockname()[1]  # type: ignore[attr-defined]
    seen: list[EgressRecord] = []
    command = sandboxed_command(
        ["/usr/bin/python3", "-c", CLIENT, f"http://127.0.0.1:{allowed_port}/",
         f"http://127.0.0.1:{other}/", str(allowed_port)],
        profile(f"127.0.0.1:{allowed_port}"), on_egress=seen.append, name="client")
    try:
        done = subprocess.run(command.argv, env=dict(command.env), capture_output=True,
                              timeout=30, check=False)
    finally:
        records = command.close()
    lines = done.stdout.decode().splitlines()
    assert lines[0] == "ok hello from the allowed host", done.stderr
    assert lines[1].startswith("blocked HTTP Error 403")
    assert lines[2].startswith("raw blocked")
    assert [(r.port, r.allowed) for r in records] == [(allowed_port, True), (other, False)]
    assert seen == list(records)
    assert command.egress is not None and command.egress.error is None


@needs_root
@pytest.mark.claim("sandbox.fail-closed")
def test_a_control_connection_naming_a_process_outside_its_sandbox_is_refused_and_killed(
) -> None:
    host = ServerEgress(["127.0.0.1:1"], lambda record: None, server="fake")
    bystander = subprocess.Popen(["/bin/sleep", "60"])  # not the fake launcher's child
    fake = subprocess.Popen([sys.executable, "-c", (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        f"s.connect({host.control!r})\n"
        f"s.sendall(b'{{\"child-pid\": {bystander.pid}}}')\n"
        "print(s.recv(1), flush=True)\n")], stdout=subprocess.PIPE)
    try:
        out, _ = fake.communicate(timeout=30)
        assert fake.returncode == -9 and out == b""  # killed, never released
        assert bystander.poll() is None  # an unverified PID is never signalled
        assert host.error is not None and "is not the sandbox the launcher started" in host.error
    finally:
        bystander.kill()
        bystander.wait()
        host.close()


@pytest.mark.claim("sandbox.fail-closed")
def test_without_root_a_network_profile_for_a_server_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # the check reads os.geteuid()
    with pytest.raises(SandboxError, match="needs Warrant to run as root") as caught:
        sandboxed_command(["/bin/true"], profile("example.com"), on_egress=lambda r: None)
    assert caught.value.hint is not None and 'network = "none"' in caught.value.hint


@needs_root
def test_closing_the_command_stops_its_proxy_host() -> None:
    command = sandboxed_command(["/bin/true"], profile("example.com"), on_egress=lambda r: None)
    assert command.egress is not None
    control = command.egress.control
    assert os.path.exists(control)
    assert command.close() == ()
    assert not os.path.exists(control)
