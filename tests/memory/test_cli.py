"""`warrant memory ...` drives the guarded store end to end (invoked on the command group)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from warrant import identity
from warrant.cli._memory_cmds import memory_group
from warrant.enforce import TrustDomain


def test_put_get_history_rollback_and_purge_from_the_command_line(
        memory_domain: TrustDomain) -> None:
    home = str(memory_domain.home)
    runner = CliRunner()

    def run(*args: str) -> object:
        result = runner.invoke(memory_group, [*args, "--home", home, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    first = run("put", "--agent", "billing", "agent:billing", "limit", '{"max": 100}')
    run("put", "--agent", "billing", "agent:billing", "limit", '{"max": 9}')
    assert isinstance(first, dict)
    run("rollback", "agent:billing", "--to", str(first["stored_at"]), "--by", "user:alice")
    got = run("get", "--agent", "billing", "agent:billing", "limit")
    assert isinstance(got, dict) and got["content"] == {"max": 100}
    history = run("history", "agent:billing", "limit")
    assert isinstance(history, list) and [v["version"] for v in history] == [1, 2, 3]
    assert run("purge", "agent:billing", "limit", "--by", "user:alice") == {
        "namespace": "agent:billing", "key": "limit", "purged": 3}
    assert run("list", "--agent", "billing", "agent:billing") == []


def test_put_signs_with_a_key_file_and_refuses_a_key_that_is_not_the_agents(
        memory_domain: TrustDomain, tmp_path: Path) -> None:
    own = identity.generate_key()
    memory_domain.register_agent("enrolled", owner="finance", purpose="brings its own key",
                                 public_key=own.public_key())
    good, wrong = tmp_path / "own.pem", tmp_path / "wrong.pem"
    identity.write_private_key(good, own)
    identity.write_private_key(wrong, identity.generate_key())
    home = str(memory_domain.home)
    runner = CliRunner()
    args = ["put", "--agent", "enrolled", "agent:enrolled", "k", '"v"', "--home", home, "--json"]

    refused = runner.invoke(memory_group, [*args, "--key-file", str(wrong)])
    assert refused.exit_code != 0
    assert "registered key" in str(refused.exception or refused.output)
    stored = runner.invoke(memory_group, [*args, "--key-file", str(good)])
    assert stored.exit_code == 0, stored.output
    assert json.loads(stored.output)["provenance"]["key_kind"] == "agent"
