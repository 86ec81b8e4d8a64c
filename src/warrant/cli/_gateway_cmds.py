"""`warrant gateway` and `warrant tools show|approve|quarantine` (pinned MCP tools).

The `tools` subcommands are plain commands; `cli/__init__` attaches them to the
`tools` group next to `tools add|list`.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import click

from warrant import identity
from warrant.config import resolve_home
from warrant.enforce import STATE_DB
from warrant.errors import ConfigError, StoreError
from warrant.gateway import MAX_INPUT_BYTES, answer_hook
from warrant.store import SqlitePins, ToolPin

from ._common import emit, home_option, json_option, opened


@click.command("gateway")
@click.option("--config", "config_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Gateway config (TOML or JSON): upstream servers, risk overrides, limits.")
@click.option("--listen", metavar="HOST:PORT",
              help="Serve MCP over streamable HTTP at http://HOST:PORT/mcp instead of stdio "
                   "(loopback only unless --tls-cert/--tls-key are given).")
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path),
              help="PEM certificate (chain) to serve HTTPS with (--listen).")
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path),
              help="PEM private key of --tls-cert.")
@click.option("--mtls", is_flag=True,
              help="Also require a client certificate issued by the domain's CA (HTTPS), "
                   "naming the same agent as each request's credential.")
@home_option
def gateway(config_path: Path, listen: str | None, tls_cert: Path | None,
            tls_key: Path | None, mtls: bool, home: Path | None) -> None:
    """Serve the configured MCP servers to MCP clients, enforcing every call.

    \b
    Over stdio (the default), launch it as an MCP client's server command. The
    caller's tokens come from the environment, never the command line:
      WARRANT_CREDENTIAL_FILE (or WARRANT_CREDENTIAL)
      WARRANT_WARRANT_FILE    (or WARRANT_WARRANT)
      WARRANT_AGENT_KEY_FILE
    \b
    With --listen, any number of clients connect over streamable HTTP, each
    request carrying its caller's tokens:
      Authorization: Bearer CREDENTIAL
      X-Warrant: WARRANT
      X-Warrant-Proof: PROOF  (each tools/call: signed with the agent key
                               over the tool, arguments, credential, warrant)
    Tools appear as SERVER__TOOL (e.g. time__get_current_time); warrants grant
    them as SERVER/TOOL. Without valid tokens every call is denied.
    """
    # Only this command needs the proxy (the MCP SDK's server and client stacks):
    # `warrant hook claude-code` in the same group runs once per tool use.
    from warrant.gateway import load_gateway_config, run_gateway  # noqa: PLC0415 - see above

    config = load_gateway_config(config_path)
    run_gateway(config, home=home, config_path=config_path, listen=listen, tls_cert=tls_cert,
                tls_key=tls_key, mtls=mtls)


def _pins(home: Path | None) -> SqlitePins:
    return SqlitePins(resolve_home(home) / STATE_DB)


def _pin(pins: SqlitePins, name: str) -> ToolPin:
    pin = pins.get(name)
    if pin is None:
        raise ConfigError(f"no pinned tool `{name}`",
                          hint="name it as SERVER/TOOL; the gateway pins tools when it connects")
    return pin


def _person(by: str, role: str, *, hint: str) -> None:
    """Refuse `by` unless it names a person as `user:NAME` (what the audit log keeps)."""
    if not identity.is_person(by):
        raise ConfigError(f"{role} `{by}` must name a person as `user:NAME`", hint=hint)


@click.command("show")
@click.argument("name")
@home_option
@json_option
def tools_show(name: str, home: Path | None, as_json: bool) -> None:
    """Show a pinned MCP tool: digest, risk class, status, findings, pending change."""
    with opened(home) as domain:
        pins = _pins(home)
        try:
            pin = _pin(pins, name)
        finally:
            pins.close()
        info = domain.store.get_tool(name)
    data = {**pin.to_json(), "risk_class": info.risk_class.value if info else None}

    def human() -> None:
        click.echo(f"tool:        {pin.qualified_name}")
        click.echo(f"status:      {pin.status} ({pin.reason})")
        click.echo(f"risk class:  {data['risk_class'] or 'not catalogued'}")
        click.echo(f"pinned:      sha256:{pin.pinned_digest}")
        if pin.changed:
            click.echo(f"seen now:    sha256:{pin.seen_digest}  (differs from the pin)")
            click.echo(f"  pinned description: {pin.pinned_definition.get('description')!r}")
            click.echo(f"  new description:    {pin.seen_definition.get('description')!r}")
        elif pin.quarantined:
            click.echo("seen now:    the pinned definition again; the one that was quarantined "
                       "is in the audit log (`tool.quarantined` record)")
        for finding in pin.findings:
            click.echo(f"finding:     [{finding.get('severity')}] {finding.get('code')}: "
                       f"{finding.get('message')} at {finding.get('location') or '-'}")

    emit(data, as_json, human)


@click.command("approve")
@click.argument("name")
@click.option("--by", required=True, help="Who approves, as `user:NAME` (a person, audited).")
@home_option
@json_option
def tools_approve(name: str, by: str, home: Path | None, as_json: bool) -> None:
    """Accept a tool's current definition as its new pin and lift its quarantine."""
    _person(by, "approver", hint="agents can never approve tool definitions")
    with opened(home) as domain:
        pins = _pins(home)
        try:
            before = _pin(pins, name)
            domain.record_admin("tool.approve", {"tool": name, "by": by,
                                                 "digest": before.seen_digest,
                                                 "previous_digest": before.pinned_digest})
            pin = pins.approve(name, by=by, now=time.time())
        except StoreError as exc:
            raise ConfigError(exc.message) from exc
        finally:
            pins.close()
    emit(pin.to_json(), as_json,
         lambda: click.echo(f"approved {name}: pinned sha256:{pin.pinned_digest}"))


