"""The trust domain's configuration file (`config.toml` in the state directory).

Parsed once at the edge with pydantic; inside, a frozen value. Unknown keys are
errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from warrant.errors import ConfigError, StateError

HOME_ENV = "WARRANT_HOME"
DEFAULT_HOME = ".warrant"
CONFIG_FILE = "config.toml"
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.\-]{0,253}[a-z0-9])?$")


class DomainConfig(BaseModel):
    """Settings of one trust domain."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    domain: str
    #: Default lifetime of agent credentials, in seconds (capped by identity's maximum).
    credential_ttl_seconds: int = Field(default=600, gt=0, le=3600)
    #: Default lifetime of task warrants, in seconds.
    warrant_ttl_seconds: int = Field(default=900, gt=0, le=86400)
    #: How long a held call waits for a human, and an approval stays usable, in seconds.
    approval_ttl_seconds: int = Field(default=900, gt=0, le=7 * 86400)
    #: "full" fsyncs every group commit (survives power loss); "normal" survives a
    #: process kill but not an OS crash.
    audit_durability: Literal["full", "normal"] = "full"
    #: Sign a checkpoint every this many audit records (and on close).
    checkpoint_every: int = Field(default=1000, gt=0)
    #: Strict mode refuses every setting with `unsafe` in its name.
    strict: bool = True
    #: Refuse to start on unsigned or modified configuration (policies, gateway
    #: config); sign with `warrant config sign`. The Advanced tier requires it.
    require_signed_config: bool = False
    #: Data flow: tools (`server/tool` or `tool`) whose results are trusted like
    #: the user's own words (every other result is untrusted).
    flow_trusted_tools: tuple[str, ...] = ()
    #: Data flow: tools whose results are secret (they must not leave the organisation).
    flow_secret_tools: tuple[str, ...] = ()
    #: Data flow: the prompt-injection detector run over untrusted results, so
    #: values found only inside injected instructions are labelled `injected`:
    #: "patterns" (normalisation, decoding and known-pattern rules), "classifier"
    #: (those plus the learned classifier: more recall, more false positives on
    #: tool output; needs the classifier's packages), "auto" (the classifier when
    #: installed, else patterns), or "off".
    flow_injection_detector: Literal["auto", "patterns", "classifier", "off"] = "auto"
    #: The detector score at which untrusted text counts as injected for data
    #: flow. 0.5 is the detector's own operating point (1% false positives on its
    #: validation data); confirmed on AgentDojo's development suites (banking,
    #: slack), where 0.5 and 0.6 stop every attack and 0.7 or more lets slack's
    #: injected link through. A false positive turns benign values into
    #: `injected` ones (refused by sinks) and holds irreversible calls.
    flow_injection_threshold: float = Field(default=0.5, ge=0.0, le=1.0, allow_inf_nan=False)
    #: What is redacted from tool results before the agent sees them ("secrets":
    #: keys, tokens, passwords; "secrets-and-pii": personal data too). Every
    #: redaction is listed in the outcome's audit record.
    redact_output: Literal["secrets", "secrets-and-pii"] = "secrets"
    #: Canary (honey) tokens planted in data the agents can reach (a fake API key, a
    #: decoy account number): any call carrying one is a critical incident, and the
    #: response engine revokes the task and suspends the agent. Decoys, not secrets.
    response_canaries: tuple[str, ...] = ()

    @field_validator("response_canaries")
    @classmethod
    def _canaries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for canary in value:
            if len(canary.strip()) < 8:
                raise ValueError(f"canary `{canary}` is too short to be told from ordinary "
                                 "text (8 characters at least)")
        return value

    @field_validator("domain")
    @classmethod
    def _domain_name(cls, value: str) -> str:
        return check_domain_name(value)


def check_domain_name(value: str) -> str:
    """`value` if it is a valid trust domain name; raises `ValueError` saying what is allowed."""
    if not _DOMAIN.match(value):
        raise ValueError(
            "must be a DNS-like name of lowercase letters, digits, `.` and `-` "
            "(for example `acme.example`)"
        )
    return value


def resolve_home(home: str | os.PathLike[str] | None) -> Path:
    """--home, else $WARRANT_HOME, else ./.warrant."""
    if home:
        return Path(home)
    env = os.environ.get(HOME_ENV)
    return Path(env) if env else Path(DEFAULT_HOME)


def load_config(home: Path) -> DomainConfig:
    path = home / CONFIG_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise StateError(f"no trust domain at `{home}` (missing `{CONFIG_FILE}`)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"cannot read `{path}`: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"`{path}` is not valid TOML: {exc}") from exc
    try:
        return DomainConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"`{'.'.join(str(p) for p in e['loc'])}` {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"`{path}` is invalid: {problems}") from exc


def render_config(config: DomainConfig) -> str:
    """TOML text for a config (scalars and lists of strings, so a tiny writer is enough)."""
    lines = ["# Warrant trust domain configuration. Unknown keys are rejected."]
    for key, value in config.model_dump().items():
        if isinstance(value, tuple | list):
            text = "[" + ", ".join(_toml_string(str(v)) for v in value) + "]"
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = str(value)
        elif isinstance(value, float):
            text = repr(value)  # a TOML float ("0.5"), as a person would write it
        else:
            text = _toml_string(str(value))
        lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
