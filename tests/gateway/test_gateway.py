"""The real gateway, a real MCP client, a published MCP server and a malicious one."""

from __future__ import annotations

import socket
import sqlite3
import subprocess

import anyio
import pytest
from click.testing import CliRunner

from tests.gateway._cli import cli_group, command_prefix
from tests.gateway.conftest import ROOT, World, run
from warrant.enforce import TrustDomain
from warrant.gateway import HttpServer
from warrant.gateway._upstream import Upstream
from warrant.types import RevocationKind


@pytest.mark.claim("gateway.enforces-pipeline")
def test_an_allowed_call_reaches_the_real_time_server(world: World) -> None:
    async def body() -> None:
        async with world.client("time") as gw:
            is_error, text = await gw.call("time__get_current_time", timezone="Europe/Paris")
            assert not is_error, text
            assert '"timezone": "Europe/Paris"' in text

    run(body)
    with TrustDomain.open(world.home) as domain:
        records = [e.record for e in domain.audit.tail(40)]
    kinds = {(r.kind, r.tool) for r in records}
    assert ("decision", "time/get_current_time") in kinds
    assert ("outcome", "time/get_current_time") in kinds


def test_a_calls_trace_context_in_mcp_meta_links_its_decision_to_the_agents_trace(
        world: World) -> None:
    # The MCP SDK makes `_meta.traceparent` the current OpenTelemetry context while the
    # handler runs (mcp/shared/_otel.py); the decision's span joins it, and the audit
    # record keeps the trace id.
    from mcp import types

    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"

    async def body() -> None:
        async with world.client("time") as gw:
            assert gw.session is not None
            result = await gw.session.call_tool(
                "time__get_current_time", {"timezone": "Europe/Paris"},
                meta=types.RequestParamsMeta(traceparent=traceparent))  # type: ignore[typeddict-unknown-key]
            assert isinstance(result, types.CallToolResult)
            assert not result.is_error, result.content

    run(body)
    with TrustDomain.open(world.home) as domain:
        decisions = [e.record for e in domain.audit.tail(40) if e.record.kind == "decision"]
    assert decisions[-1].detail is not None
    assert decisions[-1].detail["trace_id"] == trace_id


@pytest.mark.claim("gateway.least-privilege-discovery")
def test_tools_outside_the_warrant_are_hidden_and_denied(world: World) -> None:
    async def body() -> None:
        async with world.client("time") as gw:
            names = await gw.tool_names()
            assert "time__get_current_time" in names
            assert "time__convert_time" not in names  # not granted
            is_error, text = await gw.call("time__convert_time", source_timezone="UTC",
                                           time="12:00", target_timezone="Europe/Paris")
            assert is_error
            assert "not granted by the warrant" in text
            for name in ("nope__tool", "no_separator", "time__does_not_exist"):
                is_error, text = await gw.call(name)
                assert is_error
                assert "not known" in text or "unknown tool" in text

    run(body)


@pytest.mark.claim("gateway.enforces-pipeline")
def test_an_argument_outside_its_constraint_is_denied_before_the_upstream(world: World) -> None:
    async def body() -> None:
        async with world.client("time") as gw:
            is_error, text = await gw.call("time__get_current_time", timezone="Asia/Tokyo")
            assert is_error
            assert "denied:" in text and "Europe/" in text

    run(body)


@pytest.mark.claim("gateway.enforces-pipeline")
def test_a_task_revoked_mid_session_is_denied(world: World) -> None:
    async def body() -> None:
        async with world.client("time") as gw:
            assert not (await gw.call("time__get_current_time", timezone="Europe/Rome"))[0]
            with TrustDomain.open(world.home) as domain:
                domain.revoke(RevocationKind.TASK, world.task_id, "test")
            is_error, text = await gw.call("time__get_current_time", timezone="Europe/Rome")
            assert is_error
            assert "revoked" in text
            assert await gw.tool_names() == set()

    run(body)