@click.command("quarantine")
@click.argument("name")
@click.option("--by", required=True, help="Who quarantines, as `user:NAME` (audited).")
@click.option("--reason", default="quarantined by hand", help="Why (kept with the tool).")
@home_option
@json_option
def tools_quarantine(name: str, by: str, reason: str, home: Path | None, as_json: bool) -> None:
    """Quarantine a pinned tool: the gateway denies every call to it until approved."""
    _person(by, "`--by`", hint="name who quarantines it, as for `warrant tools approve`")
    with opened(home) as domain:
        pins = _pins(home)
        try:
            _pin(pins, name)
            domain.record_admin("tool.quarantined", {"tool": name, "by": by, "reason": reason})
            pin = pins.quarantine(name, by=by, reason=f"{reason} ({by})", now=time.time())
        finally:
            pins.close()
    emit(pin.to_json(), as_json, lambda: click.echo(f"quarantined {name}"))


@click.group("hook")
def hook_group() -> None:
    """Agent-runtime hooks: let Warrant decide each tool use of a coding agent."""


@hook_group.command("claude-code")
@home_option
def hook_claude_code(home: Path | None) -> None:
    """Claude Code PreToolUse/PostToolUse hook: JSON on stdin, decision on stdout.

    \b
    In .claude/settings.json:
      {"hooks": {"PreToolUse":  [{"matcher": "*", "hooks": [{"type": "command",
                                   "command": "warrant hook claude-code"}]}],
                 "PostToolUse": [{"matcher": "*", "hooks": [{"type": "command",
                                   "command": "warrant hook claude-code"}]}]}}
    The agent's credential, warrant and key come from $WARRANT_CREDENTIAL_FILE,
    $WARRANT_WARRANT_FILE and $WARRANT_AGENT_KEY_FILE. Any failure blocks (exit 2).
    """
    # Claude shows the hook's stderr to the model: no log lines there, only the
    # one public reason (the detailed cause is in the audit log).
    logging.disable(logging.CRITICAL)
    answer = answer_hook(resolve_home(home), sys.stdin.buffer.read(MAX_INPUT_BYTES + 1))
    sys.stdout.write(answer.stdout)
    sys.stderr.write(answer.stderr)
    sys.exit(answer.exit_code)
