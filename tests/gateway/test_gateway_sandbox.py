"""Stdio servers run sandboxed by default: the real gateway in front of a server that tries
to escape (read the user's home and the domain's keys, reach PostgreSQL, read the gateway's
environment), and the same server run with `unsafe_no_sandbox` to show the probes work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.gateway._cli import command_prefix
from tests.gateway.conftest import EVIL, ROOT, SESSION_TIMEOUT_S, World, run
from warrant import warrants
from warrant.enforce import TrustDomain
from warrant.errors import ConfigError
from warrant.gateway import StdioServer, parse_gateway_config
from warrant.sandbox import DEFAULT_PROFILE, SandboxUnavailable
from warrant.sandbox._bwrap import check_works, find_bwrap

ESCAPE = Path(__file__).with_name("escape_server.py")
GRANTS = ("escape/probe", "evil/echo")


def _bwrap_problem() -> str | None:
    try:
        check_works(find_bwrap())
    except SandboxUnavailable as exc:
        return exc.message
    return None


pytestmark = pytest.mark.skipif(
    _bwrap_problem() is not None and os.environ.get("CI") != "true",
    reason=f"bubblewrap cannot run here: {_bwrap_problem()}")


def make_world(tmp_path: Path, *, strict: bool, grants: tuple[str, ...] = GRANTS) -> World:
    home = tmp_path / "home"
    with TrustDomain.init(home, "acme.example") as domain:
        record, key = domain.register_agent("bot", owner="ops", purpose="probes")
        assert key is not None
        issued = domain.issue_credential("bot")
        task_id, token = domain.mint(agent="bot", task="probe",
                                     tools=[warrants.parse_tool_spec(g) for g in grants],
                                     on_behalf_of="user:alice", instruction="Check things.")
    if not strict:
        config = home / "config.toml"
        text = config.read_text(encoding="utf-8")
        assert "strict = true" in text
        config.write_text(text.replace("strict = true", "strict = false"), encoding="utf-8")
    credential, warrant = tmp_path / "credential", tmp_path / "warrant"
    credential.write_text(issued.token, encoding="utf-8")
    warrant.write_text(token, encoding="utf-8")
    for path in (credential, warrant):
        os.chmod(path, 0o600)
    return World(home=home, config=tmp_path / "gateway.json", credential=credential,
                 warrant=warrant, key=key, task_id=task_id, agent_id=record.agent_id)


def write_config(world: World, **servers: dict[str, object]) -> Path:
    world.config.write_text(json.dumps({"servers": servers}), encoding="utf-8")
    return world.config


def escape(**extra: object) -> dict[str, object]:
    return {"command": [sys.executable, str(ESCAPE)], **extra}


class Gateway:
    def __init__(self, session: ClientSession):
        self.session = session

    async def call(self, tool: str, /, **arguments: object) -> tuple[bool, str]:
        result = await self.session.call_tool(tool, dict(arguments))
        assert isinstance(result, types.CallToolResult)
        first = result.content[0] if result.content else None
        return result.is_error, first.text if isinstance(first, types.TextContent) else ""

    async def probe(self, **arguments: object) -> str:
        is_error, text = await self.call("escape__probe", **arguments)
        assert not is_error, text
        return text


@asynccontextmanager
async def gateway(world: World, config: Path, errlog: Path,
                  **env: str | None) -> AsyncIterator[Gateway]:
    params = StdioServerParameters(
        command=command_prefix()[0],
        args=[*command_prefix()[1:], "gateway", "--config", str(config)],
        env=world.env(**env), cwd=str(ROOT))
    with anyio.fail_after(SESSION_TIMEOUT_S), errlog.open("w", encoding="utf-8") as err:
        async with stdio_client(params, errlog=err) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            yield Gateway(session)


@pytest.fixture
def home_secret() -> Iterator[str]:
    """A file in the real user's home directory (removed afterwards)."""
    with tempfile.NamedTemporaryFile("w", dir=Path.home(), prefix=".warrant-test-",
                                     delete=False) as file:
        file.write("home-secret")
    yield file.name
    os.unlink(file.name)


def probes(world: World, home_secret: str) -> dict[str, dict[str, object]]:
    return {
        "home": {"what": "file", "path": home_secret},
        "keys": {"what": "file", "path": str(world.home / "keys" / "signing.key")},
        "env": {"what": "env", "name": "WARRANT_CREDENTIAL_FILE"},
        "tcp": {"what": "tcp", "host": "127.0.0.1", "port": 5432},
    }


