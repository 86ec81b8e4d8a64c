"""Playbooks: parsing at the edge, approval gates, and steps that fail safe."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from tests.conftest import AgentKit
from warrant import identity, warrants
from warrant.enforce import Pipeline, TrustDomain
from warrant.errors import ConfigError, IdentityError
from warrant.response import (
    PLAYBOOK_DIR,
    DetectionConfig,
    ResponseEngine,
    StepMode,
    default_playbooks,
    domain_playbooks,
    parse_playbook,
)
from warrant.types import RevocationKind

from .conftest import CANARY, Watch


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens here any more: connections are refused


def engine_with(domain: Any, playbook_yaml: str, watch: Watch) -> ResponseEngine:
    engine = ResponseEngine(domain, playbooks=[parse_playbook(playbook_yaml)],
                            config=DetectionConfig(canaries=(CANARY,)))
    engine.observe(watch)
    return engine


def canary_call(pipeline: Pipeline, agent: AgentKit) -> None:
    pipeline.decide(agent.request("send_email", to="ops@acme.example", body=CANARY))


def test_default_playbooks_gate_suspension_behind_approval_except_for_critical() -> None:
    modes = {p.id: {s.action: s.mode for s in p.steps} for p in default_playbooks()}
    assert modes["critical-contain"]["suspend_agent"] is StepMode.AUTOMATIC
    assert modes["high-contain"]["revoke_task"] is StepMode.AUTOMATIC
    assert modes["high-contain"]["suspend_agent"] is StepMode.NEEDS_APPROVAL
    # Medium narrows the task to read-only at once (not high-impact: the agent stays
    # online); low only tells a human.
    assert modes["medium-narrow"] == {"narrow": StepMode.AUTOMATIC, "notify": StepMode.AUTOMATIC}
    assert set(modes["low-notify"]) == {"notify"}


@pytest.mark.parametrize(("text", "problem"), [
    ("id: x\nmatch: {severities: [high]}\nsteps: [{action: notify}]\nsurprise: 1", "surprise"),
    ("id: x\nmatch: {severities: [high]}\nsteps: [{action: format_disk}]", "action"),
    ("id: x\nmatch: {severities: [high]}\nsteps: [{action: kill_switch, mode: automatic}]",
     "pre_authorised"),
    ("id: x\nmatch: {severities: [high]}\nsteps: []", "steps"),
    ("- not a mapping", "invalid"),
])
def test_invalid_playbooks_are_rejected_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_playbook(text, "test.yaml")


def test_high_impact_steps_default_to_needing_approval() -> None:
    book = parse_playbook("id: x\nmatch: {severities: [critical]}\n"
                          "steps: [{action: quarantine_agent}, {action: revoke_task}]")
    assert [s.mode for s in book.steps] == [StepMode.NEEDS_APPROVAL, StepMode.AUTOMATIC]


@pytest.mark.claim("response.fail-safe-playbooks")
def test_a_dead_webhook_never_stops_containment(
        domain: TrustDomain, watch: Watch, pipeline: Pipeline, agent: AgentKit) -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook"
    engine = engine_with(domain, f"""
id: notify-first
match: {{severities: [critical]}}
pre_authorised: true
steps:
  - {{action: notify, url: "{url}", retries: 1, timeout_seconds: 0.5}}
  - {{action: revoke_task}}
  - {{action: suspend_agent, mode: automatic}}
""", watch)
    with engine:
        canary_call(pipeline, agent)
        assert "contained" in watch.kinds()
        assert not pipeline.decide(agent.request("read_file", path="a")).allowed
        _, delivery = watch.wait("notified")
        assert delivery["ok"] is False and delivery["error"]


@pytest.mark.claim("response.fail-safe-playbooks")
def test_a_step_needing_approval_waits_for_a_human(
        domain: TrustDomain, watch: Watch, pipeline: Pipeline, agent: AgentKit) -> None:
    engine = engine_with(domain, """
