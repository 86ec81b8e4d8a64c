"""The real gateway over streamable HTTP, driven by the SDK's own HTTP client.

The gateway runs as a subprocess (`warrant gateway --config ... --listen
127.0.0.1:PORT`) in front of the published `mcp-server-time`. Each request
carries the caller's credential and warrant in headers and, for a call, a proof
of possession signed with the agent's key over that exact call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
import mcp_types as types
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.gateway._cli import command_prefix
from tests.gateway.conftest import ROOT, SESSION_TIMEOUT_S, World, run, write_config
from warrant import identity, warrants
from warrant.audit import AuditRecord
from warrant.enforce import TrustDomain
from warrant.gateway import WarrantHttpAuth
from warrant.gateway._http import (
    PROOF_HEADER,
    WARRANT_HEADER,
    Listen,
    bind_socket,
    request_headers,
)

#: Bound on the gateway coming up (it starts the time server first).
READY_TIMEOUT_S = 30
#: Small enough that a test can exceed it cheaply.
MAX_REQUEST_BYTES = 20_000
#: What the SDK client sends; a raw request must say the same.
POST_HEADERS = {"Content-Type": "application/json",
                "Accept": "application/json, text/event-stream"}


@dataclass
class Tokens:
    """The agent's credential, warrant and key, as a client holds them."""

    credential: str
    warrant: str
    key: Ed25519PrivateKey

    @classmethod
    def of(cls, world: World) -> Tokens:
        return cls(credential=world.credential.read_text(encoding="utf-8"),
                   warrant=world.warrant.read_text(encoding="utf-8"),
                   key=identity.read_private_key(world.key))

    def headers(self, body: bytes) -> dict[str, str]:
        return request_headers(body, credential=self.credential, warrant=self.warrant,
                               agent_key=self.key)


