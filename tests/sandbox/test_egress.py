"""The egress allowlist: traffic leaves only through Warrant's proxy, which lets through the
listed hosts and reports every connection; nothing else is reachable. Loopback only."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from warrant.sandbox import (
    EgressRecord,
    SandboxError,
    SandboxLimits,
    SandboxProfile,
    run_sandboxed,
    sandboxed_command,
)
from warrant.sandbox._landlock import status


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello from the allowed host"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def allowed_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def other_service() -> Iterator[socket.socket]:
    """A host service on 127.0.0.1 that is NOT on the allowlist (stands in for PostgreSQL)."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.setblocking(False)
        yield sock


def profile(*hosts: str) -> SandboxProfile:
    return SandboxProfile(name="egress-test", network="egress-allowlist", allowed_hosts=hosts,
                          limits=SandboxLimits(timeout_seconds=15.0))


def never_connected(sock: socket.socket) -> bool:
    try:
        sock.accept()[0].close()
    except BlockingIOError:
        return True
    return False


@pytest.mark.claim("sandbox.no-network")
def test_python_urllib_reaches_a_listed_host_and_the_connection_is_reported(
        allowed_port: int) -> None:
    seen: list[EgressRecord] = []
    result = run_sandboxed(["python3", "-c", "import urllib.request as u; print(u.urlopen("
                            f"'http://127.0.0.1:{allowed_port}/', timeout=10).read().decode())"],
                           profile(f"127.0.0.1:{allowed_port}"), on_egress=seen.append)
    assert result.ok, result.stderr
    assert result.stdout == b"hello from the allowed host\n"
    assert [(r.host, r.port, r.allowed) for r in seen] == [("127.0.0.1", allowed_port, True)]
    assert result.egress == tuple(seen) and result.violations == ()


@pytest.mark.claim("sandbox.no-network")
def test_curl_tunnels_with_connect_to_a_listed_host(allowed_port: int) -> None:
    result = run_sandboxed(["curl", "-fsS", "-m", "10", "--proxytunnel",
                            f"http://127.0.0.1:{allowed_port}/"],
                           profile(f"127.0.0.1:{allowed_port}"))
    assert result.ok, result.stderr
    assert result.stdout == b"hello from the allowed host"
    assert [(r.method, r.allowed) for r in result.egress] == [("CONNECT", True)]


@pytest.mark.claim("sandbox.no-network")
@pytest.mark.parametrize("how", ["proxy", "curl-connect", "direct"])
def test_an_unlisted_loopback_service_is_unreachable_and_the_refusal_recorded(
        allowed_port: int, other_service: socket.socket, how: str) -> None:
    port = other_service.getsockname()[1]
    seen: list[EgressRecord] = []
    argv = {
        "proxy": ["python3", "-c", "import urllib.request as u; "
                  f"u.urlopen('http://127.0.0.1:{port}/', timeout=10)"],
        "curl-connect": ["curl", "-fsS", "-m", "10", "--proxytunnel", f"http://127.0.0.1:{port}/"],
        "direct": ["python3", "-c", f"import socket; socket.create_connection(('127.0.0.1', "
                   f"{port}), 5)"],
    }[how]
    result = run_sandboxed(argv, profile(f"127.0.0.1:{allowed_port}"), on_egress=seen.append)
    assert result.exit_code != 0
    assert never_connected(other_service)
    if how == "direct":
        # No proxy involved: the sandbox's own loopback has nothing there, and Landlock
        # refuses the connect outright where the kernel has it.
        assert seen == []
        expected = b"PermissionError" if status().applied else b"ConnectionRefusedError"
        assert expected in result.stderr
    else:
        assert [(r.host, r.port, r.allowed) for r in seen] == [("127.0.0.1", port, False)]
        assert "egress-blocked" in {v.kind for v in result.violations}


@pytest.mark.claim("sandbox.no-network")
@pytest.mark.parametrize("port", [5432, 6379])
def test_postgres_and_redis_ports_are_refused_through_the_proxy(allowed_port: int,
                                                                port: int) -> None:
    result = run_sandboxed(["curl", "-fsS", "-m", "10", "--proxytunnel",
                            f"http://127.0.0.1:{port}/"], profile(f"127.0.0.1:{allowed_port}"))
    assert result.exit_code != 0 and b"403" in result.stderr
    assert [(r.port, r.allowed) for r in result.egress] == [(port, False)]


@pytest.mark.claim("sandbox.no-network")
def test_names_are_resolved_outside_and_refused_when_they_point_inside(
        allowed_port: int) -> None:
    # `localhost` is listed, but a name resolving to loopback is a rebinding risk.
    result = run_sandboxed(["curl", "-fsS", "-m", "10", f"http://localhost:{allowed_port}/"],
                           profile(f"localhost:{allowed_port}"))
    assert result.exit_code != 0
    assert [r.allowed for r in result.egress] == [False]
    assert "non-public address" in result.egress[0].reason


@pytest.mark.claim("sandbox.no-network")
def test_dns_inside_the_sandbox_still_fails() -> None:
    result = run_sandboxed(["python3", "-c", "import socket; socket.getaddrinfo('example.com', "
                            "443)"], profile("example.com"))
    assert result.exit_code != 0 and b"gaierror" in result.stderr


@pytest.mark.claim("sandbox.fail-closed")
def test_a_connection_that_cannot_be_recorded_is_refused(allowed_port: int) -> None:
    def broken_audit(record: EgressRecord) -> None:
        raise OSError("audit log unavailable")

    result = run_sandboxed(["curl", "-fsS", "-m", "10", f"http://127.0.0.1:{allowed_port}/"],
                           profile(f"127.0.0.1:{allowed_port}"), on_egress=broken_audit)
    assert result.exit_code != 0 and b"hello" not in result.stdout
    assert [r.allowed for r in result.egress] == [False]
    assert "not recorded" in result.egress[0].reason


def test_the_proxy_decides_by_host_and_port() -> None:
    from warrant.sandbox._egress import EgressProxy

    proxy = EgressProxy(["api.example.com", "*.pypi.org:443", "10.0.0.5:5432"])
    allowed = {(h, p): proxy.decide(h, p, "CONNECT").allowed for h, p in [
        ("api.example.com", 443), ("api.example.com", 80), ("api.example.com", 22),
        ("API.example.com.", 443), ("files.pypi.org", 443), ("pypi.org", 443),
        ("evilpypi.org", 443), ("10.0.0.5", 5432), ("10.0.0.5", 5433)]}
    assert [k for k, v in allowed.items() if v] == [
        ("api.example.com", 443), ("api.example.com", 80), ("API.example.com.", 443),
        ("files.pypi.org", 443), ("10.0.0.5", 5432)]


def test_long_running_servers_refuse_a_network_profile_without_an_audit_hook() -> None:
    with pytest.raises(SandboxError, match="needs an audit hook for its egress proxy"):
        sandboxed_command(["/bin/true"], profile("example.com"))
