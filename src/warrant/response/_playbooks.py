"""Declarative playbooks: YAML parsed once (pydantic, unknown keys rejected) into frozen values.

A playbook matches alerts by severity (and optionally detection ids) and runs
graduated steps. Each step is `automatic` or `needs_approval`. High-impact
steps (suspend, quarantine, kill switch) default to `needs_approval`; marking
one `automatic` is a load error unless the playbook says `pre_authorised: true`
(deciding in advance who may take what offline is the framework's rule).

    id: high-contain
    match: {severities: [high]}
    steps:
      - {action: notify}
      - {action: revoke_task}
      - {action: suspend_agent}          # needs approval (not pre-authorised)
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from warrant import identity
from warrant.errors import ConfigError

from ._model import Alert, Severity


class StepMode(str, enum.Enum):
    AUTOMATIC = "automatic"
    NEEDS_APPROVAL = "needs_approval"


ACTIONS = ("notify", "narrow", "revoke_task", "quarantine_memory", "kill_sandboxes",
           "suspend_agent", "quarantine_agent", "kill_switch")
#: Steps that take an agent (or everything) offline: a human decides unless pre-authorised.
HIGH_IMPACT = frozenset({"kill_sandboxes", "suspend_agent", "quarantine_agent", "kill_switch"})
#: Steps that contain: an incident's automatic ones run before anything else is recorded.
CONTAINMENT = frozenset(ACTIONS) - {"notify"}


@dataclass(frozen=True, slots=True)
class Step:
    action: str
    mode: StepMode
    url: str | None = None
    retries: int = 2
    timeout_seconds: float = 2.0


@dataclass(frozen=True, slots=True)
class Playbook:
    id: str
    description: str
    severities: frozenset[Severity]
    detections: frozenset[str]
    pre_authorised: bool
    steps: tuple[Step, ...]

    def matches(self, alert: Alert) -> bool:
        return alert.severity in self.severities and (
            not self.detections or alert.detection in self.detections)


class _StepModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)
    action: Literal["notify", "narrow", "revoke_task", "quarantine_memory", "kill_sandboxes",
                    "suspend_agent", "quarantine_agent", "kill_switch"]
    mode: Literal["automatic", "needs_approval"] | None = None
    url: pydantic.HttpUrl | None = None
    retries: int = pydantic.Field(default=2, ge=0, le=10)
    timeout_seconds: float = pydantic.Field(default=2.0, gt=0, le=30)


class _MatchModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)
    severities: list[Literal["low", "medium", "high", "critical"]] = pydantic.Field(min_length=1)
    detections: list[str] = []


class _PlaybookModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)
    version: Literal[1] = 1
    id: str = pydantic.Field(pattern=r"^[a-z0-9][a-z0-9.\-]{0,63}$")
    description: str = ""
    match: _MatchModel
    pre_authorised: bool = False
    steps: list[_StepModel] = pydantic.Field(min_length=1)


def parse_playbook(text: str, source: str = "<playbook>") -> Playbook:
    """Parse one YAML playbook. Raises `ConfigError` naming the file and the problem."""
    try:
        data: Any = yaml.safe_load(text)
        model = _PlaybookModel.model_validate(data)
    except yaml.YAMLError as exc:
        raise ConfigError(f"playbook `{source}` is not valid YAML: {exc}") from exc
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'top'}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigError(f"playbook `{source}` is invalid: {problems}") from exc
    steps = []
    for i, s in enumerate(model.steps):
        high = s.action in HIGH_IMPACT
        if s.mode == "automatic" and high and not model.pre_authorised:
            raise ConfigError(
                f"playbook `{source}` step {i + 1} (`{s.action}`) is high-impact and cannot be "
                "automatic unless the playbook is `pre_authorised: true`")
        mode = StepMode(s.mode) if s.mode else (
            StepMode.NEEDS_APPROVAL if high and not model.pre_authorised else StepMode.AUTOMATIC)
        steps.append(Step(action=s.action, mode=mode, url=str(s.url) if s.url else None,
                          retries=s.retries, timeout_seconds=s.timeout_seconds))
    return Playbook(id=model.id, description=model.description,
                    severities=frozenset(Severity(v) for v in model.match.severities),
                    detections=frozenset(model.match.detections),
                    pre_authorised=model.pre_authorised, steps=tuple(steps))


def load_playbooks(paths: Iterable[Path]) -> list[Playbook]:
    """Playbooks from YAML files, in the order given (the first match wins)."""
    result = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read playbook `{path}`: {exc.strerror}") from exc
        result.append(parse_playbook(text, str(path)))
    ids = [p.id for p in result]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"playbook ids must be unique: `{'`, `'.join(duplicates)}`")
    return result


#: A domain's own playbooks live here (in the domain home); without it, the shipped ones run.
PLAYBOOK_DIR = "playbooks"


def domain_playbooks(home: Path, public_key: Ed25519PublicKey, *,
                     require_signed: bool) -> list[Playbook]:
    """The domain's playbooks (`HOME/playbooks/*.yaml`), else the shipped defaults.

    Playbooks decide what is contained automatically, so they are configuration
    like policy: with `require_signed` they run only if the directory verifies
    against the domain's signature (`warrant config sign HOME/playbooks`).
    """
    directory = home / PLAYBOOK_DIR
    files = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    if not files:
        return default_playbooks()
    if require_signed:
        identity.verify_bundle(public_key, directory)
    return load_playbooks(files)


def default_playbooks() -> list[Playbook]:
    """The shipped playbooks: critical → contain now, memory tampering → quarantine the
    namespace, high → revoke task, medium → narrow the task to read-only, low → notify."""
    pack = resources.files("warrant.response") / "playbooks"
    return [parse_playbook((pack / name).read_text(encoding="utf-8"), f"default/{name}")
            for name in ("critical.yaml", "memory.yaml", "high.yaml", "medium.yaml",
                         "low.yaml")]