class WarrantAuth(httpx2.Auth):
    """Signs every request the SDK client sends: tokens always, a fresh proof per call."""

    requires_request_body = True

    def __init__(self, tokens: Tokens, *, prove: bool = True):
        self.tokens, self.prove = tokens, prove

    def auth_flow(
            self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        headers = self.tokens.headers(request.content)
        if not self.prove:
            headers.pop(PROOF_HEADER, None)
        request.headers.update(headers)
        yield request


@dataclass
class HttpClient:
    session: ClientSession

    async def tool_names(self) -> set[str]:
        return {t.name for t in (await self.session.list_tools()).tools}

    async def call(self, name: str, **arguments: object) -> tuple[bool, str]:
        """(is_error, text of the first content block)."""
        result = await self.session.call_tool(name, dict(arguments))
        first = result.content[0] if result.content else None
        return result.is_error, first.text if isinstance(first, types.TextContent) else ""


@dataclass
class RunningGateway:
    url: str
    stderr: Path

    @asynccontextmanager
    async def client(self, auth: httpx2.Auth | None = None,
                     tls: ssl.SSLContext | None = None) -> AsyncIterator[HttpClient]:
        """An initialised MCP client session over streamable HTTP."""
        with anyio.fail_after(SESSION_TIMEOUT_S):
            async with httpx2.AsyncClient(auth=auth, verify=tls or True) as http, \
                    streamable_http_client(self.url, http_client=http) as (read, write), \
                    ClientSession(read, write) as session:
                await session.initialize()
                yield HttpClient(session)

    def post(self, message: dict[str, object], headers: dict[str, str] | None = None,
             content: bytes | None = None, tls: ssl.SSLContext | None = None) -> httpx2.Response:
        """One raw JSON-RPC POST (no SDK: the test controls every byte and header)."""
        body = content if content is not None else json.dumps(message).encode()
        return httpx2.post(self.url, content=body, headers={**POST_HEADERS, **(headers or {})},
                           timeout=SESSION_TIMEOUT_S, verify=tls or True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], stderr: Path) -> None:
    """Return once the gateway accepts connections; fail (with its stderr) after a bound."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the gateway exited early: {stderr.read_text(encoding='utf-8')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # the listener is not up yet: poll again, within the deadline
    pytest.fail(f"the gateway did not listen within {READY_TIMEOUT_S}s")


@contextmanager
def http_gateway(world: World, *options: str, **limits: object) -> Iterator[RunningGateway]:
    """The real gateway on a free loopback port in front of the time server."""
    config = write_config(world.config, ("time",), limits={
        "call_timeout_s": 5, "max_message_bytes": 200_000,
        "max_request_bytes": MAX_REQUEST_BYTES, **limits})
    with serve_over_http(world, config, *options) as gateway:
        yield gateway


@contextmanager
def serve_over_http(world: World, config: Path, *options: str) -> Iterator[RunningGateway]:
    """`warrant gateway --config CONFIG --listen` on a free loopback port, stopped after."""
    port = free_port()
    stderr = world.config.with_name("gateway.stderr")
    # No tokens in the environment: over HTTP they come with each request.
    env = world.env(WARRANT_CREDENTIAL_FILE=None, WARRANT_WARRANT_FILE=None,
                    WARRANT_AGENT_KEY_FILE=None)
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [*command_prefix(), "gateway", "--config", str(config),
             "--listen", f"127.0.0.1:{port}", *options],
            env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for_port(port, process, stderr)
        scheme = "https" if "--tls-cert" in options else "http"
        yield RunningGateway(url=f"{scheme}://127.0.0.1:{port}/mcp", stderr=stderr)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def call_message(name: str, request_id: int = 1, **arguments: object) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": name, "arguments": arguments}}


def call_result(response: httpx2.Response) -> tuple[bool, str]:
    """(is_error, first text) of a raw `tools/call` answer."""
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    return bool(result.get("isError")), result["content"][0]["text"]


def audit_records(world: World, count: int = 60) -> list[AuditRecord]:
    with TrustDomain.open(world.home) as domain:
        return [e.record for e in domain.audit.tail(count)]


def credential_detail(record: AuditRecord) -> str:
    """Why the credential was rejected, as the audit record (never the caller) says."""
    return str((record.detail or {}).get("credential", ""))


@pytest.mark.claim("gateway.enforces-pipeline")
def test_an_allowed_call_over_http_reaches_the_real_time_server(world: World) -> None:
    # What a user's client does: the public helper, from the token and key files.
    auth = WarrantHttpAuth.from_files(world.credential, world.warrant, world.key)

    async def body(gateway: RunningGateway) -> None:
        async with gateway.client(auth) as gw:
            for city in ("Paris", "Rome"):  # a fresh proof for each call
                is_error, text = await gw.call("time__get_current_time",
                                               timezone=f"Europe/{city}")
                assert not is_error, text
                assert f'"timezone": "Europe/{city}"' in text

    with http_gateway(world) as gateway:
        run(lambda: body(gateway))
    records = audit_records(world)
    decisions = [r for r in records if r.kind == "decision" and r.tool == "time/get_current_time"]
    assert [r.effect for r in decisions] == ["allow", "allow"]
    assert all(r.agent == world.agent_id for r in decisions)
    assert sum(r.kind == "outcome" and r.tool == "time/get_current_time" for r in records) == 2


@pytest.mark.claim("gateway.least-privilege-discovery")
def test_tools_outside_the_warrant_are_hidden_over_http(world: World) -> None:
    async def body(gateway: RunningGateway) -> None:
        async with gateway.client(WarrantAuth(Tokens.of(world))) as gw:
            names = await gw.tool_names()
            assert "time__get_current_time" in names
            assert "time__convert_time" not in names  # not granted
            is_error, text = await gw.call("time__convert_time", source_timezone="UTC",
                                           time="12:00", target_timezone="Europe/Paris")
            assert is_error
            assert "not granted by the warrant" in text

    with http_gateway(world) as gateway:
        run(lambda: body(gateway))


@pytest.mark.claim("gateway.fail-closed")
def test_without_headers_nothing_is_listed_and_every_call_is_denied(world: World) -> None:
    async def body(gateway: RunningGateway) -> None:
        async with gateway.client() as gw:
            assert await gw.tool_names() == set()
            is_error, text = await gw.call("time__get_current_time", timezone="Europe/Paris")
            assert is_error
            assert text == "denied: credential rejected"

    with http_gateway(world) as gateway:
        run(lambda: body(gateway))
    refused = [r for r in audit_records(world) if r.tool == "gateway.call-refused"]
    assert refused and refused[-1].detail is not None
    assert refused[-1].detail["reason"] == "no authenticated session"


@pytest.mark.claim("gateway.fail-closed")
@pytest.mark.claim("gateway.http-proof-of-possession")
def test_a_call_without_proof_of_possession_is_denied_with_a_reason(world: World) -> None:
    async def body(gateway: RunningGateway) -> None:
        async with gateway.client(WarrantAuth(Tokens.of(world), prove=False)) as gw:
            # Tokens alone still show what the warrant grants ...
            assert "time__get_current_time" in await gw.tool_names()
            # ... but a stolen credential and warrant cannot call anything.
            is_error, text = await gw.call("time__get_current_time", timezone="Europe/Paris")
            assert is_error
            assert text.startswith("denied: credential rejected (decision ")

    with http_gateway(world) as gateway:
        run(lambda: body(gateway))
    denied = [r for r in audit_records(world) if r.kind == "decision"]
    assert denied[-1].effect == "deny"
    assert credential_detail(denied[-1]) == "no proof of possession with the request"


@pytest.mark.claim("gateway.fail-closed")
@pytest.mark.claim("gateway.http-proof-of-possession")
def test_a_replayed_proof_is_denied(world: World) -> None:
    tokens = Tokens.of(world)
    message = call_message("time__get_current_time", timezone="Europe/Paris")
    body = json.dumps(message).encode()
    headers = tokens.headers(body)
    with http_gateway(world) as gateway:
        is_error, text = call_result(gateway.post(message, headers, content=body))
        assert not is_error, text
        is_error, text = call_result(gateway.post(message, headers, content=body))
        assert is_error
        assert text.startswith("denied: credential rejected")
    decisions = [r for r in audit_records(world) if r.kind == "decision"]
    assert [r.effect for r in decisions[-2:]] == ["allow", "deny"]
    assert credential_detail(decisions[-1]) == "proof replayed"


@pytest.mark.claim("gateway.fail-closed")
@pytest.mark.claim("gateway.http-proof-of-possession")
def test_a_proof_for_other_arguments_or_from_another_key_is_denied(world: World) -> None:
    with TrustDomain.open(world.home) as domain:
        _, other_key = domain.register_agent("other", owner="ops", purpose="impostor")
    assert other_key is not None
    tokens = Tokens.of(world)
    stolen = Tokens(credential=tokens.credential, warrant=tokens.warrant,
                    key=identity.read_private_key(other_key))
    paris = call_message("time__get_current_time", timezone="Europe/Paris")
    rome = call_message("time__get_current_time", timezone="Europe/Rome")
    with http_gateway(world) as gateway:
        # A proof signed for Paris does not carry a call for Rome.
        is_error, text = call_result(gateway.post(rome, tokens.headers(
            json.dumps(paris).encode())))
        assert is_error and "credential rejected" in text
        # The right call signed with a key the credential does not confirm.
        is_error, text = call_result(gateway.post(rome, stolen.headers(
            json.dumps(rome).encode())))
        assert is_error and "credential rejected" in text
    details = [credential_detail(r) for r in audit_records(world) if r.kind == "decision"]
    assert "`args` differs" in details[-2]
    assert "proof signature invalid" in details[-1]


@pytest.mark.claim("gateway.fail-closed")
def test_malformed_headers_get_a_clear_401(world: World) -> None:
    tokens = Tokens.of(world)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    cases = {
        "`X-Warrant` is missing": {"Authorization": f"Bearer {tokens.credential}"},
        "`Authorization` is missing": {WARRANT_HEADER: tokens.warrant},
        "`Bearer` scheme": {"Authorization": f"Basic {tokens.credential}",
                            WARRANT_HEADER: tokens.warrant},
        "does not hold a token": {"Authorization": "Bearer not a token",
                                  WARRANT_HEADER: tokens.warrant},
    }
    with http_gateway(world) as gateway:
        for expected, headers in cases.items():
            response = gateway.post(ping, headers)
            assert response.status_code == 401, (expected, response.text)
            assert response.headers["content-type"] == "application/json"
            assert response.json()["error"] == "invalid_request"
            assert expected in response.json()["error_description"]
            assert response.headers["www-authenticate"].startswith("Bearer")
    rejected = [r for r in audit_records(world) if r.tool == "gateway.http-rejected"]
    assert len(rejected) == len(cases)


def test_an_event_stream_is_refused_at_once_not_held_open(world: World) -> None:
    # Stateless: no session could ever send on it, and each one held open would tie up
    # a connection for nothing (anonymous callers included).
    with http_gateway(world) as gateway:
        for headers in ({}, Tokens.of(world).headers(b"")):
            response = httpx2.get(gateway.url, headers={
                "Accept": "text/event-stream", **headers}, timeout=SESSION_TIMEOUT_S)
            assert response.status_code == 405
            assert response.headers["allow"] == "POST"
            assert "send MCP requests by POST" in response.json()["error_description"]
        # ... and MCP over POST is served as before.
        async def listed() -> None:
            async with gateway.client(WarrantAuth(Tokens.of(world))) as gw:
                assert "time__get_current_time" in await gw.tool_names()

        run(listed)


def test_an_oversized_request_body_is_refused_with_413(world: World) -> None:
    tokens = Tokens.of(world)
    message = call_message("time__get_current_time", timezone="Europe/Paris",
                           padding="x" * MAX_REQUEST_BYTES)
    body = json.dumps(message).encode()
    with http_gateway(world) as gateway:
        response = gateway.post(message, tokens.headers(body), content=body)
        assert response.status_code == 413
        # The gateway keeps serving.
        small = call_message("time__get_current_time", timezone="Europe/Paris")
        assert not call_result(gateway.post(small, tokens.headers(
            json.dumps(small).encode())))[0]


def test_plain_http_on_a_non_loopback_address_is_refused(world: World) -> None:
    config = write_config(world.config, ("time",))
    done = subprocess.run([*command_prefix(), "gateway", "--config", str(config),
                           "--listen", "0.0.0.0:8765"],
                          env=world.env(), cwd=ROOT, capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 2, done.stderr
    assert "refusing to serve plain HTTP on `0.0.0.0`" in done.stderr
    assert "--tls-cert" in done.stderr
    assert "Traceback" not in done.stderr


def server_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the gateway's own TLS identity)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "warrant gateway test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_with_mtls_only_a_client_certificate_from_the_domain_ca_connects(world: World) -> None:
    cert, key = server_certificate(world.config.parent)
    with TrustDomain.open(world.home) as domain:
        client_cert = world.config.with_name("bot.pem")
        client_cert.write_bytes(domain.issue_certificate("bot"))
    with_cert = ssl.create_default_context(cafile=str(cert))
    with_cert.load_cert_chain(client_cert, world.key)
    without_cert = ssl.create_default_context(cafile=str(cert))
    foreign_cert = ssl.create_default_context(cafile=str(cert))
    foreign_cert.load_cert_chain(cert, key)  # self-signed: not from the domain CA

    async def body(gateway: RunningGateway) -> None:
        async with gateway.client(WarrantAuth(Tokens.of(world)), tls=with_cert) as gw:
            is_error, text = await gw.call("time__get_current_time", timezone="Europe/Paris")
            assert not is_error, text

    with http_gateway(world, "--tls-cert", str(cert), "--tls-key", str(key), "--mtls") as gw:
        run(lambda: body(gw))
        # Without a client certificate from the domain CA the TLS connection is refused.
        for context in (without_cert, foreign_cert):
            with pytest.raises(httpx2.TransportError):
                httpx2.post(gw.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                            headers=POST_HEADERS, verify=context, timeout=SESSION_TIMEOUT_S)


def test_connections_to_the_http_gateway_are_sent_without_nagle_delay() -> None:
    """Each answer is two writes (headers, body); with Nagle on, the body waited ~40 ms."""
    sock = bind_socket(Listen.parse("127.0.0.1:0"))
    seen: list[int] = []

    async def main() -> None:
        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            server_side = writer.get_extra_info("socket")
            seen.append(server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname())
            with anyio.fail_after(10):
                while not seen:
                    await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(main())
    assert seen == [1]


@dataclass
class Agent:
    """An agent of the world's domain, with its tokens and an mTLS client certificate."""

    agent_id: str
    tokens: Tokens
    tls: ssl.SSLContext