@pytest.mark.claim("gateway.rug-pull-quarantine")
def test_a_description_changed_mid_session_quarantines_the_tool(world: World) -> None:
    async def body() -> None:
        async with world.client("evil") as gw:
            assert (await gw.call("evil__echo", text="hi")) == (False, "hi")
            assert not (await gw.call("evil__mutate"))[0]
            await gw.tools_changed.wait()  # the gateway re-listed and told us
            assert "evil__echo" not in await gw.tool_names()
            is_error, text = await gw.call("evil__echo", text="hi")
            assert is_error
            assert "quarantined" in text and "warrant tools approve evil/echo" in text
            shown = CliRunner().invoke(cli_group(), ["tools", "show", "evil/echo", "--home",
                                                     str(world.home)])
            assert shown.exit_code == 0, shown.output
            assert "quarantined" in shown.output and "collector.evil.example" in shown.output
            listed = CliRunner().invoke(cli_group(), ["tools", "list", "--home",
                                                      str(world.home)])
            assert listed.exit_code == 0, listed.output
            (line,) = [x for x in listed.output.splitlines() if x.startswith("evil/echo ")]
            assert line.split()[-1] == "quarantined"

    run(body)


def test_an_approved_definition_is_usable_again_in_the_same_session(world: World) -> None:
    async def body() -> None:
        async with world.client("evil") as gw:
            assert not (await gw.call("evil__mutate"))[0]
            await gw.tools_changed.wait()
            assert (await gw.call("evil__echo", text="hi"))[0]
            approved = CliRunner().invoke(cli_group(), [
                "tools", "approve", "evil/echo", "--by", "user:alice", "--home",
                str(world.home)])
            assert approved.exit_code == 0, approved.output
            assert "evil__echo" in await gw.tool_names()
            assert (await gw.call("evil__echo", text="again")) == (False, "again")

    run(body)


@pytest.mark.claim("gateway.rug-pull-quarantine")
def test_a_poisoned_description_is_quarantined_at_first_sight(world: World) -> None:
    async def body() -> None:
        async with world.client("evil") as gw:
            assert "evil__audit_log" not in await gw.tool_names()
            is_error, text = await gw.call("evil__audit_log", note="x")
            assert is_error
            assert "quarantined" in text and "poisoning" in text

    run(body)
    shown = CliRunner().invoke(cli_group(), ["tools", "show", "evil/audit_log", "--json",
                                             "--home", str(world.home)])
    assert shown.exit_code == 0, shown.output
    assert '"findings": [' in shown.output and '"status": "quarantined"' in shown.output


def test_an_upstream_that_hangs_times_out_and_the_next_call_works(world: World) -> None:
    async def body() -> None:
        async with world.client("evil") as gw:
            is_error, text = await gw.call("evil__hang")
            assert is_error
            assert "did not answer within 1.5s" in text
            assert (await gw.call("evil__echo", text="still here")) == (False, "still here")

    run(body)


def test_an_upstream_crash_is_an_error_result_and_other_servers_keep_working(
        world: World) -> None:
    async def body() -> None:
        async with world.client() as gw:
            is_error, text = await gw.call("evil__crash")
            assert is_error
            assert "upstream `evil`" in text
            is_error, text = await gw.call("evil__echo", text="x")
            assert is_error and "upstream" in text
            assert not (await gw.call("time__get_current_time", timezone="Europe/Oslo"))[0]

    run(body)


def test_a_crashed_upstream_is_started_again_and_serves_the_next_calls(world: World) -> None:
    limits = {"call_timeout_s": 1.5, "max_message_bytes": 200_000, "restart_after_s": 0.2}

    async def body() -> None:
        async with world.client("evil", config_extra={"limits": limits}) as gw:
            assert (await gw.call("evil__crash"))[0]
            answers = []
            with anyio.fail_after(20):
                while True:
                    answers.append(await gw.call("evil__echo", text="back"))
                    if answers[-1] == (False, "back"):
                        break
                    await anyio.sleep(0.1)
            # Until it was back, each call got an error result, never an upstream answer.
            assert all(is_error and "upstream" in text for is_error, text in answers[:-1])

    run(body)


def test_an_upstream_that_keeps_crashing_stays_down_and_says_so(world: World) -> None:
    limits = {"call_timeout_s": 1.5, "max_message_bytes": 200_000, "max_restarts": 0}

    async def body() -> None:
        async with world.client("evil", config_extra={"limits": limits}) as gw:
            assert (await gw.call("evil__crash"))[0]
            with anyio.fail_after(10):
                while "not restarted" not in (text := (await gw.call("evil__echo", text="x"))[1]):
                    await anyio.sleep(0.1)
            assert "restart the gateway once the server is fixed" in text

    run(body)


