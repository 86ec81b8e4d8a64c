"""The gateway's configuration file: upstream servers, risk overrides, limits.

TOML or JSON, parsed once with pydantic; unknown keys are errors so a typo never
silently falls back to a default.

    [servers.time]
    command = ["python", "-m", "mcp_server_time"]
    # sandbox = "none-network"          (the default: every stdio server is sandboxed)
    # sandbox_bind_ro = ["/opt/data"]   (extra read-only paths; the program's own
    #                                    installation and venv are bound automatically)
    # unsafe_no_sandbox = true          (NO isolation; refused when the domain is strict)

    [servers.github]
    url = "https://mcp.example/github"

    [servers.memory]
    command = ["npx", "-y", "@modelcontextprotocol/server-memory"]
    memory_guard = true                 # sign writes, verify reads (gateway/_memory.py)
    # memory_namespace = "agent"        (or "user" / "session")

    [risk]
    "github/delete_repo" = "destructive"
    "github/resources.read" = "read-only"  # resources/read of `github` (the default)

    [limits]
    call_timeout_s = 30
    max_message_bytes = 4_000_000
    max_request_bytes = 1_000_000
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from warrant.errors import ConfigError
from warrant.sandbox import BUILTIN_PROFILES, DEFAULT_PROFILE
from warrant.types import RiskClass

#: Server names become the prefix of exposed tool names (`time__get_current_time`), so
#: they may not contain `_` (the separator stays unambiguous) nor `/` (qualified names).
SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-]{0,31}$")
_QUALIFIED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-]{0,31}/[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Upstream(_Model):
    # -- memory guard (gateway/_memory.py) --------------------------------------------
    #: Guard this server as an MCP memory server (`@modelcontextprotocol/server-memory`):
    #: writes vetted and signed by the calling agent, reads verified, tampering withheld.
    memory_guard: bool = False
    #: Whose memory the server's facts are: the agent's, the user it acts for, the session's.
    memory_namespace: Literal["agent", "user", "session"] = "agent"


class StdioServer(_Upstream):
    """An upstream MCP server the gateway launches and talks to over stdio."""

    transport: Literal["stdio"] = "stdio"
    command: tuple[str, ...] = Field(min_length=1)
    #: Extra environment for the server (on top of a minimal safe set: PATH, HOME...).
    env: dict[str, str] = Field(default_factory=dict)
    cwd: Path | None = None
    #: The sandbox profile the server runs under (no network, no host files but the
    #: base system and its own installation, scrubbed environment).
    sandbox: str = DEFAULT_PROFILE
    #: Extra host paths the server may read (bound read-only at the same path).
    sandbox_bind_ro: tuple[str, ...] = ()
    #: Run the server WITHOUT a sandbox: it gets the host's files, network and
    #: processes. Logged each start; refused when the domain is strict.
    unsafe_no_sandbox: bool = False

    @field_validator("command")
    @classmethod
    def _non_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value[0].strip():
            raise ValueError("the first element must name a program")
        return value

    @field_validator("sandbox")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in BUILTIN_PROFILES:
            raise ValueError(f"no sandbox profile `{value}`; known: "
                             f"{', '.join(sorted(BUILTIN_PROFILES))}")
        return value

    @field_validator("sandbox_bind_ro")
    @classmethod
    def _absolute(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            if not path.startswith("/") or path.rstrip("/") in ("", "/"):
                raise ValueError(f"`{path}` must be an absolute path other than `/`")
        return value

    @model_validator(mode="after")
    def _one_choice(self) -> StdioServer:
        chosen = self.model_fields_set
        if self.unsafe_no_sandbox and ({"sandbox", "sandbox_bind_ro"} & chosen):
            raise ValueError("`unsafe_no_sandbox` cannot be combined with `sandbox` or "
                             "`sandbox_bind_ro`; choose one")
        return self


class HttpServer(_Upstream):
    """An upstream MCP server reached over streamable HTTP."""

    transport: Literal["http"] = "http"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class Limits(_Model):
    #: How long an upstream call may take before the caller gets an error result.
    call_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    #: Largest message in either direction: a tool result, resource or prompt passed
    #: back (bigger ones become an error), and a frame a stdio client sends (bigger
    #: ones are refused unread with a JSON-RPC error; the next frame is served).
    max_message_bytes: int = Field(default=4_000_000, gt=0, le=256_000_000)
    #: Largest HTTP request body a client may send (`--listen`); bigger ones get 413.
    max_request_bytes: int = Field(default=1_000_000, gt=0, le=64_000_000)
    #: An upstream that crashes or disconnects is started again after this many
    #: seconds, doubling on each failure in a row (up to 60 s); calls meanwhile get an
    #: error result saying when. Its tools are listed again and checked against their
    #: pins (a server that comes back changed is quarantined).
    restart_after_s: float = Field(default=1.0, gt=0, le=600)
    #: Failures in a row (each within a minute of its start) after which the upstream
    #: stays down until the gateway restarts; 0 never restarts it.
    max_restarts: int = Field(default=5, ge=0, le=1000)


class GatewayConfig(_Model):
    """Everything `warrant gateway --config FILE` reads."""

    servers: dict[str, Annotated[StdioServer | HttpServer, Field(discriminator="transport")]] = (
        Field(min_length=1))
    #: Risk class overrides by qualified name (`server/tool`); these win over annotations.
    risk: dict[str, RiskClass] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    #: Mark tool results for the model as untrusted data (`delimit`: tagged
    #: delimiters; `datamark`: also a marker between words). A hint to the model;
    #: the data-flow rules hold either way.
    spotlight: Literal["off", "delimit", "datamark"] = "off"

    @field_validator("servers", mode="before")
    @classmethod
    def _names(cls, value: object) -> object:
        if isinstance(value, dict):
            for name in value:
                if not isinstance(name, str) or not SERVER_NAME.match(name):
                    raise ValueError(
                        f"server name `{name}` must be 1-32 letters, digits or `-` "
                        "(no `_`: it separates server and tool in exposed names)")
            # Each server entry says `command` or `url`; that choice picks its transport.
            return {k: _with_transport(k, v) for k, v in value.items()}
        return value

    @field_validator("risk")
    @classmethod
    def _qualified(cls, value: dict[str, RiskClass]) -> dict[str, RiskClass]:
        for name in value:
            if not _QUALIFIED.match(name):
                raise ValueError(f"`{name}` must be a qualified tool name `SERVER/TOOL`")
        return value


def parse_gateway_config(raw: object, *, source: str = "gateway config") -> GatewayConfig:
    """Validate already-decoded config data; raises `ConfigError` naming every problem."""
    try:
        return GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors())
        raise ConfigError(f"{source} is invalid: {problems}") from exc


#: Pydantic's wording for what a person wrote, in the config's own terms.
_MESSAGES = {
    "extra_forbidden": "is not a known key (check its spelling)",
    "tuple_type": "must be a list, e.g. [\"python\", \"-m\", \"server\"]",
    "list_type": "must be a list",
}


def _problem(error: Any) -> str:
    """`where` what, as the person wrote the file: the transport tag pydantic adds to a
    server's path (`servers.time.stdio.comand`) is not in the file, so it goes."""
    loc = [str(p) for p in error["loc"]]
    if len(loc) >= 3 and loc[0] == "servers" and loc[2] in ("stdio", "http"):
        del loc[2]
    message = _MESSAGES.get(error["type"], str(error["msg"]).removeprefix("Value error, "))
    return f"`{'.'.join(loc) or '(top level)'}` {message}"


def load_gateway_config(path: Path) -> GatewayConfig:
    """Read a `.toml` or `.json` gateway config file; raises `ConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read gateway config `{path}`: {exc}") from exc
    try:
        raw: object = (json.loads(text) if path.suffix.lower() == ".json"
                       else tomllib.loads(text))
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise ConfigError(f"gateway config `{path}` is not valid {kind}: {exc}") from exc
    return parse_gateway_config(raw, source=f"gateway config `{path}`")


def _with_transport(name: str, entry: object) -> object:
    if not isinstance(entry, dict):
        # pydantic reports ValueError as a validation error (a TypeError would escape).
        raise ValueError(f"server `{name}` must be a table with `command` or `url`")  # noqa: TRY004
    if "transport" in entry:
        return entry
    if ("url" in entry) == ("command" in entry):
        raise ValueError(f"server `{name}` needs exactly one of `command` (stdio) or `url` (http)")
    return {**entry, "transport": "http" if "url" in entry else "stdio"}
