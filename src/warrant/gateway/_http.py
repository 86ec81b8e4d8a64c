"""Downstream streamable HTTP: the gateway serving many MCP clients at `/mcp`.

`warrant gateway --config FILE --listen 127.0.0.1:8765` serves the same
`Gateway` as stdio, over the SDK's streamable HTTP transport (stateless: every
request stands alone, so every request authenticates). Each request carries
the caller's tokens in headers:

    Authorization:   Bearer <credential>
    X-Warrant:       <warrant token>
    X-Warrant-Proof: <proof of possession>   (with each `tools/call`)

The proof is `identity.make_proof` over the exact call (qualified tool name
`SERVER/TOOL`, argument digest), the credential and the warrant, with a fresh
nonce: `request_headers` makes all three headers from a request body.

Headers are parsed once, here at the edge, into a frozen `Presented` value that
rides in the ASGI scope to the MCP handlers; the pipeline's Authenticate stage
verifies it on each call (nothing here decides). No tokens at all is an
anonymous caller: nothing is listed and every call is denied "credential
rejected" (audited). Tokens that cannot even be read (a bad scheme, a repeated
header, one token without the other) are a 401 with a JSON body saying which.
Bodies over `limits.max_request_bytes` are a 413 before anything parses them.
Refusals at this edge are audited through `_ratelimit.AuditThrottle`: a flood of
them is still refused request by request, but audited a few records in full
per client address and window, then counted in one summary record.

Plain HTTP is served on loopback only; any other address needs `--tls-cert`
and `--tls-key`. `--mtls` additionally requires a client certificate issued by
the domain's CA, and binds it to the caller: a request whose credential names
another agent than its connection's certificate (`_mtls`) is a 401 "credential
rejected", the two identities going to the audit record only. The credential's
subject is read here unverified; that suffices, because the pipeline (and
listing) verifies that same token before it grants anything, so a request that
gets through names one agent in certificate and verified credential alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import re
import socket
import ssl
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from warrant import identity
from warrant.errors import ConfigError
from warrant.types import ToolCall

from ._auth import REJECTED
from ._catalogue import split_exposed_name
from ._mtls import connection_certificate, protocol_reading_certificates, read_client_certificate
from ._ratelimit import AuditThrottle
from ._resources import call_for_request
from ._server import PRESENTED_SCOPE_KEY, Gateway, Presented

log = logging.getLogger("warrant.gateway")

#: The one path MCP is served on.
MCP_PATH = "/mcp"
WARRANT_HEADER = "X-Warrant"
PROOF_HEADER = "X-Warrant-Proof"
#: RFC 7235 token68: what base64, base64url and JWTs are made of.
_TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
#: Per header, generous for the tokens Warrant issues and small enough to bound parsing.
_MAX_LENGTH = {"authorization": 8192, "x-warrant": 32768, "x-warrant-proof": 4096}
#: All request headers together (uvicorn's h11 limit on an incomplete request head).
MAX_HEADER_BYTES = 64 * 1024
DEFAULT_PORT = 8765


class MalformedHeadersError(ValueError):
    """The request's Warrant headers cannot be read; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Listen:
    """Where and how `--listen` serves: validated by `Listen.parse`."""

    host: str
    port: int
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: Require a client certificate from the domain's CA.
    mtls: bool = False

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def loopback(self) -> bool:
        return _is_loopback(self.host)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{MCP_PATH}"

    @classmethod
    def parse(cls, text: str, *, tls_cert: Path | None = None, tls_key: Path | None = None,
              mtls: bool = False) -> Listen:
        """`HOST:PORT`, `[V6]:PORT` or `PORT` (on 127.0.0.1); raises `ConfigError`."""
        host, port_text = "127.0.0.1", text.strip()
        if ":" in port_text:
            host, _, port_text = port_text.rpartition(":")
            host = host.removeprefix("[").removesuffix("]")
        if not host or not port_text.isdigit() or int(port_text) > 65535:
            raise ConfigError(f"`--listen {text}` must be HOST:PORT, e.g. 127.0.0.1:{DEFAULT_PORT}")
        if (tls_cert is None) != (tls_key is None):
            raise ConfigError("`--tls-cert` and `--tls-key` go together")
        listen = cls(host=host, port=int(port_text), tls_cert=tls_cert, tls_key=tls_key,
                     mtls=mtls)
        if mtls and not listen.tls:
            raise ConfigError("`--mtls` needs `--tls-cert` and `--tls-key`")
        if not listen.loopback and not listen.tls:
            raise ConfigError(
                f"refusing to serve plain HTTP on `{host}`: tokens would cross the network "
                "in clear text", hint="bind 127.0.0.1, or give --tls-cert and --tls-key")
        return listen


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- the edge: headers → Presented -----------------------------------------------------------

