"""The escape suite: from inside the sandbox each attempt fails or gets the command killed,
and what the sandbox stopped is reported in `violations`."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from warrant.sandbox import SandboxLimits, SandboxProfile, SandboxResult, run_sandboxed

FAST = SandboxProfile(name="test", limits=SandboxLimits(timeout_seconds=8.0))


def sh(script: str, profile: SandboxProfile = FAST, **kwargs: object) -> SandboxResult:
    return run_sandboxed(["/bin/sh", "-c", script], profile, **kwargs)  # type: ignore[arg-type]


def py(code: str, profile: SandboxProfile = FAST) -> SandboxResult:
    return run_sandboxed(["python3", "-c", code], profile)


def kinds(result: SandboxResult) -> set[str]:
    return {v.kind for v in result.violations}


@pytest.mark.claim("sandbox.no-host-files")
def test_etc_shadow_and_root_home_do_not_exist_inside() -> None:
    result = sh("cat /etc/shadow; cat /etc/passwd; ls /root; ls /home")
    assert result.exit_code != 0
    assert b"root:" not in result.stdout
    assert result.stderr.count(b"No such file or directory") == 4


@pytest.mark.claim("sandbox.no-host-files")
def test_the_users_home_and_the_warrant_home_are_not_reachable(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    home = tmp_path / "home"
    (home / ".warrant").mkdir(parents=True)
    (home / "secret.txt").write_text("user-secret")
    (home / ".warrant" / "domain.key").write_text("warrant-key")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WARRANT_HOME", str(home / ".warrant"))
    result = sh(f'cat "$HOME/secret.txt" {home}/secret.txt {home}/.warrant/domain.key '
                '"$WARRANT_HOME/domain.key"')
    assert result.exit_code != 0
    assert b"secret" not in result.stdout and b"warrant-key" not in result.stdout


@pytest.mark.claim("sandbox.no-host-files")
def test_writes_outside_tmp_fail_and_tmp_is_private() -> None:
    cwd = Path.cwd()
    result = sh(f"echo x > /usr/evil; echo x > /etc/evil; echo x > {cwd}/evil; "
                "echo ok > /tmp/fine && cat /tmp/fine")
    assert result.stdout == b"ok\n"
    assert result.stderr.count(b"sh: 1: cannot create") == 3
    assert not Path("/usr/evil").exists() and not (cwd / "evil").exists()


@pytest.mark.claim("sandbox.no-host-files")
def test_proc_self_root_and_symlinks_stay_inside() -> None:
    result = sh("ln -s / /tmp/up; ls /proc/self/root/root /tmp/up/root /proc/1/root/etc/shadow; "
                "cat /proc/self/root/etc/shadow /tmp/up/../../etc/shadow")
    assert result.exit_code != 0 and result.stdout == b""
    assert b"Permission denied" in result.stderr or b"No such file" in result.stderr


@pytest.mark.claim("sandbox.no-network")
@pytest.mark.parametrize("port", [5432, 6379])
def test_loopback_services_of_the_host_are_unreachable_and_recorded(port: int) -> None:
    result = py(f"import socket; socket.create_connection(('127.0.0.1', {port}), 2)")
    assert result.exit_code != 0 and result.killed_by == "signal"
    assert "syscall" in kinds(result)


@pytest.mark.claim("sandbox.no-network")
def test_dns_lookup_fails_and_is_recorded() -> None:
    result = py("import socket; print(socket.getaddrinfo('example.com', 443))")
    assert result.exit_code != 0 and result.stdout == b""
    assert "syscall" in kinds(result) or b"gaierror" in result.stderr


@pytest.mark.claim("sandbox.no-network")
def test_only_loopback_exists_even_with_a_unix_socket() -> None:
    result = sh("cat /proc/net/dev")
    interfaces = {line.split(b":")[0].strip() for line in result.stdout.splitlines()[2:]}
    assert interfaces == {b"lo"}


@pytest.mark.claim("sandbox.syscall-filter")
def test_ptrace_of_another_process_kills_the_command() -> None:
    code = ("import ctypes, os; pid = os.fork()\n"
            "if pid == 0: os.execv('/bin/sleep', ['sleep', '5'])\n"
            "libc = ctypes.CDLL(None); print(libc.ptrace(16, pid, 0, 0))")
    result = py(code)
    assert result.killed_by == "signal" and "syscall" in kinds(result)
    assert result.stdout == b""


@pytest.mark.claim("sandbox.syscall-filter")
def test_mount_and_unshare_kill_the_command() -> None:
    for code in ("import ctypes; ctypes.CDLL(None).mount(b'none', b'/tmp', b'tmpfs', 0, None)",
                 "import ctypes; ctypes.CDLL(None).unshare(0x10000000)"):
        result = py(code)
        assert result.exit_code == 128 + 31, result
        assert "syscall" in kinds(result)


@pytest.mark.claim("sandbox.limits")
def test_fork_bomb_hits_the_process_limit() -> None:
    profile = SandboxProfile(name="t", limits=SandboxLimits(nproc=16, timeout_seconds=8.0))
    code = ("import os, time\nkids = 0\n"
            "try:\n    for _ in range(1000):\n        if os.fork() == 0:\n"
            "            time.sleep(3); os._exit(0)\n        kids += 1\n"
            "finally:\n    print(kids, flush=True)")
    result = py(code, profile)
    assert int(result.stdout.split()[0]) <= 16
    assert "process-limit" in kinds(result)


@pytest.mark.claim("sandbox.limits")
def test_memory_bomb_hits_the_address_space_limit() -> None:
    profile = SandboxProfile(name="t", limits=SandboxLimits(address_space_bytes=256 << 20,
                                                            timeout_seconds=8.0))
    result = py("x = bytearray(512 << 20)", profile)
    assert result.killed_by == "memory" and "memory-limit" in kinds(result)


@pytest.mark.claim("sandbox.limits")
def test_cpu_spin_is_killed_at_the_cpu_limit() -> None:
    profile = SandboxProfile(name="t", limits=SandboxLimits(cpu_seconds=1, timeout_seconds=8.0))
    result = py("while True: pass", profile)
    assert result.killed_by == "cpu" and "cpu-limit" in kinds(result)
    assert result.duration_seconds < 5


@pytest.mark.claim("sandbox.limits")
def test_huge_output_is_capped_and_the_command_killed() -> None:
    profile = SandboxProfile(name="t", limits=SandboxLimits(output_bytes=100_000,
                                                            timeout_seconds=8.0))
    result = sh("yes", profile)
    assert result.killed_by == "output" and result.truncated
    assert len(result.stdout) + len(result.stderr) <= 100_000
    assert "output-limit" in kinds(result)


@pytest.mark.claim("sandbox.limits")
def test_wall_clock_timeout_kills_the_command() -> None:
    profile = SandboxProfile(name="t", limits=SandboxLimits(timeout_seconds=0.5))
    result = sh("sleep 30", profile)
    assert result.killed_by == "timeout" and "timeout" in kinds(result)
    assert result.duration_seconds < 3


@pytest.mark.claim("sandbox.env-scrubbed")
def test_inherited_environment_secrets_are_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-parent-secret")
    result = sh("env; cat /proc/1/environ", env={"TOOL_TOKEN": "per-call"})
    assert b"parent-secret" not in result.stdout + result.stderr
    assert b"AWS_SECRET_ACCESS_KEY" not in result.stdout
    assert b"TOOL_TOKEN=per-call" in result.stdout


def test_tests_use_loopback_only() -> None:
    # The suite must not depend on anything but this machine.
    assert socket.gethostbyname("localhost").startswith("127.")
    assert os.path.exists(sys.executable)
