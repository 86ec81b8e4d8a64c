"""`warrant sandbox run|profiles` as a user runs them (the group, before it is registered)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from warrant.cli._sandbox_cmds import sandbox_group


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


def test_run_exits_125_when_the_sandbox_cannot_run_the_profile() -> None:
    code, _, err = run("run", "--profile", "egress-allowlist", "--", "true")
    assert code == 125 and "not yet supported" in err


def test_profiles_lists_built_ins_as_json() -> None:
    code, out, _ = run("profiles", "--json")
    assert code == 0
    assert [p["name"] for p in json.loads(out)] == [
        "egress-allowlist", "none-network", "readonly-workspace"]
