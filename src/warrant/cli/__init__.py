"""The `warrant` command line. Every command that prints results takes `--json`."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from warrant.errors import WarrantError

from ._common import EXIT_ERROR, fail

#: Each command and where it lives, imported only when it runs (or `--help` lists it):
#: the gateway, the SDKs and the report builders cost over a second to import, and
#: `warrant hook claude-code` runs once per tool use.
_COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("_identity_cmds", "init"), "agent": ("_identity_cmds", "agent"),
    "credential": ("_identity_cmds", "credential"), "mint": ("_warrant_cmds", "mint"),
    "attenuate": ("_warrant_cmds", "attenuate"), "inspect": ("_warrant_cmds", "inspect"),
    "revoke": ("_warrant_cmds", "revoke"), "check": ("_warrant_cmds", "check"),
    "policy": ("_policy_cmds", "policy_group"), "audit": ("_audit_cmds", "audit_group"),
    "tools": ("_tools_cmds", "tools_group"), "approvals": ("_approval_cmds", "approvals_group"),
    "sandbox": ("_sandbox_cmds", "sandbox_group"), "gateway": ("_gateway_cmds", "gateway"),
    "hook": ("_gateway_cmds", "hook_group"), "memory": ("_memory_cmds", "memory_group"),
    "incidents": ("_incident_cmds", "incidents_group"), "metrics": ("_incident_cmds", "metrics"),
    "config": ("_config_cmds", "config_group"), "quickstart": ("_quickstart", "quickstart"),
    "redteam": ("_redteam_cmds", "redteam_group"), "bom": ("_bom_cmds", "bom"),
    "compliance": ("_compliance_cmds", "compliance_group"),
    "respond": ("_respond_cmds", "respond"),
    "assess": ("_governance_cmds", "assess"), "plan": ("_governance_cmds", "plan_group"),
}


def _load(name: str) -> click.Command:
    module, attribute = _COMMANDS[name]
    command: click.Command = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
    if name == "tools" and isinstance(command, click.Group) and "show" not in command.commands:
        # `tools show|approve|quarantine` live with the gateway that pins the tools.
        gateway_cmds = importlib.import_module(f"{__name__}._gateway_cmds")
        for sub in ("tools_show", "tools_approve", "tools_quarantine"):
            command.add_command(getattr(gateway_cmds, sub))
    return command


class _Main(click.Group):
    """Turns every Warrant error into a clear message and exit status 2, never a traceback;
    loads each command on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return _load(cmd_name) if cmd_name in _COMMANDS else None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WarrantError as exc:
            fail(exc, as_json="--json" in sys.argv)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_ERROR)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="agent-warrant")
@click.option("-v", "--verbose", is_flag=True, help="Log what Warrant is doing to stderr.")
def main(verbose: bool) -> None:
    """Warrant: Zero Trust enforcement for AI agents.

    \b
    Start here:   warrant quickstart
    Then:         warrant init; warrant agent register; warrant credential issue;
                  warrant mint; warrant check; warrant audit verify
    State lives in --home, else $WARRANT_HOME, else ./.warrant.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


__all__ = ["main"]
