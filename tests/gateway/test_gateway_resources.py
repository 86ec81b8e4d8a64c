"""Resources and prompts through the real gateway, decided by the one pipeline.

Real parts: the gateway as a subprocess, the SDK's stdio client, `resource_server.py`
(an SDK server that writes down every read and get it receives, so a test can
show what never reached it), `recording_server.py` (tools only: no resources or
prompts capability) and the published `@modelcontextprotocol/server-everything`
from npm. The recording servers write on the host, so they run unsandboxed in a
non-strict domain.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from tests.gateway._cli import command_prefix
from tests.gateway.conftest import ROOT, SESSION_TIMEOUT_S, World, npm_entry, run
from tests.gateway.test_gateway_http import RunningGateway, Tokens, WarrantAuth, serve_over_http
from warrant import warrants
from warrant.enforce import TrustDomain
from warrant.gateway._catalogue import EXPOSED_NAME, UPSTREAM_TOOL, split_exposed_name
from warrant.gateway._resources import (
    DENIED,
    call_for_request,
    exposed_uri,
    split_exposed_uri,
    unsafe_uri,
)
from warrant.types import RevocationKind, ToolCall

RESOURCES = Path(__file__).with_name("resource_server.py")
RECORDER = Path(__file__).with_name("recording_server.py")
AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"  # AWS's documented example key id
GRANTS = ("docs/resources.read:uri^=file:///docs/", "docs/prompts.get:name=greet", "rec/echo",
          "every/resources.read:uri^=demo://resource/static/document/",
          "every/prompts.get:name=args-prompt")
EVERYTHING, EVERYTHING_VERSION = "@modelcontextprotocol/server-everything", "2026.8.31"


@dataclass
class Setup:
    world: World
    #: A second warrant of the same agent granting only `rec/echo`.
    narrow: Path
    record: Path

    def received(self) -> list[dict[str, Any]]:
        """Every read and get `resource_server.py` received, in order."""
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text("utf-8").splitlines()]


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    home = tmp_path / "home"
    with TrustDomain.init(home, "acme.example", settings={"strict": False}) as domain:
        agent, key = domain.register_agent("reader", owner="ops", purpose="reads docs")
        assert key is not None
        issued = domain.issue_credential("reader")
        task_id, token = domain.mint(agent="reader", task="read the docs",
                                     tools=[warrants.parse_tool_spec(g) for g in GRANTS],
                                     on_behalf_of="user:alice")
        _, narrow_token = domain.mint(agent="reader", task="echo only",
                                      tools=[warrants.parse_tool_spec("rec/echo")])
    files = {name: tmp_path / name for name in ("credential", "warrant", "narrow")}
    for name, text in (("credential", issued.token), ("warrant", token),
                       ("narrow", narrow_token)):
        files[name].write_text(text, encoding="utf-8")
        os.chmod(files[name], 0o600)
    world = World(home=home, config=tmp_path / "gateway.json", credential=files["credential"],
                  warrant=files["warrant"], key=key, task_id=task_id,
                  agent_id=agent.agent_id)
    return Setup(world=world, narrow=files["narrow"], record=tmp_path / "record.jsonl")


def servers(setup: Setup, *, everything: Path | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "docs": {"command": [sys.executable, str(RESOURCES), str(setup.record)],
                 "unsafe_no_sandbox": True},
        "rec": {"command": [sys.executable, str(RECORDER), str(setup.record.with_name("rec"))],
                "unsafe_no_sandbox": True}}
    if everything is not None:
        found["every"] = {"command": [shutil.which("node") or "node", str(everything), "stdio"],
                          "unsafe_no_sandbox": True}
    return found


@asynccontextmanager
async def gateway(setup: Setup, *, everything: Path | None = None, **env: str | None
                  ) -> AsyncIterator[ClientSession]:
    setup.world.config.write_text(json.dumps({
        "servers": servers(setup, everything=everything),
        "limits": {"call_timeout_s": 20}}), encoding="utf-8")
    params = StdioServerParameters(
        command=command_prefix()[0],
        args=[*command_prefix()[1:], "gateway", "--config", str(setup.world.config)],
        env=setup.world.env(**env), cwd=str(ROOT))
    with anyio.fail_after(SESSION_TIMEOUT_S * 2):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


async def read_text(session: ClientSession, uri: str) -> str:
    result = await session.read_resource(uri)
    assert isinstance(result, types.ReadResourceResult)
    content = result.contents[0]
    assert isinstance(content, types.TextResourceContents)
    assert content.uri == uri  # the answer names the resource as the client does
    return content.text


def audit_records(setup: Setup, tool: str) -> list[tuple[str, str]]:
    with TrustDomain.open(setup.world.home) as domain:
        return [(e.record.kind, e.record.effect or "") for e in domain.audit.tail(200)
                if e.record.tool == tool]


def test_reads_and_gets_are_decided_as_pseudo_tool_calls_no_tool_can_be_named_like() -> None:
    assert call_for_request("resources/read", {"uri": "fs+file:///docs/a+b.md"}) == ToolCall(
        tool="resources.read", server="fs", arguments={"uri": "file:///docs/a+b.md"})
    assert call_for_request("prompts/get", {"name": "fs__greet", "arguments": {"who": "A"}}) == (
        ToolCall(tool="prompts.get", server="fs",
                 arguments={"name": "greet", "arguments": {"who": "A"}}))
    assert call_for_request("resources/read", {"uri": "file:///docs/a.md"}) is None
    assert call_for_request("tools/call", {"name": "fs__greet"}) is None
    for pseudo in ("resources.read", "prompts.get"):
        # A warrant can grant it; no upstream tool and no exposed name can be it.
        warrants.parse_tool_spec(f"fs/{pseudo}")
        assert not UPSTREAM_TOOL.match(pseudo)
        assert not EXPOSED_NAME.match(f"fs__{pseudo}")
        assert split_exposed_name(f"fs__{pseudo}") is None
    assert split_exposed_uri(exposed_uri("fs", "test://r/{id}")) == ("fs", "test://r/{id}")


@pytest.mark.parametrize("uri", [
    "file:///docs/../etc/passwd", "file:///docs/./a", "file:///docs/..", "..",
    "file:///docs/%2e%2e/x", "file:///docs/%252e%252e/x", "file:///docs/..%2fx",
    "file:///docs\\..\\x", "file:///docs/a\nb", "file:///docs/a%0ab"])
def test_uris_that_could_walk_out_of_a_prefix_grant_are_unsafe(uri: str) -> None:
    assert unsafe_uri(uri) is not None


@pytest.mark.parametrize("uri", [
    "file:///docs/a.md", "file:///docs/my%20file.md", "file:///docs/...", "test://r/1?q=a.b",
    "file:///docs/.hidden", "demo://resource/static/document/architecture.md"])
def test_ordinary_uris_are_safe(uri: str) -> None:
    assert unsafe_uri(uri) is None


@pytest.mark.claim("gateway.enforces-pipeline")
def test_an_allowed_read_reaches_the_upstream_and_its_decision_and_outcome_are_audited(
        setup: Setup) -> None:
    async def body() -> None:
        async with gateway(setup) as session:
            assert await read_text(session, "docs+file:///docs/readme.md") == (
                "Welcome to the docs.")
            # A URI the server never listed, matching its template, is read the same way.
            assert await read_text(session, "docs+file:///docs/guide.md") == (
                "the document guide.md")

    run(body)
    assert [e["uri"] for e in setup.received()] == ["file:///docs/readme.md",
                                                    "file:///docs/guide.md"]
    records = audit_records(setup, "docs/resources.read")
    assert records.count(("decision", "allow")) == 2
    assert [kind for kind, _ in records].count("outcome") == 2


@pytest.mark.claim("gateway.enforces-pipeline")
def test_a_read_outside_the_warrant_is_a_json_rpc_error_and_never_reaches_the_upstream(
        setup: Setup) -> None:
    async def body() -> None:
        async with gateway(setup) as session:
            with pytest.raises(MCPError) as denied:
                await session.read_resource("docs+file:///private/payroll.csv")
            assert denied.value.code == DENIED
            assert "denied:" in denied.value.message
            assert 'must start with "file:///docs/"' in denied.value.message
            assert "(decision " in denied.value.message
            assert denied.value.data["effect"] == "deny"
            # Walking out of the granted prefix is refused before any decision.
            for uri in ("docs+file:///docs/../private/payroll.csv",
                        "docs+file:///docs/%2e%2e/private/payroll.csv",
                        "docs+file:///docs/..%2fprivate/payroll.csv"):
                with pytest.raises(MCPError, match=r"`\.` or `\.\.` path segments"):
                    await session.read_resource(uri)
            # A URI that names no configured server, or none at all.
            for uri in ("nope+file:///docs/readme.md", "file:///docs/readme.md"):
                with pytest.raises(MCPError, match="unknown resource"):
                    await session.read_resource(uri)
            # The server's tools-only neighbour and the gateway are still fine.
            result = await session.call_tool("rec__echo", {"text": "still here"})
            assert not result.is_error

    run(body)
    assert setup.received() == []
    assert ("decision", "deny") in audit_records(setup, "docs/resources.read")
    with TrustDomain.open(setup.world.home) as domain:
        refused = [e.record.detail for e in domain.audit.tail(50)
                   if e.record.kind == "admin" and e.record.detail
                   and e.record.detail.get("tool") == "docs/resources.read"]
    assert len(refused) >= 3  # the refusals before the pipeline are audited too


@pytest.mark.claim("gateway.least-privilege-discovery")
def test_listings_show_only_what_the_warrant_grants(setup: Setup) -> None:
    async def body() -> None:
        async with gateway(setup) as session:
            resources = {r.uri for r in (await session.list_resources()).resources}
            assert resources == {"docs+file:///docs/readme.md", "docs+file:///docs/keys.md"}
            templates = (await session.list_resource_templates()).resource_templates
            assert [t.uri_template for t in templates] == ["docs+file:///docs/{name}"]
            prompts = [p.name for p in (await session.list_prompts()).prompts]
            assert prompts == ["docs__greet"]  # `internal` is not granted
        # Another warrant of the same agent, without any resource or prompt grant.
        async with gateway(setup, WARRANT_WARRANT_FILE=str(setup.narrow)) as session:
            assert (await session.list_resources()).resources == []
            assert (await session.list_resource_templates()).resource_templates == []
            assert (await session.list_prompts()).prompts == []
            with pytest.raises(MCPError, match="not granted by the warrant"):
                await session.read_resource("docs+file:///docs/readme.md")
        # No credential at all: nothing listed, every read refused.
        async with gateway(setup, WARRANT_CREDENTIAL_FILE=None) as session:
            assert (await session.list_resources()).resources == []
            assert (await session.list_prompts()).prompts == []
            with pytest.raises(MCPError, match=r"^denied: credential rejected$"):
                await session.read_resource("docs+file:///docs/readme.md")
            with pytest.raises(MCPError, match=r"^denied: credential rejected$"):
                await session.get_prompt("docs__greet", {"who": "x"})

    run(body)
    assert setup.received() == []


@pytest.mark.claim("gateway.enforces-pipeline")
def test_a_revoked_task_cannot_read_or_list_its_resources(setup: Setup) -> None:
    async def body() -> None:
        async with gateway(setup) as session:
            await read_text(session, "docs+file:///docs/readme.md")
            with TrustDomain.open(setup.world.home) as domain:
                domain.revoke(RevocationKind.TASK, setup.world.task_id, "test")
            with pytest.raises(MCPError, match="revoked") as denied:
                await session.read_resource("docs+file:///docs/readme.md")
            assert denied.value.code == DENIED
            assert (await session.list_resources()).resources == []
            assert (await session.list_prompts()).prompts == []

    run(body)
    assert len(setup.received()) == 1


@pytest.mark.claim("flow.secrets-stay-in")
def test_a_secret_in_a_resource_is_redacted_before_the_agent_sees_it(setup: Setup) -> None:
    async def body() -> None:
        async with gateway(setup) as session:
            text = await read_text(session, "docs+file:///docs/keys.md")
            assert AWS_KEY not in text
            assert "[REDACTED:secret.aws-access-key]" in text

    run(body)
    with TrustDomain.open(setup.world.home) as domain:
        outcome = next(e.record for e in reversed(domain.audit.tail(20))
                       if e.record.kind == "outcome" and e.record.tool == "docs/resources.read")
    assert outcome.outcome is not None
    assert [r["kind"] for r in outcome.outcome["redactions"]] == ["secret.aws-access-key"]
    assert AWS_KEY not in str(outcome.to_bytes())


@pytest.mark.claim("gateway.enforces-pipeline")
def test_prompts_are_got_through_the_pipeline_and_others_are_denied(setup: Setup) -> None:
    async def body() -> None:
        async with gateway(setup) as session:
            result = await session.get_prompt("docs__greet", {"who": "Alice"})
            message = result.messages[0].content
            assert isinstance(message, types.TextContent)
            assert message.text == "Say hello to Alice."
            with pytest.raises(MCPError, match="denied:") as denied:
                await session.get_prompt("docs__internal")
            assert denied.value.code == DENIED
            with pytest.raises(MCPError, match="unknown prompt"):
                await session.get_prompt("greet")

    run(body)
    assert setup.received() == [{"method": "prompts/get", "name": "greet",
                                 "arguments": {"who": "Alice"}}]
    records = audit_records(setup, "docs/prompts.get")
    assert ("decision", "allow") in records and ("decision", "deny") in records
    assert ("outcome", "allow") in records


NO_KEY_FILES = """
@id("docs.no-key-files")
forbid (principal, action == Warrant::Action::"call_tool",
        resource == Warrant::Tool::"docs/resources.read")