def parse_presented(headers: list[tuple[bytes, bytes]]) -> Presented | None:
    """The tokens a request presents, None when it presents none; raises `MalformedHeadersError`."""
    found: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        if name not in _MAX_LENGTH:
            continue
        if name in found:
            raise MalformedHeadersError(f"`{name}` is given more than once")
        try:
            value = raw_value.decode("ascii").strip()
        except UnicodeDecodeError:
            raise MalformedHeadersError(f"`{name}` is not ASCII") from None
        if len(value) > _MAX_LENGTH[name]:
            raise MalformedHeadersError(f"`{name}` is longer than {_MAX_LENGTH[name]} characters")
        found[name] = value
    if not found:
        return None
    authorization, warrant = found.get("authorization"), found.get("x-warrant")
    if authorization is None or warrant is None:
        missing = "Authorization" if authorization is None else WARRANT_HEADER
        raise MalformedHeadersError(f"`{missing}` is missing: a request presents a credential "
                               f"(`Authorization: Bearer ...`) and a warrant (`{WARRANT_HEADER}`) "
                               "together, or neither")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer":
        raise MalformedHeadersError("`Authorization` must use the `Bearer` scheme")
    credential = credential.strip()
    proof = found.get("x-warrant-proof")
    for header, token in (("Authorization", credential), (WARRANT_HEADER, warrant),
                          (PROOF_HEADER, proof)):
        if token is not None and not _TOKEN.match(token):
            raise MalformedHeadersError(f"`{header}` does not hold a token")
    return Presented(credential=credential, warrant=warrant, proof=proof)


def request_headers(body: bytes, *, credential: str, warrant: str,
                    agent_key: Ed25519PrivateKey, now: float | None = None) -> dict[str, str]:
    """The Warrant headers for one HTTP request to the gateway whose JSON body is `body`.

    A `tools/call`, `resources/read` or `prompts/get` gets a fresh proof of
    possession over the exact call the gateway decides; anything else carries
    the tokens only.
    """
    headers = {"Authorization": f"Bearer {credential}", WARRANT_HEADER: warrant}
    call = _tool_call(body)
    if call is not None:
        headers[PROOF_HEADER] = identity.make_proof(
            agent_key, credential_token=credential, tool=call.qualified_name,
            argument_digest=call.argument_digest(), warrant_token=warrant,
            now=time.time() if now is None else now)
    return headers


def _tool_call(body: bytes) -> ToolCall | None:
    """The call a JSON-RPC body asks for, as the gateway will decide it (else None).

    `tools/call` is the named tool; `resources/read` and `prompts/get` are their
    server's pseudo-tools (`_resources.call_for_request`).
    """
    try:
        message: Any = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError, RecursionError):  # nesting beyond the parser
        return None
    params = message.get("params") if isinstance(message, Mapping) else None
    if not isinstance(params, Mapping):
        return None
    method = message.get("method")
    try:
        if method in ("resources/read", "prompts/get"):
            return call_for_request(str(method), params)
        name = params.get("name")
        parts = split_exposed_name(name) if isinstance(name, str) else None
        if method != "tools/call" or parts is None:
            return None
        return ToolCall(tool=parts[1], server=parts[0], arguments=params.get("arguments") or {})
    except (TypeError, ValueError, RecursionError):
        return None


