"""The AI bill of materials of a real trust domain: agents, models, MCP pins, policies."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from cyclonedx.validation.xml import XmlValidator

from warrant.enforce import TrustDomain
from warrant.errors import ConfigError
from warrant.gateway import ToolDefinition
from warrant.governance import McpServerSpec, build_bom, declared_models, render_bom
from warrant.store import SqlitePins

CLOCK = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
SERIAL = uuid.UUID("00000000-0000-4000-8000-000000000001")
TIME_TOOL = ToolDefinition(server="time", name="get_current_time",
                           description="Get the current time in a timezone.",
                           input_schema={"type": "object",
                                         "properties": {"timezone": {"type": "string"}}},
                           annotations={"readOnlyHint": True})
SERVERS = [McpServerSpec("time", "stdio", command=("python", "-m", "mcp_server_time")),
           McpServerSpec("github", "http", url="https://bot:s3cret@mcp.example/github?key=k")]


@pytest.fixture
def world(domain: TrustDomain) -> TrustDomain:
    """Two agents (one declares its model), one active and one quarantined pinned tool."""
    domain.register_agent("billing", owner="finance", purpose="pays invoices")
    domain.register_agent("support", owner="service", purpose="answers mail")
    (domain.home / "governance.toml").write_text(
        '[organisation]\napprover = "user:carol"\n\n'
        '[agents.billing]\nmodel = "openai/gpt-4o@2024-08-06"\n'
        'model_card = "https://example.com/gpt-4o-card"\n', encoding="utf-8")
    pins = SqlitePins(domain.home / "state.db")
    try:
        pins.observe(TIME_TOOL.qualified_name, digest=TIME_TOOL.digest(),
                     definition=TIME_TOOL.to_json(), findings=[], now=time.time())
        pins.observe("evil/echo", digest="b" * 64, definition={"name": "echo"},
                     findings=[{"rule": "hidden-instruction"}], now=time.time())
    finally:
        pins.close()
    return domain


def bom_json(domain: TrustDomain, **kwargs: Any) -> dict[str, Any]:
    text = render_bom(build_bom(domain, servers=SERVERS, serial_number=SERIAL, timestamp=CLOCK,
                                **kwargs))
    data: dict[str, Any] = json.loads(text)
    return data


def by_ref(bom: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    stack = list(bom["components"])
    while stack:
        component = stack.pop()
        found[component["bom-ref"]] = component
        stack.extend(component.get("components", []))
    return found


def props(component: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in component.get("properties", [])}


def depends_on(bom: dict[str, Any], ref: str) -> list[str]:
    return next(d.get("dependsOn", []) for d in bom["dependencies"] if d["ref"] == ref)


def test_the_bom_validates_against_the_cyclonedx_1_6_schema_in_json_and_xml(
        world: TrustDomain) -> None:
    bom = build_bom(world, servers=SERVERS)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(render_bom(bom, "json")) is None
    assert XmlValidator(SchemaVersion.V1_6).validate_str(render_bom(bom, "xml")) is None


def test_the_subject_is_the_trust_domain_and_the_tool_is_warrant(world: TrustDomain) -> None:
    bom = bom_json(world)
    assert bom["specVersion"] == "1.6"
    assert bom["serialNumber"] == f"urn:uuid:{SERIAL}"
    subject = bom["metadata"]["component"]
    assert subject["bom-ref"] == "spiffe://acme.example"
    assert props(subject)["warrant:policy:revision"] == world.policies.revision
    tool = bom["metadata"]["tools"]["components"][0]
    assert tool["name"] == "warrant"
    assert tool["purl"].startswith("pkg:pypi/agent-warrant@")


def test_an_agent_with_a_declared_model_depends_on_that_model(world: TrustDomain) -> None:
    bom = bom_json(world)
    components = by_ref(bom)
    billing = components["spiffe://acme.example/agent/billing"]
    assert billing["type"] == "application"
    assert props(billing)["warrant:model"] == "openai/gpt-4o@2024-08-06"
    model = components["model:openai/gpt-4o@2024-08-06"]
    assert (model["type"], model["group"], model["name"], model["version"]) == (
        "machine-learning-model", "openai", "gpt-4o", "2024-08-06")
    assert model["externalReferences"] == [{"type": "model-card",
                                            "url": "https://example.com/gpt-4o-card"}]
    assert depends_on(bom, billing["bom-ref"]) == [model["bom-ref"]]


def test_an_agent_without_a_declaration_is_said_to_be_undeclared(world: TrustDomain) -> None:
    bom = bom_json(world)
    support = by_ref(bom)["spiffe://acme.example/agent/support"]
    assert props(support)["warrant:model"] == "undeclared"
    assert depends_on(bom, support["bom-ref"]) == []
    models = [c for c in bom["components"] if c["type"] == "machine-learning-model"]
    assert len(models) == 1  # nothing invented for `support`


def test_pinned_tools_carry_their_digest_and_status(world: TrustDomain) -> None:
    components = by_ref(bom_json(world))
    pinned = components["mcp-tool:time/get_current_time"]
    assert pinned["hashes"] == [{"alg": "SHA-256", "content": TIME_TOOL.digest()}]
    assert props(pinned)["warrant:mcp:tool-status"] == "active"
    quarantined = components["mcp-tool:evil/echo"]
    assert props(quarantined)["warrant:mcp:tool-status"] == "quarantined"
    assert props(components["mcp-server:evil"])["warrant:mcp:configured"] == "false"


def test_a_rug_pull_shows_the_digest_seen_next_to_the_pinned_one(world: TrustDomain) -> None:
    pins = SqlitePins(world.home / "state.db")
    try:
        pins.observe(TIME_TOOL.qualified_name, digest="c" * 64, definition={"name": "changed"},
                     findings=[], now=time.time())
    finally:
        pins.close()
    pinned = by_ref(bom_json(world))["mcp-tool:time/get_current_time"]
    assert pinned["hashes"][0]["content"] == TIME_TOOL.digest()
    assert props(pinned)["warrant:mcp:seen-digest"] == "sha256:" + "c" * 64
    assert props(pinned)["warrant:mcp:tool-status"] == "quarantined"


def test_servers_show_their_command_or_url_but_never_credentials(world: TrustDomain) -> None:
    bom = bom_json(world)
    components = by_ref(bom)
    assert props(components["mcp-server:time"])["warrant:mcp:command"] == (
        "python -m mcp_server_time")
    assert props(components["mcp-server:github"])["warrant:mcp:url"] == (
        "https://mcp.example/github")
    assert "s3cret" not in json.dumps(bom)
    assert "key=k" not in json.dumps(bom)


def test_each_policy_file_is_listed_with_the_hash_of_its_bytes(world: TrustDomain) -> None:
    components = by_ref(bom_json(world))
    policy_dir = world.home / "policies"
    files = sorted([*policy_dir.glob("*.cedar"), policy_dir / "schema.cedarschema"])
    assert files
    for path in files:
        listed = components[f"policy:{path.name}"]
        assert listed["hashes"] == [{"alg": "SHA-256",
                                     "content": hashlib.sha256(path.read_bytes()).hexdigest()}]
        assert props(listed)["warrant:policy:revision"] == world.policies.revision


def test_the_running_python_packages_are_listed_with_purls(world: TrustDomain) -> None:
    components = by_ref(bom_json(world))
    libraries = {c["name"].lower(): c for c in components.values() if c["type"] == "library"}
    cedar = libraries["cedarpy"]
    assert cedar["purl"] == f"pkg:pypi/cedarpy@{cedar['version']}"
    assert "agent-warrant" in libraries
    assert "cyclonedx-python-lib" in libraries


def test_the_same_state_with_a_fixed_serial_and_clock_gives_the_same_bom(
        world: TrustDomain) -> None:
    assert bom_json(world) == bom_json(world)


def test_a_models_file_overrides_governance_toml_agent_by_agent(
        world: TrustDomain, tmp_path: Path) -> None:
    extra = tmp_path / "models.toml"
    extra.write_text('[agents.support]\nmodel = "anthropic/claude-sonnet"\n', encoding="utf-8")
    declared = declared_models(world.home, extra)
    components = by_ref(bom_json(world, declarations=declared))
    assert props(components["spiffe://acme.example/agent/billing"])["warrant:model"] == (
        "openai/gpt-4o@2024-08-06")
    model = components["model:anthropic/claude-sonnet"]
    assert "version" not in model


@pytest.mark.parametrize(("text", "message"), [
    ('[agents.billing]\nmodel = "gpt-4o"\n', "agents.billing.model"),
    ('[agents.billing]\nmodel = "openai/gpt-4o"\nmodle_card = "x"\n', "modle_card"),
    ("[agents.billing\n", "not valid TOML"),
])
def test_a_bad_models_file_is_a_config_error_naming_the_problem(
        world: TrustDomain, tmp_path: Path, text: str, message: str) -> None:
    bad = tmp_path / "models.toml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        declared_models(world.home, bad)


def test_a_declaration_for_an_unknown_agent_is_refused(world: TrustDomain) -> None:
    (world.home / "governance.toml").write_text('[agents.biling]\nmodel = "openai/gpt-4o"\n',
                                                encoding="utf-8")
    with pytest.raises(ConfigError, match="`biling`, which is not registered"):
        build_bom(world)
