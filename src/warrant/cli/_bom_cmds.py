"""`warrant bom`: the domain's AI bill of materials (CycloneDX 1.6, JSON or XML)."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import click

from warrant.errors import ConfigError
from warrant.gateway import GatewayConfig, StdioServer, load_gateway_config
from warrant.governance import BomFormat, McpServerSpec, build_bom, declared_models, render_bom

from ._common import home_option, opened

_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("bom")
@home_option
@click.option("--gateway-config", type=_FILE, default=None,
              help="The gateway config (TOML or JSON) whose MCP servers to list.")
@click.option("--models", "models_file", type=_FILE, default=None,
              help="TOML with `[agents.NAME] model = \"PROVIDER/MODEL[@VERSION]\"`; "
                   "overrides governance.toml in the domain home, agent by agent.")
@click.option("--format", "fmt", type=click.Choice(["json", "xml"]), default="json",
              show_default=True, help="CycloneDX serialisation.")
@click.option("--out", type=_FILE, default=None, help="Write the BOM here instead of stdout.")
@click.option("--serial-number", type=click.UUID, default=None,
              help="Use this serial number (default: a random one; fix it for reproducible "
                   "output, with SOURCE_DATE_EPOCH for the timestamp).")
def bom(home: Path | None, gateway_config: Path | None, models_file: Path | None,
        fmt: BomFormat, out: Path | None, serial_number: uuid.UUID | None) -> None:
    """Print an AI bill of materials: agents and their declared models, MCP servers
    with pinned tool digests, Python packages, policies with their revision.

    \b
    Models are declared in governance.toml in the domain home:
      [agents.billing]
      model = "openai/gpt-4o@2024-08-06"
      model_card = "https://example.com/model-card"
    An agent without a declaration is listed with `warrant:model = undeclared`.
    """
    servers = [] if gateway_config is None else _servers(load_gateway_config(gateway_config))
    with opened(home) as domain:
        declarations = declared_models(domain.home, models_file)
        text = render_bom(build_bom(domain, servers=servers, declarations=declarations,
                                    serial_number=serial_number, timestamp=_timestamp()), fmt)
    if out is None:
        click.echo(text)
        return
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write the BOM to `{out}`: {exc.strerror}") from exc
    click.echo(f"wrote {fmt.upper()} BOM to {out}", err=True)


def _servers(config: GatewayConfig) -> list[McpServerSpec]:
    # Only what identifies a server: its env and headers may hold secrets.
    return [McpServerSpec(name, "stdio", command=server.command)
            if isinstance(server, StdioServer) else McpServerSpec(name, "http", url=server.url)
            for name, server in sorted(config.servers.items())]


def _timestamp() -> dt.datetime | None:
    """SOURCE_DATE_EPOCH (reproducible builds) when set, else None (now)."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return None
    try:
        return dt.datetime.fromtimestamp(int(value), dt.UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise ConfigError(f"SOURCE_DATE_EPOCH `{value}` is not a Unix timestamp") from exc