when { context.args.hasTag("uri") && context.args.getTag("uri") like "*keys*" };
"""


@pytest.mark.claim("gateway.enforces-pipeline")
def test_cedar_policy_on_the_pseudo_tool_decides_reads_inside_the_warrants_grant(
        setup: Setup) -> None:
    (setup.world.home / "policies" / "docs.cedar").write_text(NO_KEY_FILES, encoding="utf-8")

    async def body() -> None:
        async with gateway(setup) as session:
            assert await read_text(session, "docs+file:///docs/readme.md")
            with pytest.raises(MCPError, match=r"docs\.no-key-files") as denied:
                await session.read_resource("docs+file:///docs/keys.md")
            assert denied.value.code == DENIED

    run(body)
    assert [e["uri"] for e in setup.received()] == ["file:///docs/readme.md"]


def test_each_servers_pseudo_tools_are_in_the_catalogue_as_read_only(setup: Setup) -> None:
    # The pseudo-tool is in the catalogue as read-only; policy sees it like any tool.
    with TrustDomain.open(setup.world.home) as domain:
        tool = domain.store.get_tool("docs/resources.read")
    assert tool is None  # registered when a gateway starts, not before

    async def body() -> None:
        async with gateway(setup) as session:
            await read_text(session, "docs+file:///docs/readme.md")

    run(body)
    with TrustDomain.open(setup.world.home) as domain:
        tool = domain.store.get_tool("docs/resources.read")
        prompt = domain.store.get_tool("rec/prompts.get")
    assert tool is not None and tool.risk_class.value == "read-only"
    assert prompt is not None and prompt.risk_class.value == "read-only"


# -- the published server-everything ---------------------------------------------------------

@pytest.fixture(scope="module")
def everything() -> Path:
    """server-everything's entry point (npm, installed once per cache)."""
    return npm_entry(EVERYTHING, EVERYTHING_VERSION)