def mtls_agent(world: World, name: str, server_cert: Path) -> Agent:
    """`bot` (the world's agent) or a new agent with the same grant, and its certificate."""
    with TrustDomain.open(world.home) as domain:
        if name == "bot":
            agent_id, tokens, key_file = world.agent_id, Tokens.of(world), world.key
        else:
            record, new_key = domain.register_agent(name, owner="ops", purpose="tells the time")
            assert new_key is not None
            _, warrant = domain.mint(
                agent=name, task="tell the time", on_behalf_of="user:alice",
                tools=[warrants.parse_tool_spec("time/get_current_time:timezone^=Europe/")])
            agent_id, key_file = record.agent_id, new_key
            tokens = Tokens(credential=domain.issue_credential(name).token, warrant=warrant,
                            key=identity.read_private_key(new_key))
        cert_file = world.config.with_name(f"{name}.pem")
        cert_file.write_bytes(domain.issue_certificate(name))
    context = ssl.create_default_context(cafile=str(server_cert))
    context.load_cert_chain(cert_file, key_file)
    return Agent(agent_id=agent_id, tokens=tokens, tls=context)


@pytest.mark.claim("identity.mtls")
def test_with_mtls_a_credential_is_accepted_only_over_its_own_agents_certificate(
        world: World) -> None:
    cert, key = server_certificate(world.config.parent)
    bot, other = mtls_agent(world, "bot", cert), mtls_agent(world, "other", cert)
    paris = call_message("time__get_current_time", timezone="Europe/Paris")
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}

    def post(gateway: RunningGateway, message: dict[str, object], tokens: Tokens,
             tls: ssl.SSLContext) -> httpx2.Response:
        body = json.dumps(message).encode()
        return gateway.post(message, tokens.headers(body), content=body, tls=tls)

    with http_gateway(world, "--tls-cert", str(cert), "--tls-key", str(key), "--mtls") as gw:
        # Each agent over its own certificate: both sets of tokens are good.
        for agent in (bot, other):
            is_error, text = call_result(post(gw, paris, agent.tokens, agent.tls))
            assert not is_error, text
        # Bot's certificate carrying other's tokens: refused, calls and listing alike,
        # and told no more than any rejected credential is.
        for message in (paris, listing):
            response = post(gw, message, other.tokens, bot.tls)
            assert response.status_code == 401, response.text
            assert response.json() == {"error": "invalid_token",
                                       "error_description": "credential rejected"}
            assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        # Bot's own tokens still pass over its certificate.
        assert call_result(post(gw, paris, bot.tokens, bot.tls))[0] is False
    records = audit_records(world, 200)
    refused = [r.detail for r in records if r.tool == "gateway.http-rejected"]
    assert len(refused) == 2
    for detail in refused:
        assert detail is not None
        assert detail["reason"] == "client certificate does not name the credential's agent"
        assert detail["certificate"] == bot.agent_id
        assert detail["credential_subject"] == other.agent_id
    decisions = [r for r in records if r.kind == "decision"]
    assert [(r.agent, r.effect) for r in decisions] == [
        (bot.agent_id, "allow"), (other.agent_id, "allow"), (bot.agent_id, "allow")]


