"""Engine mechanics: backpressure, metrics, and the CLI over the incident tables."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

from click.testing import CliRunner

from tests.conftest import AgentKit
from warrant.cli._incident_cmds import incidents_group, metrics
from warrant.enforce import Pipeline, TrustDomain
from warrant.response import (
    Alert,
    Detection,
    Event,
    ResponseEngine,
    Severity,
    response_metrics,
)

from .conftest import Watch


def test_a_full_queue_raises_an_alert_and_decisions_are_unaffected(
        domain: TrustDomain, watch: Watch, pipeline: Pipeline, agent: AgentKit) -> None:
    release, busy = threading.Event(), threading.Event()

    def stuck(event: Event, state: dict[str, Any]) -> Iterable[Alert]:
        busy.set()
        release.wait(10)  # the worker is wedged until the test lets go
        return ()

    engine = ResponseEngine(domain, [Detection("test.stuck", Severity.LOW, "blocks", stuck)],
                            playbooks=[], queue_size=2)
    engine.observe(watch)
    with engine:
        assert pipeline.decide(agent.request("read_file", path="a")).allowed
        assert busy.wait(5)
        decisions = [pipeline.decide(agent.request("read_file", path="a")) for _ in range(5)]
        assert all(d.allowed for d in decisions)
        _, _alert = watch.wait("alert", lambda i, d: d["detection"] == "response.backpressure")
        assert engine.dropped >= 1
        release.set()
        assert engine.drain()
        assert watch.kinds().count("alert") == 1  # one alert per burst


def test_metrics_and_the_incident_commands(
        domain: TrustDomain, engine: ResponseEngine, watch: Watch, pipeline: Pipeline,
        agent: AgentKit) -> None:
    for _ in range(5):
        pipeline.decide(agent.request("drop_table"))
    incident_id, _ = watch.wait("contained")
    watch.wait("triaged", lambda i, d: i == incident_id)
    assert engine.drain()
    home = ["--home", str(domain.home)]
    runner = CliRunner()

    listed = runner.invoke(incidents_group, ["list", "--json", *home])
    assert listed.exit_code == 0, listed.output
    assert incident_id in {i["incident_id"] for i in json.loads(listed.output)}
    shown = runner.invoke(incidents_group, ["show", incident_id, "--json", *home])
    assert json.loads(shown.output)["evidence"]["records"]
    human = runner.invoke(incidents_group, ["show", incident_id, *home])
    assert human.exit_code == 0, human.output
    assert "blast radius:  agent: spiffe://" in human.output  # read by a person: no dicts
    assert "{'" not in human.output
    acked = runner.invoke(incidents_group, ["ack", incident_id, "--by", "user:alice", "--json",
                                            *home])
    assert json.loads(acked.output)["acked_by"] == "user:alice"
    after_ack = runner.invoke(incidents_group, ["list", *home]).output
    assert "acked by user:alice" in after_ack
    closed = runner.invoke(incidents_group, ["close", incident_id, "--by", "user:alice", *home])
    assert closed.exit_code == 0, closed.output

    data = response_metrics(engine.incidents)
    assert data["time_to_contain"]["count"] == 1
    assert data["dwell_time"]["count"] == 1
    assert data["coverage"]["ratio"] == 1.0
    out = runner.invoke(metrics, ["--json", *home])
    assert json.loads(out.output)["incidents"]["by_status"]["closed"] == 1
    assert "coverage" in runner.invoke(metrics, home).output