@pytest.mark.claim("gateway.least-privilege-discovery")
def test_server_everything_resources_and_prompts_are_listed_read_and_denied_by_the_warrant(
        setup: Setup, everything: Path) -> None:
    static = "every+demo://resource/static/document/"

    async def body() -> None:
        async with gateway(setup, everything=everything) as session:
            listed = [r.uri for r in (await session.list_resources()).resources]
            assert listed, "server-everything lists its static documents"
            assert all(uri.startswith((static, "docs+file:///docs/"))
                       for uri in listed)
            assert any(uri.startswith(static) for uri in listed)
            templates = [t.uri_template for t in
                         (await session.list_resource_templates()).resource_templates]
            assert "every+demo://resource/dynamic/text/{resourceId}" in templates
            document = next(uri for uri in listed if uri.startswith(static))
            assert await read_text(session, document)
            with pytest.raises(MCPError, match="must start with") as denied:
                await session.read_resource("every+demo://resource/dynamic/text/1")
            assert denied.value.code == DENIED
            prompts = {p.name for p in (await session.list_prompts()).prompts}
            assert "every__args-prompt" in prompts and "every__simple-prompt" not in prompts
            got = await session.get_prompt("every__args-prompt", {"city": "Paris"})
            first = got.messages[0].content
            assert isinstance(first, types.TextContent) and "Paris" in first.text
            with pytest.raises(MCPError, match="denied:"):
                await session.get_prompt("every__simple-prompt")

    run(body)
    records = audit_records(setup, "every/resources.read")
    assert ("decision", "allow") in records and ("decision", "deny") in records