id: ask-first
match: {severities: [critical]}
steps: [{action: suspend_agent}]
""", watch)
    with engine:
        canary_call(pipeline, agent)
        incident_id, pending = watch.wait("pending")
        assert pending["action"] == "suspend_agent"
        assert "contained" not in watch.kinds()
        assert pipeline.decide(agent.request("read_file", path="a")).allowed

        with pytest.raises(ConfigError):
            engine.approve(incident_id, "suspend_agent", by="spiffe://acme.example/agent/x")
        assert engine.approve(incident_id, "suspend_agent", by="user:alice") == 1
        assert not pipeline.decide(agent.request("read_file", path="a")).allowed


class BrokenTaskRevocation:
    """The real domain, except that revoking a task fails (a store outage, say)."""

    def __init__(self, domain: TrustDomain):
        self._domain = domain

    def __getattr__(self, name: str) -> Any:
        return getattr(self._domain, name)

    def revoke(self, kind: RevocationKind, value: str, reason: str) -> bool:
        if kind is RevocationKind.TASK:
            raise OSError("store unavailable")
        return self._domain.revoke(kind, value, reason)


@pytest.fixture
def revocations(domain: TrustDomain) -> set[tuple[str, str]]:
    return {(k, v) for k, v, _, _ in domain.store.list_revocations()}


@pytest.mark.claim("response.fail-safe-playbooks")
def test_a_failing_step_never_leaves_the_agent_more_privileged(
        domain: TrustDomain, watch: Watch, pipeline: Pipeline, agent: AgentKit,
        revocations: set[tuple[str, str]]) -> None:
    engine = engine_with(BrokenTaskRevocation(domain), """
id: contain
match: {severities: [critical]}
pre_authorised: true
steps:
  - {action: revoke_task}
  - {action: suspend_agent, mode: automatic}
""", watch)
    with engine:
        canary_call(pipeline, agent)
        incident_id, failed = watch.wait("step-failed")
        assert failed["action"] == "revoke_task" and "store unavailable" in failed["error"]
        watch.wait("contained")
        detections = {a["detection"] for a in engine.incidents.alerts(incident_id)}
        assert "response.step-failed" in detections
    after = {(k, v) for k, v, _, _ in domain.store.list_revocations()}
    assert revocations <= after  # nothing was ever un-revoked
    assert not pipeline.decide(agent.request("read_file", path="a")).allowed
    with pytest.raises(IdentityError, match="suspended"):  # and no new task either
        domain.mint(agent=agent.name, task="again",
                    tools=[warrants.parse_tool_spec("read_file")])


def test_steps_without_a_target_are_skipped_not_failed(
        domain: TrustDomain, watch: Watch) -> None:
    with engine_with(domain, """
id: rug
match: {severities: [high]}
steps: [{action: revoke_task}]
""", watch):
        domain.record_admin("tool.quarantined", {"tool": "files/read"})
        _, done = watch.wait("action")
        assert done["status"] == "skipped"
        assert "step-failed" not in watch.kinds()




NOTIFY_ONLY = """version: 1
id: notify-everything
description: our own playbook
match:
  severities: [critical, high, medium, low]
steps:
  - action: notify
"""


def test_a_domain_runs_its_own_playbooks_and_only_signed_ones_when_required(
        domain: TrustDomain) -> None:
    assert [p.id for p in domain_playbooks(domain.home, domain.public_key,
                                           require_signed=True)] == [
        p.id for p in default_playbooks()]  # no directory: the shipped ones
    (domain.home / PLAYBOOK_DIR).mkdir()
    (domain.home / PLAYBOOK_DIR / "ours.yaml").write_text(NOTIFY_ONLY)
    assert [p.id for p in domain_playbooks(domain.home, domain.public_key,
                                           require_signed=False)] == ["notify-everything"]
    with pytest.raises(ConfigError, match="is not signed"):
        domain_playbooks(domain.home, domain.public_key, require_signed=True)
    identity.sign_bundle(domain.keys.signing_key, domain.home / PLAYBOOK_DIR)
    assert domain_playbooks(domain.home, domain.public_key, require_signed=True)
    (domain.home / PLAYBOOK_DIR / "ours.yaml").write_text(NOTIFY_ONLY.replace(
        "notify-everything", "tampered"))
    with pytest.raises(ConfigError, match="does not match its signature"):
        domain_playbooks(domain.home, domain.public_key, require_signed=True)
