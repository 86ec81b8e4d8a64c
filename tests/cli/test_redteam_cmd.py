"""`warrant redteam agentdojo`, run as a user runs it: a real process, real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli._run import warrant
from warrant.redteam import agentdojo_available

needs_agentdojo = pytest.mark.skipif(
    not agentdojo_available() and os.environ.get("CI") != "true",
    reason="agentdojo is not installed: pip install 'agent-warrant[redteam]'")


def test_help_says_what_the_benchmark_measures(tmp_path: Path) -> None:
    text = warrant(tmp_path, "redteam", "agentdojo", "--help")
    for phrase in ("FULLY COMPROMISED", "attack success rate", "utility under attack",
                   "utility without attack", "upper bound for a well-behaved planner",
                   "allow-all baseline"):
        assert phrase in " ".join(text.split()), phrase


@needs_agentdojo
def test_a_quick_run_writes_markdown_and_json(tmp_path: Path) -> None:
    report, markdown = tmp_path / "r.json", tmp_path / "r.md"
    out = warrant(tmp_path, "redteam", "agentdojo", "--suite", "banking", "--limit", "2",
                  "--warrant", "role", "--order", "user-first",
                  "--json", str(report), "--markdown", str(markdown))
    assert "banking: 2/2 pairs" in out
    data = json.loads(report.read_text())
    assert data["schema"] == "warrant.redteam.agentdojo/1"
    assert {(r["mode"], r["order"]) for r in data["rows"]} == {
        ("allow-all", "user-first"), ("role", "user-first")}
    baseline = next(r for r in data["rows"] if r["mode"] == "allow-all")
    assert baseline["pairs_scored"] == 2 and baseline["attacks_succeeded"] >= 1
    assert "| banking | role | user-first |" in markdown.read_text()


@needs_agentdojo
def test_a_run_uses_the_policies_of_an_existing_domain(tmp_path: Path) -> None:
    home = tmp_path / "home"
    warrant(home, "init", "--domain", "acme.example")
    out = warrant(home, "redteam", "agentdojo", "--suite", "slack", "--limit", "1",
                  "--warrant", "task", "--order", "attacker-first", "--home", str(home))
    assert "| slack | task | attacker-first |" in out


def test_an_unknown_suite_is_refused(tmp_path: Path) -> None:
    out = warrant(tmp_path, "redteam", "agentdojo", "--suite", "nosuch", expect=2)
    assert "nosuch" in out


def test_an_output_file_in_a_missing_directory_is_refused_before_the_run(tmp_path: Path) -> None:
    out = warrant(tmp_path, "redteam", "agentdojo", "--suite", "banking", "--limit", "1",
                  "--markdown", str(tmp_path / "nodir" / "r.md"), expect=2)
    assert "cannot write" in out and "nodir" in out
    assert "pairs" not in out  # refused before replaying anything


@needs_agentdojo
def test_an_output_file_that_cannot_be_written_is_an_error_not_a_traceback(
        tmp_path: Path) -> None:
    unwritable = tmp_path / ("x" * 300 + ".json")  # the name is too long for the file system
    out = warrant(tmp_path, "redteam", "agentdojo", "--suite", "banking", "--limit", "1",
                  "--warrant", "role", "--order", "user-first", "--json", str(unwritable),
                  expect=2)
    assert "cannot write" in out
