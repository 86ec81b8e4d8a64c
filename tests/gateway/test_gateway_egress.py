"""A stdio server under `sandbox = "egress-allowlist"` behind the real gateway, called by a
real MCP client: it reaches the one listed host through the gateway's egress proxy, nothing
else (a listed-looking neighbour, a raw socket), and every connection is in the audit log."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway._cli import command_prefix
from tests.gateway.conftest import ROOT, SESSION_TIMEOUT_S, World, run
from tests.gateway.test_gateway_sandbox import gateway, make_world, write_config
from warrant.enforce import TrustDomain

FETCH = Path(__file__).with_name("fetch_server.py")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the egress proxy of a stdio server "
                                "is placed in its network namespace, which needs root")


class _Reply(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.body  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _http_server(body: bytes) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Reply)
    server.body = body  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def allowed_port() -> Iterator[int]:
    yield from _http_server(b"hello from the allowed host")


@pytest.fixture
def other_port() -> Iterator[int]:
    """A host that answers whoever reaches it: only the proxy keeps it out of reach."""
    yield from _http_server(b"internal secret")


def egress_world(tmp_path: Path, hosts: list[str]) -> tuple[World, Path]:
    world = make_world(tmp_path, strict=True, grants=("fetch/fetch", "fetch/connect"))
    listed = ", ".join(f'"{h}"' for h in hosts)
    (world.home / "sandbox.toml").write_text(
        f'[profile.egress-allowlist]\nnetwork = "egress-allowlist"\nallowed_hosts = [{listed}]\n',
        encoding="utf-8")
    config = write_config(world, fetch={"command": [sys.executable, str(FETCH)],
                                        "sandbox": "egress-allowlist"})
    return world, config


def audit_details(home: Path, tool: str) -> list[dict[str, object]]:
    with TrustDomain.open(home) as domain:
        return [dict(e.record.detail or {}) for e in domain.audit.tail(500)
                if e.record.tool == tool]


@pytest.mark.claim("sandbox.no-network")
def test_a_stdio_server_reaches_only_its_listed_host_and_every_connection_is_audited(
        tmp_path: Path, allowed_port: int, other_port: int) -> None:
    world, config = egress_world(tmp_path, [f"127.0.0.1:{allowed_port}"])
    answers: dict[str, str] = {}

    async def body() -> None:
        async with gateway(world, config, tmp_path / "gateway.err") as gw:
            for name, tool, arguments in (
                    ("allowed", "fetch__fetch", {"url": f"http://127.0.0.1:{allowed_port}/"}),
                    ("other", "fetch__fetch", {"url": f"http://127.0.0.1:{other_port}/"}),
                    ("raw", "fetch__connect", {"host": "127.0.0.1", "port": allowed_port})):
                is_error, text = await gw.call(tool, **arguments)
                assert not is_error, text
                answers[name] = text

    run(body)
    assert answers["allowed"] == "ok: hello from the allowed host", answers
    assert answers["other"].startswith("blocked: HTTP 403"), answers
    assert "not in the allowlist" in answers["other"]
    # Around the proxy there is nothing: the server's own loopback, and Landlock.
    assert answers["raw"].startswith("blocked:"), answers

    egress = audit_details(world.home, "sandbox.egress")
    assert [(e["host"], e["port"], e["allowed"], e["server"]) for e in egress] == [
        ("127.0.0.1", allowed_port, True, "fetch"), ("127.0.0.1", other_port, False, "fetch")]
    violations = audit_details(world.home, "sandbox.violation")
    assert [(v["kind"], v["server"]) for v in violations] == [("egress-blocked", "fetch")]
    assert f"127.0.0.1:{other_port}" in str(violations[0]["detail"])


def test_without_a_listed_host_the_builtin_egress_profile_reaches_nothing(
        tmp_path: Path, allowed_port: int) -> None:
    world = make_world(tmp_path, strict=True, grants=("fetch/fetch",))
    config = write_config(world, fetch={"command": [sys.executable, str(FETCH)],
                                        "sandbox": "egress-allowlist"})
    texts: list[str] = []

    async def body() -> None:
        async with gateway(world, config, tmp_path / "gateway.err") as gw:
            texts.append((await gw.call("fetch__fetch",
                                        url=f"http://127.0.0.1:{allowed_port}/"))[1])

    run(body)
    assert texts[0].startswith("blocked: HTTP 403") and "allowlist (nothing)" in texts[0]
    assert [e["allowed"] for e in audit_details(world.home, "sandbox.egress")] == [False]


@pytest.mark.claim("sandbox.fail-closed")
def test_a_domain_profile_file_that_does_not_parse_stops_the_gateway(tmp_path: Path) -> None:
    world, config = egress_world(tmp_path, ["127.0.0.1:1"])
    (world.home / "sandbox.toml").write_text('[profile.egress-allowlist]\nnetwrk = "none"\n',
                                             encoding="utf-8")
    done = subprocess.run([*command_prefix(), "gateway", "--config", str(config)],
                          env=world.env(), cwd=ROOT, capture_output=True, text=True,
                          timeout=SESSION_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode != 0
    assert "netwrk" in done.stderr and "Traceback" not in done.stderr

