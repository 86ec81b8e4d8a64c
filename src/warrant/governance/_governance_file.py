"""Organisational declarations: `governance.toml` in the domain home (or `--governance FILE`).

Controls such as an acceptable-use policy or a named approver are documents and
people, not code. Warrant records them and reports them as *declared*, never as
verified. Each declaration is a table with an owner and a document reference:

    [acceptable-use]
    owner = "user:alice"
    document = "https://wiki.example/ai/acceptable-use"   # or a path, or a ticket id
    reviewed = "2025-01-15"                                # optional

A missing file is not an error (every organisational control is then `not-met`);
an unreadable or malformed one is a `ConfigError` naming the file and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pydantic

from warrant.errors import ConfigError

GOVERNANCE_FILE = "governance.toml"

#: Every declaration the catalogue's organisational controls read.
DECLARATIONS = ("acceptable-use", "named-approver", "incident-response", "access-review",
                "change-review", "baselines", "agent-approval", "risk-assessment",
                "regular-review", "committee", "pipeline-policy-checks")
#: Tables of the same file that other commands read (`[agents.NAME]`: the AI BOM's
#: model declarations); assessment leaves them alone.
OTHER_TABLES = ("agents",)


class _DeclarationModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)
    owner: str = pydantic.Field(min_length=1, max_length=200, pattern=r"\S")
    document: str = pydantic.Field(min_length=1, max_length=2000, pattern=r"\S")
    reviewed: str | None = None


@dataclass(frozen=True, slots=True)
class Declaration:
    key: str
    owner: str
    document: str
    reviewed: str | None = None


@dataclass(frozen=True, slots=True)
class GovernanceFile:
    """What the governance file declares; `path` is where it was looked for."""

    path: str
    found: bool
    declarations: MappingProxyType[str, Declaration] = field(
        default_factory=lambda: MappingProxyType({}))


def load_governance(path: Path, *, explicit: bool = False) -> GovernanceFile:
    """Read the declarations. A missing default file declares nothing; a missing
    `--governance FILE` (explicit) or a malformed file raises `ConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        if explicit:
            raise ConfigError(f"governance file `{path}` does not exist",
                              hint=f"create it with tables such as [acceptable-use] "
                                   f"(owner, document), or drop --governance to use "
                                   f"`{GOVERNANCE_FILE}` in the domain home") from exc
        return GovernanceFile(path=str(path), found=False)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read governance file `{path}`: {exc}") from exc
    try:
        raw: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"governance file `{path}` is not valid TOML: {exc}",
                          hint="each declaration is a table: [KEY] with owner = \"...\" "
                               "and document = \"...\"") from exc
    unknown = sorted(set(raw) - set(DECLARATIONS) - set(OTHER_TABLES))
    if unknown:
        raise ConfigError(f"governance file `{path}` has unknown declaration(s) "
                          f"`{'`, `'.join(unknown)}`",
                          hint=f"known declarations: {', '.join(DECLARATIONS)}")
    found: dict[str, Declaration] = {}
    for key, value in raw.items():
        if key in OTHER_TABLES:
            continue
        try:
            model = _DeclarationModel.model_validate(value)
        except pydantic.ValidationError as exc:
            problems = "; ".join(f"`{'.'.join(str(p) for p in e['loc']) or key}` {e['msg']}"
                                 for e in exc.errors())
            raise ConfigError(f"governance file `{path}`: declaration `[{key}]` is invalid: "
                              f"{problems}",
                              hint="each declaration needs `owner` and `document` "
                                   "(and optionally `reviewed`)") from exc
        found[key] = Declaration(key=key, owner=model.owner, document=model.document,
                                 reviewed=model.reviewed)
    return GovernanceFile(path=str(path), found=True, declarations=MappingProxyType(found))
