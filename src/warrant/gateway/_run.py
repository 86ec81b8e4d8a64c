"""`run_gateway`: open the trust domain, authenticate the caller, serve MCP (stdio or HTTP)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import anyio

from warrant import identity
from warrant.config import resolve_home
from warrant.enforce import STATE_DB, Guard, GuardSession, TrustDomain
from warrant.errors import ConfigError
from warrant.response import ResponseEngine, ResponseLock, domain_engine
from warrant.store import SqlitePins

from ._config import GatewayConfig
from ._http import Listen, serve_http
from ._refresh import SessionSource
from ._server import Gateway
from ._upstream import attach_sandbox

log = logging.getLogger("warrant.gateway")


def run_gateway(config: GatewayConfig, *, home: Path | None = None,
                env: Mapping[str, str] | None = None, config_path: Path | None = None,
                listen: str | None = None, tls_cert: Path | None = None,
                tls_key: Path | None = None, mtls: bool = False) -> None:
    """Serve one MCP client over stdin/stdout until it disconnects, or HTTP at `listen`.

    Over stdio the caller's tokens come from `env` (a session for the process,
    re-opened for the same agent when its token files are renewed); over HTTP
    (`listen` is `HOST:PORT`) they come with each request, and `env` is not read.
    Raises `ConfigError` for a refused `listen` address and, like `StateError`,
    before serving when the domain cannot be opened; authentication problems do
    not raise (every call is denied instead).
    """
    if listen is None and (tls_cert or tls_key or mtls):
        raise ConfigError("`--tls-cert`, `--tls-key` and `--mtls` need `--listen`")
    where = (Listen.parse(listen, tls_cert=tls_cert, tls_key=tls_key, mtls=mtls)
             if listen is not None else None)
    root = resolve_home(home)
    with TrustDomain.open(root) as domain:
        if domain.config.require_signed_config:
            if config_path is None:
                raise ConfigError("this domain requires signed configuration; "
                                  "start the gateway from a signed config file")
            identity.verify_bundle(domain.public_key, config_path)
        pins = SqlitePins(root / STATE_DB)
        # The response engine watches this gateway's decisions and contains
        # compromised agents (revocations take effect on the next call), unless
        # `warrant respond` follows the domain's whole log: one authority per record.
        lock = ResponseLock(root)
        engine: ResponseEngine | None = None
        if lock.shared():
            engine = domain_engine(domain, domain.public_key, domain.config).start()
        else:
            log.warning("`warrant respond` runs detection for this domain: this gateway "
                        "starts no response engine of its own (revocations still take "
                        "effect on the next call; sandboxed servers are not killed inline)")
        try:
            guard = Guard(domain)
            # Over stdio, the launch session, re-opened when its token files are renewed.
            sessions = (None if where is not None
                        else SessionSource.open(guard, os.environ if env is None else env))
            gateway = Gateway(domain, config, pins, guard.pipeline, sessions)
            session = gateway.session
            # -- sandbox (issue 5): the domain's profiles and egress audit for stdio servers
            attach_sandbox(gateway.upstreams.values(), domain, root)
            # -- end sandbox --

            def serve_agent(opened: GuardSession | None) -> None:
                for upstream in gateway.upstreams.values():  # what `kill_sandboxes` stops
                    upstream.agent = opened.credential.agent_id if opened else None

            serve_agent(session)
            if sessions is not None:
                # A refreshed session is the same agent's; one opened after a refused
                # launch is the first to name the agent the servers work for.
                sessions.on_open = serve_agent
            if gateway.memory and engine is not None:
                # `quarantine_memory` acts through the guarded memory server's store.
                engine.attach_memory(next(iter(gateway.memory.values())).memory)
            domain.record_admin("gateway.start", {
                "servers": sorted(config.servers),
                "agent": session.credential.agent_id if session else None,
                "listen": where.url if where else "stdio"})
            if where is None:
                anyio.run(gateway.serve_stdio)
            else:
                anyio.run(serve_http, gateway, where)
        finally:
            if engine is not None:
                engine.stop()
            lock.release()
            pins.close()
