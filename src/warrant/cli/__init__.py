"""The `warrant` command line. Every command that prints results takes `--json`."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from warrant.errors import WarrantError

from ._approval_cmds import approvals_group
from ._audit_cmds import audit_group
from ._bom_cmds import bom
from ._common import EXIT_ERROR, fail
from ._compliance_cmds import compliance_group
from ._config_cmds import config_group
from ._gateway_cmds import gateway, hook_group, tools_approve, tools_quarantine, tools_show
from ._governance_cmds import assess, plan_group
from ._identity_cmds import agent, credential, init
from ._incident_cmds import incidents_group, metrics
from ._memory_cmds import memory_group
from ._policy_cmds import policy_group
from ._quickstart import quickstart
from ._redteam_cmds import redteam_group
from ._sandbox_cmds import sandbox_group
from ._tools_cmds import tools_group
from ._warrant_cmds import attenuate, check, inspect, mint, revoke


class _Main(click.Group):
    """Turns every Warrant error into a clear message and exit status 2, never a traceback."""

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


for command in (init, agent, credential, mint, attenuate, inspect, revoke, check,
                policy_group, audit_group, tools_group, approvals_group, sandbox_group,
                gateway, hook_group, memory_group, incidents_group, metrics, config_group,
                quickstart, redteam_group):
    main.add_command(command)
for tools_command in (tools_show, tools_approve, tools_quarantine):
    tools_group.add_command(tools_command)
main.add_command(bom)
main.add_command(compliance_group)
main.add_command(assess)
main.add_command(plan_group)

__all__ = ["main"]
