"""`warrant sandbox run|profiles` as a user runs them (the group, before it is registered)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from warrant.cli._sandbox_cmds import sandbox_group
from warrant.enforce import TrustDomain


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(sandbox_group, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_run_exits_with_the_commands_status_and_prints_its_output(tmp_path: Path) -> None:
    code, out, err = run("run", "--home", str(tmp_path / "no-domain"), "--", "/bin/sh", "-c",
                         "echo hi; exit 3")
    assert (code, out) == (3, "hi\n")
    assert err == "sandbox: no trust domain here, so nothing was audited (see --home)\n"


def test_run_exits_124_on_timeout_and_reports_it_as_json() -> None:
    code, out, _ = run("run", "--timeout", "0.3", "--json", "--", "sleep", "5")
    assert code == 124
    data = json.loads(out)
    assert data["killed_by"] == "timeout" and data["violations"][0]["kind"] == "timeout"


def test_run_exits_125_when_the_sandbox_cannot_be_set_up(tmp_path: Path) -> None:
    code, _, err = run("run", "--profile", "no-such-profile", "--", "true")
    assert code == 125 and "no sandbox profile `no-such-profile`" in err


def test_run_records_egress_and_blocked_connections_in_the_audit_log(
        tmp_path: Path, domain: TrustDomain) -> None:
    config = tmp_path / "profiles.toml"
    config.write_text('[profile.web]\nnetwork = "egress-allowlist"\n'
                      'allowed_hosts = ["127.0.0.1:9"]\n')
    code, _, _ = run("run", "--home", str(domain.home), "--config", str(config),
                     "--profile", "web", "--", "curl", "-fsS", "-m", "5", "http://127.0.0.1:6379/")
    assert code != 0
    records = [e.record for e in domain.audit.tail(3)]
    assert [r.tool for r in records] == ["sandbox.egress", "sandbox.run", "sandbox.violation"]
    egress, violation = records[0].detail or {}, records[2].detail or {}
    assert egress["allowed"] is False and egress["port"] == 6379
    assert violation["kind"] == "egress-blocked"


def test_profiles_lists_built_ins_as_json() -> None:
    code, out, _ = run("profiles", "--json")
    assert code == 0
    assert [p["name"] for p in json.loads(out)] == [
        "egress-allowlist", "none-network", "readonly-workspace"]
