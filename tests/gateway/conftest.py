"""A trust domain, an agent with tokens on disk, and the real gateway to drive.

The gateway runs as a subprocess (`python -m warrant gateway --config ...`) in
front of the published `mcp-server-time` and `evil_server.py`; the tests talk to
it with the SDK's own stdio client.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientSession, IncomingMessage
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.gateway._cli import command_prefix
from warrant import warrants
from warrant.enforce import TrustDomain

ROOT = Path(__file__).resolve().parents[2]
EVIL = Path(__file__).with_name("evil_server.py")
GRANTS = ("time/get_current_time:timezone^=Europe/", "evil/echo", "evil/mutate", "evil/hang",
          "evil/crash", "evil/flood", "evil/inject", "evil/audit_log", "evil/send")
#: Generous bound for one gateway session (start-up spawns three Python processes).
SESSION_TIMEOUT_S = 30


@dataclass
class World:
    """A domain home, the gateway config, and the agent's token files."""

    home: Path
    config: Path
    credential: Path
    warrant: Path
    key: Path
    task_id: str
    agent_id: str

    def env(self, **overrides: str | None) -> dict[str, str]:
        env = {"WARRANT_HOME": str(self.home),
               # This checkout's code, not whatever an editable install points at.
               "PYTHONPATH": os.pathsep.join((str(ROOT / "src"), str(ROOT))),
               "WARRANT_CREDENTIAL_FILE": str(self.credential),
               "WARRANT_WARRANT_FILE": str(self.warrant),
               "WARRANT_AGENT_KEY_FILE": str(self.key)}
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    @asynccontextmanager
    async def client(self, *servers: str, config_extra: dict[str, object] | None = None,
                     **env: str | None) -> AsyncIterator[GatewayClient]:
        """An initialised MCP client session with a fresh gateway in front of `servers`."""
        config = write_config(self.config, servers or ("time", "evil"), **(config_extra or {}))
        params = StdioServerParameters(
            command=command_prefix()[0],
            args=[*command_prefix()[1:], "gateway", "--config", str(config)],
            env=self.env(**env), cwd=str(ROOT))
        client = GatewayClient()
        with anyio.fail_after(SESSION_TIMEOUT_S):
            async with stdio_client(params) as (read, write), \
                    ClientSession(read, write, message_handler=client.on_message) as session:
                await session.initialize()
                client.session = session
                yield client


@dataclass
class GatewayClient:
    session: ClientSession | None = None
    tools_changed: anyio.Event = field(default_factory=anyio.Event)

    async def on_message(self, message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.tools_changed.set()

    async def tool_names(self) -> set[str]:
        assert self.session is not None
        return {t.name for t in (await self.session.list_tools()).tools}

    async def call(self, name: str, **arguments: object) -> tuple[bool, str]:
        """(is_error, text of the first content block)."""
        assert self.session is not None
        result = await self.session.call_tool(name, dict(arguments))
        assert isinstance(result, types.CallToolResult)
        first = result.content[0] if result.content else None
        text = first.text if isinstance(first, types.TextContent) else ""
        return result.is_error, text


SERVERS = {
    "time": {"command": [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]},
    "evil": {"command": [sys.executable, str(EVIL)]},
}


def write_config(path: Path, servers: tuple[str, ...], **extra: object) -> Path:
    """A gateway config for some of `SERVERS` (each one started costs a Python process)."""
    config = {
        "servers": {name: SERVERS[name] for name in servers},
        "risk": {"evil/mutate": "write"},
        "limits": {"call_timeout_s": 1.5, "max_message_bytes": 200_000},
        **extra,
    }
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@pytest.fixture
def world(tmp_path: Path) -> World:
    home = tmp_path / "home"
    # Set up, then close: while the gateway runs it is the domain's only writer here.
    with TrustDomain.init(home, "acme.example") as domain:
        record, key = domain.register_agent("bot", owner="ops", purpose="tells the time")
        assert key is not None
        issued = domain.issue_credential("bot")
        task_id, token = domain.mint(agent="bot", task="tell the time",
                                     tools=[warrants.parse_tool_spec(g) for g in GRANTS],
                                     on_behalf_of="user:alice",
                                     instruction="Tell me the time in Paris and send it to "
                                                 "alice@corp.example.")
    credential, warrant = tmp_path / "credential", tmp_path / "warrant"
    credential.write_text(issued.token, encoding="utf-8")
    warrant.write_text(token, encoding="utf-8")
    for path in (credential, warrant):
        os.chmod(path, 0o600)
    return World(home=home, config=tmp_path / "gateway.json",
                 credential=credential, warrant=warrant, key=key, task_id=task_id,
                 agent_id=record.agent_id)


def run(body: Callable[[], Awaitable[None]]) -> None:
    """Run an async test body under anyio (no plugin needed)."""
    anyio.run(body)


def npm_entry(package: str, version: str) -> Path:
    """`package@version`'s `dist/index.js`, installed with npm once per test cache.

    Skips with the reason when node/npm or the install fail, except under
    CI=true, where a published server that cannot be installed fails the test.
    """
    cache = Path(os.environ.get("WARRANT_TEST_CACHE", Path.home() / ".cache" / "warrant-tests"))
    prefix = cache / f"npm-{package.rsplit('/', 1)[-1]}-{version}"
    entry = prefix / "node_modules" / package / "dist" / "index.js"
    if entry.exists():
        return entry
    problem = None
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        problem = "node and npm are not installed"
    else:
        prefix.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--no-save",
             f"{package}@{version}"], capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0 or not entry.exists():
            problem = f"`npm install {package}@{version}` failed: {done.stderr[-500:]}"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    return entry
