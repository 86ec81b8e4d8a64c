"""What a sandboxed command can do, and how the runner fails closed when it cannot sandbox."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from pathlib import Path

import pytest

from warrant.sandbox import (
    BUILTIN_PROFILES,
    SandboxError,
    SandboxLimits,
    SandboxProfile,
    SandboxRefused,
    SandboxUnavailable,
    get_profile,
    run_sandboxed,
)


def test_a_normal_command_runs_and_its_output_is_returned() -> None:
    result = run_sandboxed(["/bin/sh", "-c", "echo hello; echo oops >&2; exit 3"])
    assert (result.exit_code, result.stdout, result.stderr) == (3, b"hello\n", b"oops\n")
    assert result.killed_by is None and result.violations == ()


def test_python_runs_inside_and_reads_stdin() -> None:
    result = run_sandboxed(["python3", "-c", "import sys; print(1 + len(sys.stdin.read()))"],
                           stdin=b"abc")
    assert result.ok and result.stdout == b"4\n"


def test_the_workspace_is_bound_read_only() -> None:
    # The sandbox user must be able to reach the workspace like any other user can,
    # so it lives outside pytest's private (0700) tmp.
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        os.chmod(tmp, 0o755)
        (Path(tmp) / "data.txt").write_text("visible")
        result = run_sandboxed(["/bin/sh", "-c", "cat data.txt; pwd; echo x > data.txt"],
                               get_profile("readonly-workspace"), cwd=tmp)
        assert result.stdout == b"visible/workspace\n"
        assert b"Read-only file system" in result.stderr
        assert (Path(tmp) / "data.txt").read_text() == "visible"


def test_a_workspace_the_sandbox_user_cannot_read_is_a_setup_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    if os.geteuid() != 0:
        pytest.skip("only a root caller's workspace is unreadable to the sandbox user")
    with pytest.raises(SandboxError, match="could not be set up"):
        run_sandboxed(["/bin/true"], get_profile("readonly-workspace"), cwd=tmp_path)


def test_a_workspace_is_refused_by_profiles_without_one(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="does not expose a workspace"):
        run_sandboxed(["/bin/true"], cwd=tmp_path)


@pytest.mark.claim("sandbox.no-network")
def test_the_builtin_egress_profile_lets_nothing_out_until_hosts_are_listed() -> None:
    result = run_sandboxed(["curl", "-sS", "-m", "10", "https://example.com/"],
                           BUILTIN_PROFILES["egress-allowlist"])
    assert result.exit_code != 0
    assert [(r.host, r.allowed) for r in result.egress] == [("example.com", False)]


@pytest.mark.claim("sandbox.fail-closed")
@pytest.mark.no_bwrap_needed
def test_a_missing_bubblewrap_raises_with_the_fix(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(SandboxUnavailable) as caught:
        run_sandboxed(["/bin/sh", "-c", f"touch {marker}"], bwrap_path=str(tmp_path / "bwrap"))
    assert "was not found" in caught.value.message
    assert "apt-get install bubblewrap" in caught.value.diagnostics()
    assert "user namespaces" in caught.value.diagnostics()
    assert not marker.exists()


@pytest.mark.claim("sandbox.fail-closed")
@pytest.mark.no_bwrap_needed
def test_no_bubblewrap_on_path_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxUnavailable, match="not found in PATH"):
        run_sandboxed(["/bin/true"])


@pytest.mark.claim("sandbox.fail-closed")
def test_a_bubblewrap_that_cannot_sandbox_raises() -> None:
    # Outside pytest's 0700 tmp so the unprivileged sandbox user can execute it.
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        os.chmod(tmp, 0o755)
        _check_fake_bwrap(Path(tmp))


def _check_fake_bwrap(tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    with pytest.raises(SandboxUnavailable, match="user namespaces are probably disabled"):
        run_sandboxed(["/bin/true"], bwrap_path=str(fake))


@pytest.mark.claim("sandbox.fail-closed")
@pytest.mark.no_bwrap_needed
def test_unsafe_mode_is_refused_in_strict_mode(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(SandboxRefused, match="refused in strict mode"):
        run_sandboxed(["/bin/sh", "-c", f"touch {marker}"], unsafe_no_sandbox=True)
    assert not marker.exists()


@pytest.mark.no_bwrap_needed
def test_unsafe_mode_warns_every_time_and_is_reported(caplog: pytest.LogCaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "still-scrubbed")
    for _ in range(2):
        with caplog.at_level(logging.WARNING, logger="warrant.sandbox"):
            result = run_sandboxed(["/bin/sh", "-c", "env"], unsafe_no_sandbox=True,
                                   strict=False)
        assert result.violations[0].kind == "unsandboxed"
        assert b"still-scrubbed" not in result.stdout
    assert sum("UNSAFE" in r.message for r in caplog.records) == 2
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == "still-scrubbed"


def test_starting_sandboxes_leaves_the_callers_own_identity_and_network_alone() -> None:
    # The spawner thread drops to `nobody` and restricts itself with Landlock; the
    # caller's threads must keep their own uid and TCP.
    uid = os.geteuid()
    assert run_sandboxed(["/bin/true"]).ok
    assert os.geteuid() == uid
    with socket.create_server(("127.0.0.1", 0)) as server, \
            socket.create_connection(server.getsockname(), timeout=5):
        pass


def test_the_sandbox_has_a_read_only_dev_with_only_the_harmless_devices() -> None:
    result = run_sandboxed(["/bin/sh", "-c", "ls /dev; echo x > /dev/new; echo x > /dev/null"])
    listed = result.stdout.decode().split()
    assert {"null", "zero", "random", "urandom"} <= set(listed)
    assert not {"tty", "pts", "full", "core"} & set(listed)
    assert b"Read-only file system" in result.stderr


def test_the_command_starts_with_its_limits_already_set() -> None:
    profile = SandboxProfile(name="t", limits=SandboxLimits(nofile=64, cpu_seconds=7))
    result = run_sandboxed(["/bin/sh", "-c", "ulimit -n; ulimit -t"], profile)
    assert result.stdout.split() == [b"64", b"7"]