# -- the ASGI app ----------------------------------------------------------------------------

class GatewayHttpApp:
    """Reads each request's Warrant headers (and, with mTLS, binds them to the
    connection's client certificate), then hands it to the SDK's transport."""

    def __init__(self, gateway: Gateway, manager: StreamableHTTPSessionManager, *,
                 mtls: bool = False, throttle: AuditThrottle | None = None):
        self._gateway = gateway
        self._manager = manager
        self._mtls = mtls
        self.throttle = throttle or AuditThrottle(gateway.domain.record_admin)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan is off; websockets are not served
            return
        if scope["path"].rstrip("/") != MCP_PATH:
            await _json(send, 404, {"error": "not_found",
                                    "error_description": f"MCP is served at `{MCP_PATH}`"})
            return
        if scope["method"] == "GET":
            # Stateless: no session, so nothing could ever be sent on an event stream,
            # and an idle stream held open per request is a free way to tie up the
            # gateway. MCP's streamable HTTP lets a server answer 405 instead.
            await _json(send, 405, {"error": "method_not_allowed", "error_description":
                                    "this gateway is stateless and opens no event stream; "
                                    "send MCP requests by POST"},
                        extra=[(b"allow", b"POST")])
            return
        try:
            presented = parse_presented(scope["headers"])
        except MalformedHeadersError as exc:
            self._reject(scope, {"reason": str(exc)})
            await _json(send, 401, {"error": "invalid_request", "error_description": str(exc)},
                        extra=[(b"www-authenticate", b'Bearer error="invalid_request"')])
            return
        if self._mtls:
            mismatch = certificate_mismatch(scope, presented)
            if mismatch is not None:
                self._reject(scope, mismatch)
                # As any other credential failure: no detail to the caller (no oracle).
                await _json(send, 401, {"error": "invalid_token", "error_description": REJECTED},
                            extra=[(b"www-authenticate", b'Bearer error="invalid_token"')])
                return
        if presented is not None:
            scope = {**scope, PRESENTED_SCOPE_KEY: presented}
        await self._manager.handle_request(scope, receive, send)

    def _reject(self, scope: Scope, detail: Mapping[str, Any]) -> None:
        """Audit a refusal at the edge (bounded per client address: `AuditThrottle`)."""
        client = scope.get("client")
        self.throttle.rejected(str(client[0]) if client else None,
                               {**detail, "client": _client(scope)})


def certificate_mismatch(scope: Scope, presented: Presented | None) -> dict[str, Any] | None:
    """Why this mTLS request's certificate and credential do not name one agent, else None.

    A request without tokens is anonymous (nothing is listed, every call denied)
    and binds nothing; its certificate must still be readable.
    """
    certificate = connection_certificate(scope)
    if certificate.error is not None or certificate.agent_id is None:
        return {"reason": f"client certificate refused: {certificate.error}"}
    if time.time() > certificate.not_after:  # a kept-alive connection outlives its certificate
        return {"reason": "client certificate expired", "certificate": certificate.agent_id}
    if presented is None:
        return None
    subject = credential_subject(presented.credential)
    if subject != certificate.agent_id:
        return {"reason": "client certificate does not name the credential's agent",
                "certificate": certificate.agent_id,
                # Unverified (the pipeline never saw it): what the credential claims.
                "credential_subject": subject[:300] if subject else None}
    return None


