"""`warrant tools add|list`: the domain's tool catalogue (risk classes policy sees)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from warrant.enforce import STATE_DB
from warrant.store import SqlitePins
from warrant.types import RiskClass, ToolInfo

from ._common import emit, home_option, json_option, opened


@click.group("tools")
def tools_group() -> None:
    """The tool catalogue: every tool the domain knows, with its risk class."""


@tools_group.command("add")
@click.argument("name")
@click.option("--risk", type=click.Choice([r.value for r in RiskClass]), required=True,
              help="What the tool can do; policy decides on this class.")
@click.option("--server", help="The MCP server the tool lives on, if any.")
@click.option("--description", default="", help="What the tool does.")
@home_option
@json_option
def tools_add(name: str, risk: str, server: str | None, description: str, home: Path | None,
              as_json: bool) -> None:
    """Add (or re-classify) a tool in the catalogue."""
    info = ToolInfo(name=name, risk_class=RiskClass(risk), server=server,
                    description=description)
    with opened(home) as domain:
        domain.record_admin("tool.add", {"tool": info.qualified_name, "risk_class": risk})
        domain.store.put_tool(info, time.time())
    emit({"tool": info.qualified_name, "risk_class": risk}, as_json,
         lambda: click.echo(f"catalogued {info.qualified_name} as {risk}"))


@tools_group.command("list")
@home_option
@json_option
def tools_list(home: Path | None, as_json: bool) -> None:
    """List catalogued tools, with the pin status of MCP tools the gateway has seen
    (`quarantined` ones are denied until `warrant tools approve`)."""
    with opened(home) as domain:
        tools = domain.store.list_tools()
        pins = SqlitePins(domain.home / STATE_DB)
        try:
            status = {pin.qualified_name: pin.status for pin in pins.all()}
        finally:
            pins.close()
    emit([{"tool": t.qualified_name, "risk_class": t.risk_class.value,
           "description": t.description, "pin_status": status.get(t.qualified_name)}
          for t in tools], as_json,
         lambda: click.echo("\n".join(
             f"{t.qualified_name:<32} {t.risk_class.value:<24} "
             f"{status.get(t.qualified_name, '-')}" for t in tools) or "no tools catalogued"))
