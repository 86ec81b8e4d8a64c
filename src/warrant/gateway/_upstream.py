"""Connections to upstream MCP servers (stdio processes or streamable HTTP URLs).

Each upstream lives in its own task, which owns the transport and the
`ClientSession` (anyio requires a context to be exited by the task that entered
it). A crash or a disconnect ends that connection only: the upstream is marked
down and calls to it fail with an error result, while the gateway keeps serving
the others; it is started again after a backoff (`limits.restart_after_s`,
doubling), and stays down after `limits.max_restarts` quick failures in a row.
A server that failed to start for want of a sandbox, or that the response
engine stopped, is not restarted. A restarted server's tools are listed again
and checked against their pins, as is every `notifications/tools/list_changed`
mid-session, so a changed definition is seen (and quarantined).

Stdio servers run sandboxed (`warrant.sandbox.sandboxed_command`) unless their
config says `unsafe_no_sandbox`, which is logged on every start and refused
outright (the gateway does not start) when the domain is strict. When no
sandbox can be built the server does not start; it is reported down with how
to fix it, and the other upstreams keep working.

A server whose profile has `network = "egress-allowlist"` reaches the network
only through an egress proxy the gateway hosts for it, placed in the server's
network namespace (the gateway must run as root); the profile's hosts come from
the domain's `sandbox.toml` (`attach_sandbox`). Every connection is audited
before it is made (`sandbox.egress`), refused ones also as `sandbox.violation`;
if the audit write fails the connection is refused. If the proxy cannot be
placed, the server is stopped before it starts and reported down with why.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from anyio.abc import TaskStatus
from mcp.client._transport import TransportStreams
from mcp.client.session import ClientSession, IncomingMessage
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.message import SessionMessage

from warrant import identity
from warrant.enforce import TrustDomain
from warrant.errors import WarrantError
from warrant.sandbox import (
    BUILTIN_PROFILES,
    EgressHook,
    EgressRecord,
    SandboxedCommand,
    SandboxProfile,
    SandboxRefused,
    get_profile,
    load_profiles,
    register_sandbox,
    sandboxed_command,
    unregister_sandbox,
)

from ._catalogue import ToolDefinition
from ._config import HttpServer, StdioServer

log = logging.getLogger("warrant.gateway")

#: Called with the server's full tool list each time it is (re)listed.
OnTools = Callable[["Upstream", list[ToolDefinition]], Awaitable[None]]
#: Writes one admin audit record (`TrustDomain.record_admin`).
Audit = Callable[[str, Mapping[str, Any]], object]
CONNECT_TIMEOUT_S = 30.0
#: A connection that lasted this long was healthy: its failure starts a new count.
_HEALTHY_S = 60.0
_MAX_BACKOFF_S = 60.0
#: The domain's sandbox profiles, next to its config.toml (`[profile.NAME]` tables).
SANDBOX_PROFILES = "sandbox.toml"


class UpstreamUnavailable(Exception):  # noqa: N818 - internal, turned into an error result
    """The upstream is not connected (it failed to start, crashed, or closed)."""


class Upstream:
    """One configured upstream server and its live session (if any)."""

    def __init__(self, name: str, config: StdioServer | HttpServer, on_tools: OnTools, *,
                 strict: bool = True, restart_after_s: float = 1.0, max_restarts: int = 5):
        """Raises `SandboxRefused` for `unsafe_no_sandbox` when `strict` (the domain's
        setting; strict unless told otherwise)."""
        if isinstance(config, StdioServer) and config.unsafe_no_sandbox and strict:
            raise SandboxRefused(
                f"server `{name}` sets `unsafe_no_sandbox`, which is refused because the "
                "domain is strict; the gateway was not started",
                hint="remove `unsafe_no_sandbox` so the server runs sandboxed (add "
                     "`sandbox_bind_ro` for files it needs), or set `strict = false` in the "
                     "domain's config.toml")
        self.name = name
        self.config = config
        self._on_tools = on_tools
        self.session: ClientSession | None = None
        self.error: str | None = None
        self._stop = anyio.Event()
        self._relist = anyio.Event()
        #: The tools of the last listing, by upstream name.
        self.tools: dict[str, ToolDefinition] = {}
        # -- sandbox egress (issue 5): set by `attach_sandbox` --
        #: Profiles `config.sandbox` is looked up in (the domain's, once attached).
        self.sandbox_profiles: Mapping[str, SandboxProfile] = BUILTIN_PROFILES
        #: Where egress connections are recorded; without it a network profile is refused.
        self.audit: Audit | None = None
        self._sandboxed: SandboxedCommand | None = None
        #: The agent this server works for (a stdio gateway serves one): the response
        #: engine's `kill_sandboxes` step stops the server when that agent is contained.
        self.agent: str | None = None
        self._restart_after_s, self._max_restarts = restart_after_s, max_restarts
        #: Set when the upstream must not be started again (stopped, contained, no sandbox).
        self._final = False
        #: How many times it has been (re)started.
        self.starts = 0

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect and serve until stopped, restarting after failures with a backoff.

        Never raises: errors mark the upstream down. `task_status` is reported after the
        first attempt (connected or not), so the gateway starts without waiting on retries.
        """
        failures = 0
        while True:
            began = time.monotonic()
            await self._run_once(task_status if self.starts == 0 else anyio.TASK_STATUS_IGNORED)
            if self._final or self._stop.is_set():
                return
            # A connection that lasted a minute was healthy: count failures afresh.
            failures = 1 if time.monotonic() - began >= _HEALTHY_S else failures + 1
            if failures > self._max_restarts:
                self.error = (f"{self.error}; not restarted after {failures} failures in a row "
                              "(restart the gateway once the server is fixed)")[:800]
                log.error("upstream %s stays down: %s", self.name, self.error)
                return
            delay = min(self._restart_after_s * 2 ** (failures - 1), _MAX_BACKOFF_S)
            reason = self.error or "disconnected"
            self.error = f"{reason}; restarting in {delay:g}s"[:800]
            log.warning("upstream %s: %s", self.name, self.error)
            with anyio.move_on_after(delay):
                await self._stop.wait()
            if self._stop.is_set():
                return

    async def _run_once(self, task_status: TaskStatus[None]) -> None:
        """One connection: connect, list tools, serve until stopped or broken."""
        self.starts += 1
        started = False
        try:
            async with AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._transport())
                # The session does not say when its server goes away; a relay of the
                # transport's messages does (the stream ends when the server exits).
                broken = anyio.Event()
                relayed, incoming = anyio.create_memory_object_stream[SessionMessage | Exception]()
                relays = await stack.enter_async_context(anyio.create_task_group())
                stack.callback(relays.cancel_scope.cancel)  # before the group is exited
                relays.start_soon(_relay, read, relayed, broken)
                session = await stack.enter_async_context(ClientSession(
                    incoming, write, message_handler=self._on_message))
                # Only plain awaits inside the deadline: cancel scopes must nest (LIFO).
                with anyio.fail_after(CONNECT_TIMEOUT_S):
                    await session.initialize()
                    self.session = session
                    await self.refresh()
                task_status.started()
                started = True
                registered = self._register_sandbox()
                try:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._relist_loop)
                        tg.start_soon(_cancel_when, broken, tg.cancel_scope)
                        await self._stop.wait()
                        tg.cancel_scope.cancel()
                finally:
                    if registered is not None:
                        unregister_sandbox(registered)
                if broken.is_set() and not self._stop.is_set():
                    self.error = "the server closed the connection (it exited or crashed)"
                    log.warning("upstream %s is down: %s", self.name, self.error)
        except WarrantError as exc:  # no sandbox: the server was not started
            self._final = True  # starting it again would fail the same way
            self.error = (exc.message + (f"; to fix: {exc.hint}" if exc.hint else ""))[:800]
            log.warning("upstream %s is down: %s", self.name, self.error)
        except Exception as exc:  # any failure marks this upstream down
            egress = self._sandboxed.egress if self._sandboxed is not None else None
            self.error = (egress.error if egress is not None and egress.error
                          else _describe(exc))[:800]
            log.warning("upstream %s is down: %s", self.name, self.error)
            log.debug("upstream %s failure", self.name, exc_info=True)
        finally:
            self.session = None
            if not started:
                task_status.started()

    def stop(self) -> None:
        self._stop.set()

    def _register_sandbox(self) -> int | None:
        """Let the response engine stop this sandboxed server (from any thread)."""
        if not isinstance(self.config, StdioServer) or self.config.unsafe_no_sandbox:
            return None
        token = anyio.lowlevel.current_token()
        loop_thread = threading.get_ident()  # registered from the event loop's thread

        def kill() -> None:
            self._final = True
            self.error = "stopped by the response engine: its agent was contained"
            if threading.get_ident() == loop_thread:
                # Inline containment (a canary) runs on the loop itself: handing the call
                # to the loop and waiting for it would wait forever.
                self._stop.set()
            else:
                anyio.from_thread.run_sync(self._stop.set, token=token)

        return register_sandbox(kill=kill, agent=self.agent, label=f"MCP server `{self.name}`")

    @asynccontextmanager
    async def _transport(self) -> AsyncIterator[TransportStreams]:
        if isinstance(self.config, StdioServer):
            params = await anyio.to_thread.run_sync(self._stdio_parameters, self.config)
            try:
                async with stdio_client(params, errlog=sys.stderr) as streams:
                    yield streams
            finally:
                if self._sandboxed is not None:  # its egress proxy, if any
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(self._sandboxed.close)
            return
        async with create_mcp_http_client(headers=self.config.headers or None) as client, \
                streamable_http_client(self.config.url, http_client=client) as streams:
            yield streams

    def _stdio_parameters(self, config: StdioServer) -> StdioServerParameters:
        """How to spawn the server: through the sandbox launcher, or bare if unsafe."""
        if config.unsafe_no_sandbox:
            log.warning("UNSAFE: starting upstream %s WITHOUT a sandbox (unsafe_no_sandbox): "
                        "it has the host's files, network and processes", self.name)
            command, *args = config.command
            return StdioServerParameters(command=command, args=args, env=config.env or None,
                                         cwd=config.cwd)
        # Blocking (checks bubblewrap once, compiles the filter): run in a worker thread.
        profile = get_profile(config.sandbox, profiles=self.sandbox_profiles)
        sandboxed = sandboxed_command(config.command, profile, binds=config.sandbox_bind_ro,
                                      env=config.env, cwd=config.cwd,
                                      on_egress=self._egress_hook(profile), name=self.name)
        self._sandboxed = sandboxed
        log.info("upstream %s runs in sandbox `%s` (read-only: %s%s)", self.name, config.sandbox,
                 ", ".join(sandboxed.binds) or "base system only",
                 f"; network only to {', '.join(profile.allowed_hosts) or 'nothing'} through "
                 "the egress proxy" if sandboxed.egress is not None else "")
        command, *args = sandboxed.argv
        # The SDK adds HOME, PATH, USER... of ours to the launcher's environment; the
        # launcher hands the server only the names `sandboxed.env` lists.
        return StdioServerParameters(command=command, args=args, env=dict(sandboxed.env),
                                     cwd="/")

    def _egress_hook(self, profile: SandboxProfile) -> EgressHook | None:
        """Records each connection the server's proxy allows or refuses, before it is made
        (a failed write raises: the proxy then refuses). None without an audit log."""
        audit = self.audit
        if profile.network == "none" or audit is None:
            return None
        where = {"server": self.name, "profile": profile.name,
                 "command": list(self.config.command[:1])
                 if isinstance(self.config, StdioServer) else []}

        def record(connection: EgressRecord) -> None:
            audit("sandbox.egress", {**connection.to_json(), **where})
            if not connection.allowed:
                audit("sandbox.violation", {
                    "kind": "egress-blocked", **where,
                    "detail": f"connection to `{connection.host}:{connection.port}` refused: "
                              f"{connection.reason}"})

        return record

    async def _on_message(self, message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            # Listing from inside the message handler would wait on ourselves; hand it off.
            self._relist.set()
        elif isinstance(message, Exception):
            log.warning("upstream %s transport error: %s", self.name, message)

    async def _relist_loop(self) -> None:
        while True:
            await self._relist.wait()
            self._relist = anyio.Event()
            try:
                await self.refresh()
            except Exception:
                log.exception("re-listing tools of upstream %s failed", self.name)

    async def refresh(self) -> None:
        """List every tool (all pages) and hand the definitions to the catalogue."""
        session = self.require()
        capabilities = session.server_capabilities
        if capabilities is not None and capabilities.tools is None:
            # A server of resources or prompts only: listing tools would be an error.
            self.tools = {}
            await self._on_tools(self, [])
            return
        definitions: list[ToolDefinition] = []
        cursor: str | None = None
        has_output_schema = False
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            result = await session.list_tools(params=params)
            definitions.extend(_definition(self.name, tool) for tool in result.tools)
            has_output_schema |= any(tool.output_schema is not None for tool in result.tools)
            cursor = result.next_cursor
            if not cursor:
                break
        self.tools = {d.name: d for d in definitions}
        if has_output_schema:
            _warm_output_validation()
        await self._on_tools(self, definitions)

    def require(self) -> ClientSession:
        if self.session is None:
            raise UpstreamUnavailable(f"upstream server `{self.name}` is not connected"
                                      + (f" ({self.error})" if self.error else ""))
        return self.session


_warmed = threading.Event()


def _warm_output_validation() -> None:
    """Import `jsonschema` in a background thread, once per process.

    The SDK validates each result against the tool's output schema and imports
    `jsonschema` lazily on the first such call, inside the event loop: ~2.5 s
    (its URI grammars are compiled at import) during which no client of the
    gateway is served. Imported here, the first call waits at most for what is
    left of the import (Python's import lock), and nothing is validated less.
    """
    if _warmed.is_set():
        return
    _warmed.set()

    def load() -> None:
        try:
            importlib.import_module("jsonschema.validators")
        except Exception:  # the first validating call reports it, as it would have
            log.debug("could not import jsonschema ahead of the first call", exc_info=True)

    threading.Thread(target=load, name="warrant-warm-jsonschema", daemon=True).start()


def _describe(exc: BaseException) -> str:
    """`Type: message` of a failure, from inside exception groups: a transport's task
    group says only "unhandled errors in a TaskGroup", its cause (a refused
    connection, a bad URL) is the one exception inside."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


async def _relay(source: Any, sink: Any, ended: anyio.Event) -> None:
    """Pass every message from `source` to `sink`; set `ended` when `source` ends."""
    try:
        async with sink:
            async for item in source:
                await sink.send(item)
    except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
        pass
    finally:
        ended.set()


async def _cancel_when(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def _definition(server: str, tool: types.Tool) -> ToolDefinition:
    annotations = (tool.annotations.model_dump(by_alias=True, exclude_none=True, mode="json")
                   if tool.annotations is not None else None)
    return ToolDefinition(server=server, name=tool.name, description=tool.description or "",
                          input_schema=tool.input_schema, annotations=annotations)



# -- sandbox egress (issue 5) ---------------------------------------------------------------

def attach_sandbox(upstreams: Iterable[Upstream], domain: TrustDomain, home: Path) -> None:
    """Give the upstreams the domain's sandbox profiles and its audit log for egress.

    Profiles: the built-ins plus `<home>/sandbox.toml` when present (a table there
    named like a built-in, e.g. `[profile.egress-allowlist]` with `allowed_hosts`,
    replaces it). When the domain requires signed configuration the file must be
    signed too (`warrant config sign`): it decides where servers may connect.
    Raises `ConfigError` or `SandboxProfileError` (also for a server naming a profile
    that does not exist); the gateway then does not start.
    """
    path = home / SANDBOX_PROFILES
    profiles: Mapping[str, SandboxProfile] = BUILTIN_PROFILES
    if path.exists():
        if domain.config.require_signed_config:
            identity.verify_bundle(domain.public_key, path)
        profiles = load_profiles(path)
    for upstream in upstreams:
        if isinstance(upstream.config, StdioServer) and not upstream.config.unsafe_no_sandbox:
            get_profile(upstream.config.sandbox, profiles=profiles)  # raises if unknown
        upstream.sandbox_profiles = profiles
        upstream.audit = domain.record_admin
