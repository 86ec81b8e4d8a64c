"""`run_gateway`: open the trust domain, authenticate the launcher, serve MCP on stdio."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import anyio

from warrant import identity
from warrant.config import resolve_home
from warrant.enforce import Guard, TrustDomain
from warrant.errors import ConfigError
from warrant.response import ResponseEngine, domain_playbooks
from warrant.store import SqlitePins

from ._auth import open_session
from ._config import GatewayConfig
from ._server import Gateway

#: The shared state database inside the domain's home (pins live next to the catalogue).
STATE_DB = "state.db"


def run_gateway(config: GatewayConfig, *, home: Path | None = None,
                env: Mapping[str, str] | None = None, config_path: Path | None = None) -> None:
    """Serve one MCP client over stdin/stdout until it disconnects.

    Raises `StateError`/`ConfigError` before serving when the domain cannot be
    opened; authentication problems do not raise (every call is denied instead).
    """
    root = resolve_home(home)
    with TrustDomain.open(root) as domain:
        if domain.config.require_signed_config:
            if config_path is None:
                raise ConfigError("this domain requires signed configuration; "
                                  "start the gateway from a signed config file")
            identity.verify_bundle(domain.public_key, config_path)
        pins = SqlitePins(root / STATE_DB)
        # The response engine watches this gateway's decisions and contains
        # compromised agents (revocations take effect on the next call).
        engine = ResponseEngine(domain, playbooks=domain_playbooks(
            root, domain.public_key, require_signed=domain.config.require_signed_config))
        engine.start()
        try:
            guard = Guard(domain)
            session = open_session(guard, os.environ if env is None else env)
            gateway = Gateway(domain, config, pins, guard.pipeline, session)
            domain.record_admin("gateway.start", {
                "servers": sorted(config.servers),
                "agent": session.credential.agent_id if session else None})
            anyio.run(gateway.serve_stdio)
        finally:
            engine.stop()
            pins.close()