def test_an_oversized_result_is_dropped(world: World) -> None:
    async def body() -> None:
        async with world.client("evil") as gw:
            is_error, text = await gw.call("evil__flood", size=500_000)
            assert is_error
            assert "more than the 200000 allowed" in text
            assert not (await gw.call("evil__flood", size=1000))[0]

    run(body)


@pytest.mark.claim("gateway.fail-closed")
def test_without_a_credential_every_call_is_denied_and_nothing_is_listed(world: World) -> None:
    async def body() -> None:
        async with world.client("time", WARRANT_CREDENTIAL_FILE=None) as gw:
            assert await gw.tool_names() == set()
            for name in ("time__get_current_time", "time__convert_time", "nope__x"):
                is_error, text = await gw.call(name, timezone="Europe/Paris")
                assert is_error
                assert text == "denied: credential rejected"

    run(body)


@pytest.mark.claim("gateway.fail-closed")
def test_a_credential_with_the_wrong_key_is_rejected_the_same_way(world: World) -> None:
    with TrustDomain.open(world.home) as domain:
        _, other_key = domain.register_agent("other", owner="ops", purpose="impostor")
    assert other_key is not None

    async def body() -> None:
        async with world.client("time", WARRANT_AGENT_KEY_FILE=str(other_key)) as gw:
            assert await gw.tool_names() == set()
            is_error, text = await gw.call("time__get_current_time", timezone="Europe/Rome")
            assert is_error
            assert text == "denied: credential rejected"

    run(body)


def test_a_malformed_config_is_a_clear_error_with_exit_status_2(world: World) -> None:
    world.config.write_text('{"servers": {"t": {"command": ["x"]}}, "limitz": {}}',
                            encoding="utf-8")
    done = subprocess.run([*command_prefix(), "gateway", "--config", str(world.config)],
                          env=world.env(), cwd=ROOT, capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: gateway config"), done.stderr
    assert "`limitz` is not a known key" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.claim("response.auto-containment")
def test_an_agent_that_keeps_getting_denied_is_contained_by_the_gateways_response_engine(
        world: World) -> None:
    def task_revoked() -> bool:
        with sqlite3.connect(world.home / "state.db") as conn:
            return conn.execute("SELECT 1 FROM revocations WHERE kind = 'task' AND value = ?",
                                (world.task_id,)).fetchone() is not None

    async def body() -> None:
        async with world.client("time") as gw:
            for _ in range(5):  # the default playbook contains after 5 denials
                is_error, _ = await gw.call("time__get_current_time", timezone="Asia/Tokyo")
                assert is_error
            # Containment runs on the engine's worker thread: wait for it, bounded.
            with anyio.fail_after(10):
                while not task_revoked():
                    await anyio.sleep(0.02)
            is_error, text = await gw.call("time__get_current_time", timezone="Europe/Rome")
            assert is_error and "revoked" in text

    run(body)


@pytest.mark.claim("response.auto-containment")
def test_a_canary_from_the_domain_config_contains_the_agent_through_the_gateway(
        world: World) -> None:
    canary = "HONEY-7f3a9c-DECOY"
    config = world.home / "config.toml"
    config.write_text(config.read_text().replace("response_canaries = []",
                                                 f'response_canaries = ["{canary}"]'))

    async def body() -> None:
        async with world.client("time") as gw:
            # The call that carries the canary is audited, and contained inline.
            await gw.call("time__get_current_time", timezone="Europe/Paris", note=canary)
            is_error, text = await gw.call("time__get_current_time", timezone="Europe/Rome")
            assert is_error and "denied" in text

    run(body)


def test_an_unreachable_http_upstream_says_why_it_is_down() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def no_tools(upstream: Upstream, tools: object) -> None:
        raise AssertionError("nothing to list")

    upstream = Upstream("up", HttpServer(url=f"http://127.0.0.1:{port}/mcp"), no_tools,
                        max_restarts=0)

    async def body() -> None:
        with anyio.fail_after(30):
            await upstream.run()

    run(body)
    assert upstream.error is not None
    # The cause, not the transport's "unhandled errors in a TaskGroup".
    assert "TaskGroup" not in upstream.error, upstream.error
    assert upstream.error.startswith("ConnectError: "), upstream.error
