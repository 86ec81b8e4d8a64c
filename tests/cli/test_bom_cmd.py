"""`warrant bom` as a user runs it: a real process, a real domain home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli._run import warrant


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bom") / "home"
    warrant(path, "init", "--domain", "acme.example")
    warrant(path, "agent", "register", "billing", "--owner", "finance", "--purpose", "pays")
    warrant(path, "agent", "register", "support", "--owner", "service", "--purpose", "answers")
    (path / "governance.toml").write_text(
        '[agents.billing]\nmodel = "openai/gpt-4o@2024-08-06"\n', encoding="utf-8")
    return path


def models(bom: dict[str, object]) -> dict[str, str]:
    components = bom["components"]
    assert isinstance(components, list)
    return {c["name"]: p["value"] for c in components for p in c.get("properties", [])
            if p["name"] == "warrant:model"}


def test_bom_prints_cyclonedx_json_to_stdout(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[servers.time]\ncommand = ["python", "-m", "mcp_server_time"]\n'
                      '[servers.time.env]\nTOKEN = "s3cret"\n', encoding="utf-8")
    out = warrant(home, "bom", "--gateway-config", str(config))
    bom = json.loads(out)
    assert (bom["bomFormat"], bom["specVersion"]) == ("CycloneDX", "1.6")
    assert models(bom) == {"billing": "openai/gpt-4o@2024-08-06", "support": "undeclared"}
    assert any(c["bom-ref"] == "mcp-server:time" for c in bom["components"])
    assert "s3cret" not in out


def test_bom_out_writes_the_file_and_xml_is_available(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "bom.xml"
    warrant(home, "bom", "--format", "xml", "--out", str(target),
            "--serial-number", "00000000-0000-4000-8000-000000000002")
    text = target.read_text(encoding="utf-8")
    assert 'xmlns="http://cyclonedx.org/schema/bom/1.6"' in text
    assert 'serialNumber="urn:uuid:00000000-0000-4000-8000-000000000002"' in text


def test_a_models_file_declares_models_for_agents(home: Path, tmp_path: Path) -> None:
    extra = tmp_path / "models.toml"
    extra.write_text('[agents.support]\nmodel = "anthropic/claude-sonnet@4"\n', encoding="utf-8")
    bom = json.loads(warrant(home, "bom", "--models", str(extra)))
    assert models(bom)["support"] == "anthropic/claude-sonnet@4"


@pytest.mark.parametrize(("text", "message"), [
    ('[agents.support]\nmodel = "claude"\n', "models file"),
    ('[agents.nobody]\nmodel = "a/b"\n', "`nobody`, which is not registered"),
    ("not toml = = =\n", "is not valid TOML"),
])
def test_a_bad_models_file_exits_2_with_a_clear_message(home: Path, tmp_path: Path, text: str,
                                                        message: str) -> None:
    bad = tmp_path / "models.toml"
    bad.write_text(text, encoding="utf-8")
    out = warrant(home, "bom", "--models", str(bad), expect=2)
    assert message in out
    assert "hint:" in out


def test_an_unreadable_gateway_config_exits_2(home: Path, tmp_path: Path) -> None:
    out = warrant(home, "bom", "--gateway-config", str(tmp_path / "missing.toml"), expect=2)
    assert "cannot read gateway config" in out