@pytest.mark.claim("gateway.enforces-pipeline")
def test_over_http_a_read_carries_a_proof_of_possession_like_any_call(setup: Setup) -> None:
    """The client helper signs the pseudo-call a read is decided as; without it, denied."""
    world = setup.world
    world.config.write_text(json.dumps({"servers": servers(setup),
                                        "limits": {"call_timeout_s": 20}}), encoding="utf-8")

    async def body(http: RunningGateway) -> None:
        async with http.client(WarrantAuth(Tokens.of(world))) as gw:
            assert await read_text(gw.session, "docs+file:///docs/readme.md") == (
                "Welcome to the docs.")
            with pytest.raises(MCPError) as outside:
                await gw.session.read_resource("docs+file:///private/payroll.csv")
            assert outside.value.code == DENIED
        async with http.client(WarrantAuth(Tokens.of(world), prove=False)) as gw:
            with pytest.raises(MCPError) as unproven:
                await gw.session.read_resource("docs+file:///docs/readme.md")
            # The caller learns only that it was refused; the audit record says why.
            assert unproven.value.code == DENIED
            assert "credential rejected" in unproven.value.message

    with serve_over_http(world, world.config) as http:
        run(lambda: body(http))
    # Only the proven, granted read reached the server.
    assert [e["uri"] for e in setup.received()] == ["file:///docs/readme.md"]
