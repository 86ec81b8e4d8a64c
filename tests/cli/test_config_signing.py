"""Signed configuration: `warrant config sign|verify` and refusing to start on a modified one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli._run import warrant
from warrant.enforce import TrustDomain
from warrant.errors import ConfigError


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    TrustDomain.init(path, "acme.example").close()
    return path


def require_signed(home: Path, required: bool = True) -> None:
    config = home / "config.toml"
    text = config.read_text()
    old, new = ("false", "true") if required else ("true", "false")
    config.write_text(text.replace(f"require_signed_config = {old}",
                                   f"require_signed_config = {new}"))


@pytest.mark.claim("config.signed")
def test_a_signed_policy_directory_verifies_and_any_change_is_named(home: Path) -> None:
    policies = home / "policies"
    assert "signed" in warrant(home, "config", "sign", str(policies))
    assert "ok" in warrant(home, "config", "verify", str(policies))
    with (policies / "baseline.cedar").open("a") as f:
        f.write("\n// edited\n")
    (policies / "extra.cedar").write_text("// new\n")
    out = warrant(home, "config", "verify", str(policies), expect=2)
    assert "modified: baseline.cedar" in out and "added: extra.cedar" in out


@pytest.mark.claim("config.signed")
def test_a_domain_that_requires_signed_config_refuses_to_open_on_modified_policies(
        home: Path) -> None:
    require_signed(home)
    with pytest.raises(ConfigError, match="not signed"):
        TrustDomain.open(home)
    warrant(home, "config", "sign", str(home / "policies"), expect=2)  # cannot open to sign
    require_signed(home, required=False)
    warrant(home, "config", "sign", str(home / "policies"))
    require_signed(home)
    TrustDomain.open(home).close()
    (home / "policies" / "baseline.cedar").write_text("@id(\"x\") permit (principal, action, "
                                                      "resource);\n")
    with pytest.raises(ConfigError, match=r"modified: baseline\.cedar"):
        TrustDomain.open(home)


def test_a_forged_manifest_is_refused(home: Path) -> None:
    warrant(home, "config", "sign", str(home / "policies"))
    manifest = home / "policies" / ".warrant-signature.json"
    manifest.write_text(manifest.read_text().replace('"version": 1', '"version": 2'))
    assert "not signed by this domain" in warrant(home, "config", "verify",
                                                  str(home / "policies"), expect=2)


@pytest.mark.claim("config.signed")
def test_the_gateway_refuses_an_unsigned_config_when_the_domain_requires_signatures(
        home: Path, tmp_path: Path) -> None:
    gateway_config = tmp_path / "gateway.toml"
    gateway_config.write_text('[servers.time]\ncommand = ["python3", "-m", "mcp_server_time"]\n')
    warrant(home, "config", "sign", str(home / "policies"))
    require_signed(home)
    out = warrant(home, "gateway", "--config", str(gateway_config), expect=2)
    assert "not signed" in out
    require_signed(home, required=False)
    warrant(home, "config", "sign", str(gateway_config))
    require_signed(home)
    gateway_config.write_text(gateway_config.read_text() + "# edited\n")
    out = warrant(home, "gateway", "--config", str(gateway_config), expect=2)
    assert "modified: gateway.toml" in out
