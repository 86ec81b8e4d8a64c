"""The `warrant` command line, run as a user runs it: a real process, real files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli._run import warrant


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "home"
    warrant(path, "init", "--domain", "acme.example")
    warrant(path, "agent", "register", "billing", "--owner", "finance", "--purpose", "pays")
    warrant(path, "tools", "add", "transfer", "--risk", "money-movement")
    warrant(path, "tools", "add", "read_file", "--risk", "read-only")
    return path


def test_the_whole_core_loop_from_the_command_line(home: Path) -> None:
    cred = json.loads(warrant(home, "credential", "issue", "billing", "--ttl", "5m", "--json"))
    assert cred["agent_id"] == "spiffe://acme.example/agent/billing"
    minted = json.loads(warrant(home, "mint", "--agent", "billing", "--task", "pay invoice 7",
                                "--tool", "transfer:amount=0..100", "--tool", "read_file",
                                "--budget", "5", "--json"))
    (home / "w.tok").write_text(minted["token"])
    (home / "c.tok").write_text(cred["token"])
    described = warrant(home, "inspect", "@" + str(home / "w.tok"))
    assert "transfer" in described and "0..100" in described

    key = str(home / "agents" / "billing.key")
    base = ["check", "--warrant", f"@{home / 'w.tok'}", "--credential", f"@{home / 'c.tok'}",
            "--agent-key", key, "--json"]
    allowed = json.loads(warrant(home, *base, "--tool", "transfer", "--args", '{"amount": 50}'))
    assert allowed["effect"] == "allow"
    denied = json.loads(warrant(home, *base, "--tool", "transfer", "--args", '{"amount": 500}',
                                expect=1))
    assert denied["reasons"][0]["code"] == "warrant.argument-constraint"

    # Narrowed to reads: payments stop, reading goes on.
    warrant(home, "revoke", "--task", minted["task_id"], "--narrow", "money-movement")
    narrowed = json.loads(warrant(home, *base, "--tool", "transfer", "--args", '{"amount": 5}',
                                  expect=1))
    assert narrowed["reasons"][-1]["code"] == "narrowed"
    assert json.loads(warrant(home, *base, "--tool", "read_file", "--args",
                              '{"path": "a"}'))["effect"] == "allow"
    inspected = json.loads(warrant(home, "inspect", "@" + str(home / "w.tok"), "--json"))
    assert list(inspected["narrowed"]) == ["money-movement"] and not inspected["revoked"]
    assert "NARROWED (money-movement)" in warrant(home, "inspect", "@" + str(home / "w.tok"))

    warrant(home, "revoke", "--task", minted["task_id"])
    revoked = json.loads(warrant(home, *base, "--tool", "read_file", "--args", "{}", expect=1))
    assert revoked["reasons"][0]["code"] == "revoked"

    report = json.loads(warrant(home, "audit", "verify", "--json"))
    assert report["ok"] and report["size"] >= 8 and report["checkpoints_checked"] >= 1
    tail = json.loads(warrant(home, "audit", "tail", "-n", "3", "--json"))
    assert [r["kind"] for r in tail][-1] == "decision"
    proof = json.loads(warrant(home, "audit", "proof", "--seq", "0", "--json"))
    assert proof["kind"] == "inclusion"


def test_a_check_without_proof_of_possession_is_denied(home: Path) -> None:
    cred = json.loads(warrant(home, "credential", "issue", "billing", "--json"))["token"]
    token = json.loads(warrant(home, "mint", "--agent", "billing", "--task", "t", "--tool",
                               "read_file", "--json"))["token"]
    out = warrant(home, "check", "--warrant", token, "--credential", cred, "--tool",
                  "read_file", expect=1)
    assert "credential rejected" in out


@pytest.mark.parametrize(("args", "message"), [
    (["mint", "--agent", "billing", "--task", "t", "--tool", "transfer:amount=9..1"],
     "error:"),
    (["mint", "--agent", "nobody", "--task", "t", "--tool", "read_file"], "no agent `nobody`"),
    (["agent", "register", "Bad Name", "--owner", "o", "--purpose", "p"], "invalid agent name"),
    (["credential", "issue", "billing", "--ttl", "5h"], "error:"),
    (["inspect", "not-a-token"], "warrant rejected"),
    (["init"], "already holds a trust domain"),
    (["init", "--domain", "Bad Domain"], "DNS-like name"),
])
def test_bad_input_gets_a_clear_error_and_exit_status_2_or_1(home: Path, args: list[str],
                                                            message: str) -> None:
    env = {**os.environ, "WARRANT_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-m", "warrant", *args], capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    assert proc.returncode in (1, 2), proc
    assert message in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


def test_bad_json_arguments_are_a_usage_error(home: Path) -> None:
    out = warrant(home, "check", "--warrant", "w", "--credential", "c", "--tool", "t",
                  "--args", "{not json", expect=2)
    assert "not valid JSON" in out


@pytest.mark.parametrize(("args", "message"), [
    ('{"amount": NaN}', "`NaN` is not a JSON number"),
    ('{"amount": -Infinity}', "`-Infinity` is not a JSON number"),
    ('{"amount": ' + "9" * 5000 + "}", "not valid JSON"),
    ('{"a": ' + "[" * 3000 + "]" * 3000 + "}", "nested too deeply"),
])
def test_arguments_json_cannot_carry_is_a_usage_error_not_a_crash(home: Path, args: str,
                                                                   message: str) -> None:
    out = warrant(home, "check", "--warrant", "w", "--credential", "c", "--tool", "t",
                  "--args", args, expect=2)
    assert message in out
    assert "Traceback" not in out


def test_commands_without_a_domain_say_how_to_create_one(tmp_path: Path) -> None:
    out = warrant(tmp_path / "empty", "agent", "list", expect=2)
    assert "no trust domain" in out and "warrant init" in out


def test_policy_check_and_test_pass_on_the_default_pack(home: Path) -> None:
    assert "ok:" in warrant(home, "policy", "check")
    assert " 0 failed" in warrant(home, "policy", "test")


def test_policy_check_reports_a_broken_policy_with_its_file(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "policies"
    bad.mkdir()
    (bad / "schema.cedarschema").write_text((home / "policies" / "schema.cedarschema").read_text())
    (bad / "broken.cedar").write_text("permit (principal, action, resource) when { nope };")
    out = warrant(home, "policy", "check", "--dir", str(bad), expect=1)
    assert "broken.cedar" in out


def test_quickstart_runs_the_core_loop_and_verifies_the_audit_log(tmp_path: Path) -> None:
    env = {**os.environ}
    proc = subprocess.run([sys.executable, "-m", "warrant", "quickstart", "--home",
                           str(tmp_path / "qs")], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count("ALLOW") == 3 and out.count("DENY") == 4 and "NEEDS APPROVAL" in out
    assert "warrant.tool-not-granted" in out and "warrant.argument-constraint" in out
    assert "flow.forbid-injected-values" in out  # the invoice's hidden instruction
    assert "revoked" in out and "signed checkpoint" in out


def test_quickstart_shows_an_mcp_client_through_the_gateway(tmp_path: Path) -> None:
    if shutil.which("bwrap") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("bubblewrap is missing under CI=true (scripts/install-system-deps)")
        pytest.skip("bubblewrap is not installed: quickstart skips its gateway part")
    proc = subprocess.run([sys.executable, "-m", "warrant", "quickstart", "--json", "--home",
                           str(tmp_path / "qs")], capture_output=True, text=True,
                          timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr
    listed, allowed, ungranted, changed = json.loads(proc.stdout)["gateway"]
    assert listed["tools"] == ["invoices__lookup_invoice"]  # `wire_money` is not granted
    assert not allowed["error"] and "Acme Paper" in allowed["text"]
    assert ungranted["error"] and "not granted by the warrant" in ungranted["text"]
    assert changed["error"] and "quarantined" in changed["text"]
    # Every gateway decision is in the audit log the quickstart verified.
    tail = json.loads(warrant(tmp_path / "qs", "audit", "tail", "-n", "40", "--json"))
    tools = {record.get("tool") for record in tail}
    assert {"invoices/lookup_invoice", "invoices/wire_money"} <= tools


def test_without_bubblewrap_quickstart_says_why_it_skips_the_gateway(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = subprocess.run([sys.executable, "-m", "warrant", "quickstart", "--json", "--home",
                           str(tmp_path / "qs")], capture_output=True, text=True,
                          env={**os.environ, "PATH": str(empty)}, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    [skipped] = json.loads(proc.stdout)["gateway"]
    assert "bubblewrap is not installed" in skipped["skipped"]


def test_attenuate_narrows_a_warrant_for_a_sub_agent_and_refuses_to_widen(home: Path) -> None:
    warrant(home, "agent", "register", "helper", "--owner", "finance", "--purpose", "reads")
    parent = json.loads(warrant(home, "mint", "--agent", "billing", "--task", "delegate",
                                "--tool", "read_file", "--tool", "transfer:amount=0..100",
                                "--max-depth", "1", "--json"))["token"]
    narrowed = json.loads(warrant(home, "attenuate", parent, "--tool", "read_file",
                                  "--holder", "helper", "--ttl", "5m", "--json"))["token"]
    described = json.loads(warrant(home, "inspect", narrowed, "--json"))
    assert described["holder"] == "spiffe://acme.example/agent/helper"
    assert "transfer" not in described["tools"]
    # The hop is signed with the orchestrator's (billing's) key, so the helper can use it.
    [hop] = described["delegations"]
    assert hop["from"].endswith("/billing") and hop["signed_by"]
    cred = json.loads(warrant(home, "credential", "issue", "helper", "--json"))["token"]
    decision = json.loads(warrant(
        home, "check", "--warrant", narrowed, "--credential", cred, "--agent-key",
        str(home / "agents" / "helper.key"), "--tool", "read_file", "--args", '{"path": "a"}',
        "--json"))
    assert decision["effect"] == "allow", decision
    out = warrant(home, "attenuate", narrowed, "--tool", "transfer", expect=2)
    assert "error:" in out
    # Signing a hand-over with someone else's key is refused up front.
    out = warrant(home, "attenuate", parent, "--holder", "helper", "--agent-key",
                  str(home / "agents" / "helper.key"), expect=2)
    assert "not the registered key" in out


def test_a_held_call_is_approved_by_a_person_and_then_runs_once(home: Path) -> None:
    cred = json.loads(warrant(home, "credential", "issue", "billing", "--json"))["token"]
    token = json.loads(warrant(home, "mint", "--agent", "billing", "--task", "big payment",
                               "--tool", "transfer:amount=0..5000", "--json"))["token"]
    key = str(home / "agents" / "billing.key")
    call = ["check", "--warrant", token, "--credential", cred, "--agent-key", key,
            "--tool", "transfer", "--args", '{"amount": 2500}', "--json"]
    held = json.loads(warrant(home, *call, expect=3))
    assert held["effect"] == "needs-approval"
    (pending,) = json.loads(warrant(home, "approvals", "list", "--json"))
    assert pending["tool"] == "transfer" and pending["arguments"] == {"amount": 2500}
    # The person deciding is told why it waits.
    listing = warrant(home, "approvals", "list")
    assert "\n    why: `" in listing and "` permits this with approval\n" in listing
    warrant(home, "approvals", "approve", pending["approval_id"], "--by", "user:alice")
    assert json.loads(warrant(home, *call))["effect"] == "allow"
    assert json.loads(warrant(home, *call, expect=3))["effect"] == "needs-approval"
    out = warrant(home, "approvals", "approve", pending["approval_id"], "--by",
                  "spiffe://acme.example/agent/billing", expect=2)
    assert "must name a person" in out


@pytest.mark.claim("sandbox.no-network")
def test_a_sandbox_violation_from_the_command_line_lands_in_the_audit_log(home: Path) -> None:
    import shutil

    if shutil.which("bwrap") is None and os.environ.get("CI") != "true":
        pytest.skip("bubblewrap is not installed (scripts/install-system-deps installs it)")
    script = "import socket; socket.create_connection(('127.0.0.1', 5432), timeout=2)"
    env = {**os.environ, "WARRANT_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-m", "warrant", "sandbox", "run", "--json", "--",
                           "/usr/bin/python3", "-c", script], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    result = json.loads(proc.stdout)
    assert proc.returncode != 0 and result["audited"] is True
    tail = json.loads(warrant(home, "audit", "tail", "-n", "5", "--json"))
    assert any(r["tool"] == "sandbox.violation" for r in tail)


def test_an_address_the_user_typed_goes_through_and_one_the_user_did_not_waits(
        home: Path) -> None:
    warrant(home, "tools", "add", "send_email", "--risk", "external-communication")
    cred = json.loads(warrant(home, "credential", "issue", "billing", "--json"))["token"]
    (home / "ask.txt").write_text("Send the invoice summary to ops@acme.example")
    token = json.loads(warrant(home, "mint", "--agent", "billing", "--task", "mail",
                               "--tool", "send_email", "--instruction",
                               f"@{home / 'ask.txt'}", "--json"))["token"]
    base = ["check", "--warrant", token, "--credential", cred, "--agent-key",
            str(home / "agents" / "billing.key"), "--tool", "send_email", "--json"]
    given = json.loads(warrant(home, *base, "--args", '{"to": "ops@acme.example"}'))
    assert given["effect"] == "allow"
    other = json.loads(warrant(home, *base, "--args", '{"to": "eve@evil.example"}',
                               expect=3))
    assert other["effect"] == "needs-approval"
    assert any("flow.hold-unverified-destination" in r["message"] for r in other["reasons"])


def test_approvals_list_shows_why_a_call_was_held_its_digest_and_expiry(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    warrant(home, "init", "--domain", "acme.example")
    warrant(home, "agent", "register", "billing", "--owner", "finance", "--purpose", "pays")
    warrant(home, "tools", "add", "transfer", "--risk", "money-movement")
    cred = json.loads(warrant(home, "credential", "issue", "billing", "--json"))["token"]
    token = json.loads(warrant(home, "mint", "--agent", "billing", "--task", "big payment",
                               "--tool", "transfer:amount=0..5000", "--json"))["token"]
    warrant(home, "check", "--warrant", token, "--credential", cred, "--agent-key",
            str(home / "agents" / "billing.key"), "--tool", "transfer",
            "--args", '{"amount": 2500}', "--json", expect=3)
    (pending,) = json.loads(warrant(home, "approvals", "list", "--json"))
    out = warrant(home, "approvals", "list")
    # What the help promises (exact call, argument digest, expiry) and why it was held.
    assert 'transfer  {"amount": 2500}' in out
    assert f"argument digest {pending['argument_digest']}" in out
    assert "expires 20" in out
    assert "why: `baseline.large-payments-need-approval` permits this with approval" in out


@pytest.mark.parametrize("action", ["approve", "quarantine"])
def test_only_a_person_can_approve_or_quarantine_a_tool(home: Path, action: str) -> None:
    out = warrant(home, "tools", action, "files/read", "--by",
                  "spiffe://acme.example/agent/billing", expect=2)
    assert "must name a person as `user:NAME`" in out


def test_only_a_suspended_agent_can_be_resumed_and_only_by_a_person(home: Path) -> None:
    assert "not suspended" in warrant(home, "agent", "resume", "billing", "--by", "user:alice",
                                      expect=2)
    assert "must name a person" in warrant(home, "agent", "resume", "billing", "--by",
                                           "spiffe://acme.example/agent/billing", expect=2)