@pytest.mark.claim("sandbox.no-host-files")
@pytest.mark.claim("sandbox.no-network")
@pytest.mark.claim("sandbox.env-scrubbed")
def test_a_stdio_server_is_sandboxed_by_default_and_cannot_escape(
        tmp_path: Path, home_secret: str) -> None:
    world = make_world(tmp_path, strict=True)
    config = write_config(world, escape=escape())
    answers: dict[str, str] = {}

    async def body() -> None:
        async with gateway(world, config, tmp_path / "gateway.err") as gw:
            for name, arguments in probes(world, home_secret).items():
                answers[name] = await gw.probe(**arguments)

    run(body)
    assert all(text.startswith("blocked:") for text in answers.values()), answers
    assert "No such file" in answers["home"] and "No such file" in answers["keys"]
    assert "Permission denied" in answers["tcp"]


def test_the_same_server_unsandboxed_in_a_non_strict_domain_can_escape(
        tmp_path: Path, home_secret: str) -> None:
    # Proves the probes above can fail: without the sandbox they succeed.
    world = make_world(tmp_path, strict=False)
    config = write_config(world, escape=escape(unsafe_no_sandbox=True))
    answers: dict[str, str] = {}
    errlog = tmp_path / "gateway.err"

    async def body() -> None:
        async with gateway(world, config, errlog) as gw:
            for name, arguments in probes(world, home_secret).items():
                answers[name] = await gw.probe(**arguments)

    run(body)
    assert answers["home"] == "ok: home-secret"
    assert answers["keys"].startswith("ok: ")
    assert answers["env"] == f"ok: {world.credential}"
    assert "UNSAFE: starting upstream escape WITHOUT a sandbox" in errlog.read_text("utf-8")


@pytest.mark.claim("sandbox.fail-closed")
def test_unsafe_no_sandbox_in_a_strict_domain_stops_the_gateway_from_starting(
        tmp_path: Path) -> None:
    world = make_world(tmp_path, strict=True)
    config = write_config(world, escape=escape(unsafe_no_sandbox=True))
    done = subprocess.run([*command_prefix(), "gateway", "--config", str(config)],
                          env=world.env(), cwd=ROOT, capture_output=True, text=True,
                          timeout=SESSION_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode != 0
    assert "server `escape` sets `unsafe_no_sandbox`" in done.stderr
    assert "strict" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.claim("sandbox.fail-closed")
def test_without_bubblewrap_a_sandboxed_server_is_reported_down_and_the_others_keep_working(
        tmp_path: Path) -> None:
    world = make_world(tmp_path, strict=False)
    config = write_config(world, escape=escape(),
                          evil={"command": [sys.executable, str(EVIL)],
                                "unsafe_no_sandbox": True})
    errlog = tmp_path / "gateway.err"

    async def body() -> None:
        # A PATH without bubblewrap: the gateway cannot find `bwrap`.
        async with gateway(world, config, errlog, PATH=str(tmp_path)) as gw:
            assert await gw.call("evil__echo", text="still here") == (False, "still here")
            is_error, text = await gw.call("escape__probe", what="env", name="PATH")
            assert is_error and "not known" in text

    run(body)
    log = errlog.read_text("utf-8")
    assert "upstream escape is down: bubblewrap (`bwrap`) was not found in PATH" in log
    assert "apt-get install bubblewrap" in log


@pytest.mark.parametrize(("server", "message"), [
    ({"command": ["x"], "sandbox": "no-such-profile"}, "no sandbox profile `no-such-profile`"),
    ({"command": ["x"], "sandbox_bind_ro": ["relative/path"]}, "must be an absolute path"),
    ({"command": ["x"], "unsafe_no_sandbox": True, "sandbox": "none-network"},
     "cannot be combined"),
    ({"command": ["x"], "unsafe_no_sandbox": "yes please"}, "unsafe_no_sandbox"),
])
def test_sandbox_settings_are_checked_when_the_config_is_parsed(
        server: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_gateway_config({"servers": {"s": server}})


def test_a_stdio_server_defaults_to_the_default_sandbox_profile() -> None:
    server = parse_gateway_config({"servers": {"s": {"command": ["x"]}}}).servers["s"]
    assert isinstance(server, StdioServer)
    assert (server.sandbox, server.unsafe_no_sandbox, server.sandbox_bind_ro) == (
        DEFAULT_PROFILE, False, ())
