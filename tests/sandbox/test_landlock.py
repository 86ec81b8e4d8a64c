"""Landlock under the sandbox where the kernel has it; a logged reason where it has not."""

from __future__ import annotations

import pytest

from warrant.sandbox import SandboxLimits, SandboxProfile, landlock_status, run_sandboxed
from warrant.sandbox._landlock import NET_ABI, abi_version

EGRESS = SandboxProfile(name="ll", network="egress-allowlist",
                        limits=SandboxLimits(timeout_seconds=10.0))


@pytest.mark.no_bwrap_needed
def test_the_status_names_the_abi_or_why_landlock_is_not_used() -> None:
    status = landlock_status()
    assert status.abi == abi_version()
    assert status.applied == (status.abi >= NET_ABI)
    assert ("Landlock ABI" in status.reason) if status.abi else ("no Landlock" in status.reason)


@pytest.mark.claim("sandbox.no-network")
def test_tcp_bind_and_connect_are_refused_by_landlock_when_the_kernel_has_it() -> None:
    if not landlock_status().applied:
        pytest.skip(f"not applied here: {landlock_status().reason}")
    # The egress profile allows IP sockets (seccomp lets them through), so only Landlock
    # stands between the command and a listening socket or a non-proxy port.
    code = ("import socket\n"
            "for op in ('bind', 'connect'):\n"
            "    s = socket.socket()\n"
            "    try:\n"
            "        getattr(s, op)(('127.0.0.1', 8080)); print(op, 'ok')\n"
            "    except OSError as e: print(op, e.errno)\n")
    result = run_sandboxed(["python3", "-c", code], EGRESS)
    assert result.stdout == b"bind 13\nconnect 13\n"  # EACCES, not EADDRINUSE/ECONNREFUSED
