"""Profiles: safe built-ins, and files parsed strictly at the edge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from warrant.sandbox import (
    BUILTIN_PROFILES,
    DEFAULT_PROFILE,
    SandboxProfileError,
    get_profile,
    load_profiles,
)

pytestmark = pytest.mark.no_bwrap_needed


def test_the_default_profile_has_no_network_and_no_binds() -> None:
    profile = get_profile()
    assert profile.name == DEFAULT_PROFILE == "none-network"
    assert (profile.network, profile.binds, profile.workspace) == ("none", (), "none")
    assert set(BUILTIN_PROFILES) == {"none-network", "egress-allowlist", "readonly-workspace"}


def test_profiles_load_from_toml_with_their_limits(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.toml"
    path.write_text('[profile.py-tool]\nbinds = ["/opt/tool"]\nworkspace = "read-only"\n'
                    '[profile.py-tool.limits]\ncpu_seconds = 5\noutput_bytes = 4096\n')
    profile = load_profiles(path)["py-tool"]
    assert profile.binds == ("/opt/tool",) and profile.workspace == "read-only"
    assert (profile.limits.cpu_seconds, profile.limits.output_bytes) == (5, 4096)
    assert profile.limits.nproc == 64


def test_profiles_load_from_json(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    path.write_text(json.dumps({"profile": {"api": {"network": "egress-allowlist",
                                                     "allowed_hosts": ["api.example.com:443"]}}}))
    assert load_profiles(path)["api"].allowed_hosts == ("api.example.com:443",)


@pytest.mark.parametrize(("body", "message"), [
    ('[profile.x]\nnetwrok = "none"\n', "Extra inputs are not permitted"),
    ('[profile.x.limits]\ncpu = 5\n', "Extra inputs are not permitted"),
    ('[sandbox]\n', "unknown top-level keys"),
    ('[profile.x]\nbinds = ["/root"]\n', "would expose all of `/root`"),
    ('[profile.x]\nbinds = ["/"]\n', "other than `/`"),
    ('[profile.x]\nbinds = ["/etc/shadow"]\n', "never bound"),
    ('[profile.x]\nbinds = ["/home/me/.ssh"]\n', "credential store"),
    ('[profile.x]\nbinds = ["/usr/../root"]\n', "normalised"),
    ('[profile.x]\nallowed_hosts = ["a.example"]\n', "network is `none`"),
    ('[profile.X]\n', "not a profile name"),
])
def test_invalid_profiles_are_rejected_clearly(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "sandbox.toml"
    path.write_text(body)
    with pytest.raises(SandboxProfileError, match=message.replace("(", r"\(")):
        load_profiles(path)


def test_unknown_profile_names_list_the_known_ones() -> None:
    with pytest.raises(SandboxProfileError, match="known: egress-allowlist, none-network"):
        get_profile("nope")
