"""Sandbox profiles: what a sandboxed command may see, reach and use.

A `SandboxProfile` is a frozen value, valid by construction. Built-in profiles
are safe defaults; more come from a TOML or JSON file parsed once at the edge
with pydantic (unknown keys are errors, so a typo never widens a sandbox).
"""

from __future__ import annotations

import json
import posixpath
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._errors import SandboxProfileError

Network = Literal["none", "egress-allowlist"]
Workspace = Literal["none", "read-only"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9\-]{0,62}$")
_HOST = re.compile(r"^[a-z0-9*]([a-z0-9.\-]{0,252})?(:\d{1,5})?$")
#: Host paths no profile may bind, nor anything inside them: credentials, kernel
#: interfaces, runtime sockets.
_NEVER_BIND = ("/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/proc", "/sys", "/dev", "/run",
               "/var/run", "/boot")
#: Host paths no profile may bind whole (nor a parent of them); a named
#: subdirectory such as an interpreter prefix under /root is allowed.
_NEVER_WHOLE = ("/root", "/home", "/etc", "/var", "/tmp",  # noqa: S108 - a deny list
                "/opt", "/srv", "/mnt")
#: Path components that mark credential stores wherever they are.
_SECRET_PARTS = (".ssh", ".gnupg", ".aws", ".kube", ".docker", ".warrant", ".netrc")
#: Environment variables copied from the caller by default: harmless locale settings only.
DEFAULT_ENV_ALLOWLIST = ("LANG", "LC_ALL", "TZ")
DEFAULT_PROFILE = "none-network"


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Hard resource limits; exceeding any of them stops the command."""

    cpu_seconds: int = 10
    address_space_bytes: int = 1 << 30
    nproc: int = 64
    nofile: int = 256
    output_bytes: int = 1 << 20
    timeout_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class SandboxProfile:
    """Everything a sandbox allows. Anything not listed here is not reachable."""

    name: str
    network: Network = "none"
    #: `host` or `host:port` the egress proxy lets through (only with `egress-allowlist`).
    allowed_hosts: tuple[str, ...] = ()
    #: Extra host paths bound read-only at the same path (the base system is always bound).
    binds: tuple[str, ...] = ()
    #: Whether the caller's working directory is bound read-only at `/workspace`.
    workspace: Workspace = "none"
    #: Size of the private writable `/tmp` (a tmpfs, gone when the command ends).
    tmp_bytes: int = 64 << 20
    #: Names copied from the caller's environment; nothing else is ever inherited.
    env_allowlist: tuple[str, ...] = DEFAULT_ENV_ALLOWLIST
    limits: SandboxLimits = field(default_factory=SandboxLimits)

    def to_json(self) -> dict[str, Any]:
        limits = self.limits
        return {
            "name": self.name, "network": self.network, "allowed_hosts": list(self.allowed_hosts),
            "binds": list(self.binds), "workspace": self.workspace, "tmp_bytes": self.tmp_bytes,
            "env_allowlist": list(self.env_allowlist),
            "limits": {"cpu_seconds": limits.cpu_seconds,
                       "address_space_bytes": limits.address_space_bytes,
                       "nproc": limits.nproc, "nofile": limits.nofile,
                       "output_bytes": limits.output_bytes,
                       "timeout_seconds": limits.timeout_seconds},
        }


BUILTIN_PROFILES: Mapping[str, SandboxProfile] = {
    p.name: p for p in (
        SandboxProfile(name="none-network"),
        # Empty allowlist: nothing is reachable until a config lists hosts.
        SandboxProfile(name="egress-allowlist", network="egress-allowlist"),
        SandboxProfile(name="readonly-workspace", workspace="read-only"),
    )
}


def check_bind(path: str) -> None:
    for banned in _NEVER_BIND:
        if path == banned or path.startswith(banned + "/") or banned.startswith(path + "/"):
            raise ValueError(f"`{path}` would expose `{banned}`, which is never bound")
    for whole in _NEVER_WHOLE:
        if path == whole or whole.startswith(path + "/"):
            raise ValueError(f"`{path}` would expose all of `{whole}`; bind a subdirectory")
    if any(part in _SECRET_PARTS for part in path.split("/")):
        raise ValueError(f"`{path}` is inside a credential store")


class _LimitsModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu_seconds: int = Field(default=10, gt=0, le=3600)
    address_space_bytes: int = Field(default=1 << 30, ge=16 << 20, le=64 << 30)
    nproc: int = Field(default=64, gt=0, le=4096)
    nofile: int = Field(default=256, ge=16, le=65536)
    output_bytes: int = Field(default=1 << 20, gt=0, le=1 << 30)
    timeout_seconds: float = Field(default=30.0, gt=0, le=3600)


class _ProfileModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    network: Network = "none"
    allowed_hosts: tuple[str, ...] = ()
    binds: tuple[str, ...] = ()
    workspace: Workspace = "none"
    tmp_bytes: int = Field(default=64 << 20, ge=1 << 20, le=8 << 30)
    env_allowlist: tuple[str, ...] = DEFAULT_ENV_ALLOWLIST
    limits: _LimitsModel = _LimitsModel()

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for host in value:
            if not _HOST.match(host):
                raise ValueError(f"`{host}` is not a host name like `api.example.com:443`")
        return value

    @field_validator("binds")
    @classmethod
    def _binds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            norm = posixpath.normpath(path)
            if not path.startswith("/") or norm != path.rstrip("/") or norm == "/":
                raise ValueError(f"`{path}` must be a normalised absolute path other than `/`")
            check_bind(norm)
        return value

    @field_validator("env_allowlist")
    @classmethod
    def _env(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"`{name}` is not an environment variable name")
        return value

    def freeze(self, name: str) -> SandboxProfile:
        if self.allowed_hosts and self.network != "egress-allowlist":
            raise SandboxProfileError(
                f"profile `{name}` lists allowed_hosts but its network is `{self.network}`")
        return SandboxProfile(name=name, network=self.network, allowed_hosts=self.allowed_hosts,
                              binds=self.binds, workspace=self.workspace,
                              tmp_bytes=self.tmp_bytes, env_allowlist=self.env_allowlist,
                              limits=SandboxLimits(**self.limits.model_dump()))


def parse_profiles(raw: Mapping[str, Any], *,
                   source: str = "profiles") -> dict[str, SandboxProfile]:
    """`{"profile": {NAME: {...}}}` → profiles by name, built-ins included (file ones win)."""
    unknown = set(raw) - {"profile"}
    if unknown:
        raise SandboxProfileError(f"`{source}`: unknown top-level keys {sorted(unknown)}; "
                                  "expected only `profile`")
    table = raw.get("profile", {})
    if not isinstance(table, Mapping):
        raise SandboxProfileError(f"`{source}`: `profile` must be a table of named profiles")
    profiles = dict(BUILTIN_PROFILES)
    for name, body in table.items():
        if not _NAME.match(name):
            raise SandboxProfileError(f"`{source}`: `{name}` is not a profile name "
                                      "(lowercase letters, digits and `-`)")
        try:
            model = _ProfileModel.model_validate(body)
        except ValidationError as exc:
            problems = "; ".join(
                f"`{'.'.join(str(p) for p in e['loc']) or name}` {e['msg']}" for e in exc.errors())
            raise SandboxProfileError(f"`{source}`: profile `{name}`: {problems}") from exc
        profiles[name] = model.freeze(name)
    return profiles


def load_profiles(path: Path) -> dict[str, SandboxProfile]:
    """Profiles from a `.toml` or `.json` file, plus the built-ins."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SandboxProfileError(f"cannot read `{path}`: {exc}") from exc
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SandboxProfileError(f"`{path}` is not valid {path.suffix[1:] or 'TOML'}: {exc}") \
            from exc
    if not isinstance(raw, dict):
        raise SandboxProfileError(f"`{path}` must hold a table of profiles")
    return parse_profiles(raw, source=str(path))


def get_profile(name: str = DEFAULT_PROFILE, *,
                profiles: Mapping[str, SandboxProfile] = BUILTIN_PROFILES) -> SandboxProfile:
    try:
        return profiles[name]
    except KeyError:
        raise SandboxProfileError(
            f"no sandbox profile `{name}`; known: {', '.join(sorted(profiles))}") from None