def credential_subject(token: str) -> str | None:
    """The agent a credential claims to be for (`sub`), unverified; None if unreadable."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except (jwt.InvalidTokenError, ValueError, TypeError, RecursionError):
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject if isinstance(subject, str) else None


async def _json(send: Send, status: int, body: Mapping[str, str],
                extra: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body).encode("utf-8")
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"), *(extra or [])]})
    await send({"type": "http.response.body", "body": payload})


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None


# -- serving ---------------------------------------------------------------------------------

class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises SIGINT/SIGTERM once it has shut down, which would end the
        # process before the gateway stops its upstreams and closes the domain.
        with super().capture_signals():
            yield
            self._captured_signals.clear()


def _security(listen: Listen) -> TransportSecuritySettings:
    """DNS-rebinding protection on loopback (a web page must not reach the gateway)."""
    if not listen.loopback:  # behind TLS the Host is a public name we cannot know here
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts,
        allowed_origins=[f"{scheme}://{host}" for scheme in ("http", "https") for host in hosts])


def _tls(config: uvicorn.Config, listen: Listen, ca_pem: bytes) -> None:
    """Load the TLS material now (a bad file is a clear startup error, not a crash later)."""
    try:
        config.load()
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS certificate `{listen.tls_cert}` or its key "
                          f"`{listen.tls_key}`: {exc}") from exc
    if listen.mtls:
        assert config.ssl is not None  # loaded above: listen.tls
        config.ssl.verify_mode = ssl.CERT_REQUIRED
        config.ssl.load_verify_locations(cadata=ca_pem.decode("ascii"))


def _protocol(gateway: Gateway, listen: Listen) -> type[asyncio.Protocol] | str:
    """uvicorn's HTTP protocol; with mTLS, one that reads each connection's certificate."""
    if not listen.mtls:
        return "auto"
    ca, domain = gateway.domain.keys.ca_certificate, gateway.domain.domain
    return protocol_reading_certificates(
        lambda transport: read_client_certificate(transport, ca, domain))


async def _close_windows(throttle: AuditThrottle) -> None:
    """Write each audit window's summary when it ends, even if no refusal follows."""
    while True:
        await anyio.sleep(throttle.window_s)
        throttle.tick()


def bind_socket(listen: Listen) -> socket.socket:
    """The socket `serve_http` listens on, bound to `listen`; raises `ConfigError`.

    Created with `IPPROTO_TCP`, not 0: asyncio turns Nagle's algorithm off
    (`TCP_NODELAY`) only on sockets whose `proto` says TCP, and accepted
    connections inherit it from this one. With Nagle on, each response (headers,
    then body: two writes) waited ~40 ms for the client's delayed ACK.
    """
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((listen.host, listen.port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {listen.host}:{listen.port}: {exc}") from exc
    return sock


async def serve_http(gateway: Gateway, listen: Listen) -> None:
    """Connect the upstreams, then serve MCP over HTTP at `listen` until SIGINT/SIGTERM."""
    sock = bind_socket(listen)  # fail fast, before any upstream starts
    listen = Listen(host=listen.host, port=sock.getsockname()[1], tls_cert=listen.tls_cert,
                    tls_key=listen.tls_key, mtls=listen.mtls)
    manager = StreamableHTTPSessionManager(
        gateway.server, stateless=True, json_response=True, security_settings=_security(listen),
        max_request_body_size=gateway.config.limits.max_request_bytes)
    app = GatewayHttpApp(gateway, manager, mtls=listen.mtls)
    config = uvicorn.Config(
        app, lifespan="off", log_config=None, access_log=False,
        server_header=False, proxy_headers=False, h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        ssl_certfile=listen.tls_cert, ssl_keyfile=listen.tls_key, http=_protocol(gateway, listen))
    if listen.tls:
        _tls(config, listen, identity.certificate_pem(gateway.domain.keys.ca_certificate))

    async def downstream() -> None:
        async with manager.run(), anyio.create_task_group() as tasks:
            tasks.start_soon(_close_windows, app.throttle)
            try:
                # Listening starts here, after every upstream is connected: an open port
                # means ready.
                print(f"warrant gateway: serving MCP at {listen.url}", file=sys.stderr,
                      flush=True)
                await _Server(config).serve(sockets=[sock])
            finally:
                tasks.cancel_scope.cancel()
                app.throttle.flush()  # the last window's counts, even if the flood stopped

    try:
        await gateway.serve(downstream)
    finally:
        sock.close()