@pytest.mark.claim("gateway.fail-closed")
def test_a_flood_of_malformed_requests_is_refused_and_audited_in_bounded_records(
        world: World) -> None:
    flood = 200
    statuses: list[int] = []
    answered: list[tuple[bool, str]] = []
    ping = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()

    async def body(gateway: RunningGateway) -> None:
        done = anyio.Event()

        async def malformed(http: httpx2.AsyncClient, limit: anyio.Semaphore) -> None:
            async with limit:
                response = await http.post(gateway.url, content=ping, headers={
                    **POST_HEADERS, "Authorization": "Basic bm90OnRoaXM=", WARRANT_HEADER: "w"})
                statuses.append(response.status_code)

        async def burst() -> None:
            limit = anyio.Semaphore(16)
            async with httpx2.AsyncClient(timeout=SESSION_TIMEOUT_S) as http, \
                    anyio.create_task_group() as tasks:
                for _ in range(flood):
                    tasks.start_soon(malformed, http, limit)
            done.set()

        async with gateway.client(WarrantAuth(Tokens.of(world))) as gw, \
                anyio.create_task_group() as tasks:
            tasks.start_soon(burst)
            while not done.is_set() or not answered:  # a valid caller, all through the flood
                answered.append(await gw.call("time__get_current_time",
                                              timezone="Europe/Paris"))

    with http_gateway(world) as gateway:
        run(lambda: body(gateway))
    # Every malformed request was refused; every valid call answered.
    assert statuses == [401] * flood
    assert answered and all(not is_error for is_error, _ in answered), answered
    # After shutdown (the last window's summary is written then), the audit log holds
    # a few records in full and counts for the rest: nothing lost, nothing unbounded.
    records = audit_records(world, 4 * flood + 6 * len(answered))
    full = [r.detail for r in records if r.tool == "gateway.http-rejected"]
    summaries = [r.detail for r in records if r.tool == "gateway.http-rejected-summary"]
    assert 1 <= len(summaries) <= 3  # one per 60 s window the flood spanned
    assert len(full) <= 5 * len(summaries)
    suppressed = sum(int(s["suppressed"]) for s in summaries if s is not None)
    assert len(full) + suppressed == flood
    for summary in summaries:
        assert summary is not None and summary["client"] == "127.0.0.1"
        assert sum(summary["reasons"].values()) == summary["suppressed"]
        assert list(summary["reasons"]) == ["`Authorization` must use the `Bearer` scheme"]
