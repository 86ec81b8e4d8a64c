"""The gateway config: TOML or JSON, unknown keys rejected, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from warrant.errors import ConfigError
from warrant.gateway import HttpServer, StdioServer, load_gateway_config, parse_gateway_config
from warrant.types import RiskClass


def test_a_toml_config_names_stdio_and_http_servers_risk_overrides_and_limits(
        tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('''
[servers.time]
command = ["python", "-m", "mcp_server_time"]
env = { TZ = "UTC" }

[servers.gh]
url = "https://mcp.example/github"

[risk]
"gh/delete_repo" = "destructive"

[limits]
call_timeout_s = 5
''', encoding="utf-8")
    config = load_gateway_config(path)
    assert isinstance(config.servers["time"], StdioServer)
    assert config.servers["time"].command == ("python", "-m", "mcp_server_time")
    assert isinstance(config.servers["gh"], HttpServer)
    assert config.risk == {"gh/delete_repo": RiskClass.DESTRUCTIVE}
    assert config.limits.call_timeout_s == 5
    assert config.limits.max_message_bytes == 4_000_000


@pytest.mark.parametrize(("raw", "expected"), [
    ({"servers": {}}, "`servers`"),
    ({"servers": {"a_b": {"command": ["x"]}}}, "server name `a_b`"),
    ({"servers": {"t": {"command": ["x"]}}, "limitz": {}}, "`limitz` is not a known key"),
    # As written in the file: no transport tag in the path, pydantic's words replaced.
    ({"servers": {"t": {"comand": ["x"], "command": ["x"]}}}, "`servers.t.comand` is not a"),
    ({"servers": {"t": {"command": "python -m x"}}}, "`servers.t.command` must be a list"),
    ({"servers": {"t": {"command": ["x"], "url": "http://x"}}}, "exactly one of"),
    ({"servers": {"t": {"command": []}}}, "`servers.t.command`"),
    ({"servers": {"t": {"url": "ftp://x"}}}, "http:// or https://"),
    ({"servers": {"t": {"command": ["x"]}}, "risk": {"nope": "write"}}, "SERVER/TOOL"),
    ({"servers": {"t": {"command": ["x"]}}, "risk": {"t/x": "lethal"}}, "`risk.t/x`"),
    ({"servers": {"t": {"command": ["x"]}}, "limits": {"call_timeout_s": 0}},
     "`limits.call_timeout_s`"),
])
def test_a_bad_config_names_the_problem(raw: object, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_gateway_config(raw)
    assert expected in caught.value.message


def test_a_file_that_is_not_json_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "gateway.json"
    path.write_text("{nope", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load_gateway_config(path)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read gateway config"):
        load_gateway_config(tmp_path / "absent.toml")
