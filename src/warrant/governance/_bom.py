"""The AI bill of materials: a CycloneDX 1.6 BOM of everything a trust domain runs on.

`build_bom` lists, with hashes where there is something to hash:

- the trust domain itself (the BOM's subject, `metadata.component`);
- each registered agent (an `application`, its SPIFFE ID as bom-ref) and the
  model it declares (a `machine-learning-model` it depends on). Declarations
  come from the `[agents.NAME]` table of `governance.toml` in the domain home,
  and optionally a second file with the same table::

      [agents.billing]
      model = "openai/gpt-4o@2024-08-06"      # PROVIDER/MODEL[@VERSION]
      model_card = "https://example.com/card"  # optional, a URL or document reference

  An agent without a declaration carries `warrant:model = "undeclared"`: a
  BOM never invents a model;
- each MCP server (from the gateway config and from the pins store) with its
  pinned tools as sub-components whose SHA-256 is the pinned digest;
- the Python packages of the running environment (name, version, purl, license);
- every policy file with its SHA-256 and the compiled policy revision.

Components are sorted by the library, so the same state gives the same BOM
apart from the serial number and timestamp (fix both when asked).

INVARIANT: no secret lands in a BOM: gateway `env` and `headers` are never
read here, and user information and query strings are cut from server URLs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import shlex
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.exception.model import InvalidUriException
from cyclonedx.model import (
    ExternalReference,
    ExternalReferenceType,
    HashAlgorithm,
    HashType,
    Property,
    XsUri,
)
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import License
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
from packageurl import PackageURL
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from warrant.enforce import STATE_DB, TrustDomain
from warrant.errors import ConfigError
from warrant.store import SqlitePins, ToolPin

#: The organisational declarations file in the domain home (shared with the assessment).
GOVERNANCE_FILE = "governance.toml"
#: The value of `warrant:model` for an agent that declares no model.
UNDECLARED = "undeclared"
#: The CycloneDX version Warrant writes.
SCHEMA_VERSION = SchemaVersion.V1_6
#: Warrant's own distribution name.
DISTRIBUTION = "agent-warrant"

BomFormat = Literal["json", "xml"]

_MAX_LICENSE_CHARS = 120
_DECLARATION_HINT = ('each agent is a table `[agents.NAME]` with '
                     '`model = "PROVIDER/MODEL[@VERSION]"` and an optional `model_card = "URL"`')


@dataclass(frozen=True, slots=True)
class ModelDeclaration:
    """The model an agent runs on, as an owner declared it (`PROVIDER/MODEL[@VERSION]`)."""

    reference: str
    model_card: str | None = None
    #: Where it was declared (a file path), for humans.
    source: str = ""

    @property
    def provider(self) -> str:
        return self.reference.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.reference.split("/", 1)[1].rsplit("@", 1)[0]

    @property
    def version(self) -> str | None:
        rest = self.reference.split("/", 1)[1]
        return rest.rsplit("@", 1)[1] if "@" in rest else None


@dataclass(frozen=True, slots=True)
class McpServerSpec:
    """An upstream MCP server as configured for the gateway (no env, no headers)."""

    name: str
    transport: Literal["stdio", "http"]
    command: tuple[str, ...] = ()
    url: str | None = None


# -- model declarations ----------------------------------------------------------------------

class _AgentDeclaration(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(pattern=r"^[^\s/@]+/[^\s@]+(@[^\s@]+)?$")
    model_card: str | None = Field(default=None, min_length=1)


class _Declarations(BaseModel):
    # Only `[agents]` is Warrant-BOM's; other tables belong to other readers of the file.
    model_config = ConfigDict(frozen=True, extra="ignore")

    agents: dict[str, _AgentDeclaration] = Field(default_factory=dict)


def load_model_declarations(path: Path, *, missing_ok: bool = False
                            ) -> dict[str, ModelDeclaration]:
    """Read the `[agents.NAME]` table of a TOML file; raises `ConfigError`.

    Keys are agent names (or SPIFFE IDs). With `missing_ok`, an absent file
    declares nothing.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        if missing_ok:
            return {}
        raise ConfigError(f"models file `{path}` does not exist", hint=_DECLARATION_HINT
                          ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read models file `{path}`: {exc}",
                          hint="check the path and its permissions; it must be UTF-8 TOML"
                          ) from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"models file `{path}` is not valid TOML: {exc}",
                          hint=_DECLARATION_HINT) from exc
    try:
        parsed = _Declarations.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"`{'.'.join(str(p) for p in e['loc'])}` {e['msg']}" for e in exc.errors())
        raise ConfigError(
            f"models file `{path}` is invalid: {problems}", hint=_DECLARATION_HINT) from exc
    for name, entry in parsed.agents.items():
        if entry.model_card is not None:
            _model_card_uri(entry.model_card, f"models file `{path}`, agent `{name}`")
    return {name: ModelDeclaration(entry.model, entry.model_card, str(path))
            for name, entry in parsed.agents.items()}


def declared_models(home: Path, extra: Path | None = None) -> dict[str, ModelDeclaration]:
    """The domain's `governance.toml` declarations, overridden per agent by `extra`."""
    declared = load_model_declarations(home / GOVERNANCE_FILE, missing_ok=True)
    if extra is not None:
        declared.update(load_model_declarations(extra))
    return declared


def _model_card_uri(value: str, where: str) -> XsUri:
    try:
        return XsUri(value)
    except InvalidUriException as exc:
        raise ConfigError(f"{where}: `model_card` `{value}` is not a URI reference",
                          hint=_DECLARATION_HINT) from exc


# -- the BOM --------------------------------------------------------------------------------

def build_bom(domain: TrustDomain, *, servers: Sequence[McpServerSpec] = (),
              declarations: Mapping[str, ModelDeclaration] | None = None,
              pins: Sequence[ToolPin] | None = None,
              packages: Iterable[importlib.metadata.Distribution] | None = None,
              serial_number: UUID | None = None,
              timestamp: dt.datetime | None = None) -> Bom:
    """The AI bill of materials of an opened trust domain.

    `declarations` default to the domain's `governance.toml`, `pins` to the
    pins store, `packages` to the running environment. A declaration for an
    agent that is not registered is a `ConfigError` (a typo would otherwise
    leave the real agent undeclared without a word).
    """
    if declarations is None:
        declarations = declared_models(domain.home)
    if pins is None:
        store = SqlitePins(domain.home / STATE_DB)
        try:
            pins = store.all()
        finally:
            store.close()
    subject = Component(
        type=ComponentType.APPLICATION, name=domain.domain, bom_ref=f"spiffe://{domain.domain}",
        description="Warrant trust domain",
        properties=[Property(name="warrant:policy:revision", value=domain.policies.revision)])
    bom = Bom(serial_number=serial_number, metadata=BomMetaData(
        timestamp=timestamp, component=subject,
        tools=ToolRepository(components=[_warrant_tool()])))

    agents = _agents(domain, declarations)
    for agent, model in agents:
        bom.components.add(agent)
        if model is not None and model not in bom.components:
            bom.components.add(model)
        bom.register_dependency(agent, [model] if model is not None else None)
    mcp = _mcp_servers(servers, pins)
    policies = _policies(domain)
    bom.components.update(mcp)
    bom.components.update(policies)
    bom.components.update(_packages(packages))
    bom.register_dependency(subject, [a for a, _ in agents] + mcp + policies)
    return bom


def render_bom(bom: Bom, fmt: BomFormat = "json") -> str:
    """Serialise as CycloneDX 1.6 JSON or XML (pretty-printed)."""
    output_format = OutputFormat.JSON if fmt == "json" else OutputFormat.XML
    return make_outputter(bom, output_format, SCHEMA_VERSION).output_as_string(indent=2)


def _warrant_tool() -> Component:
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return Component(type=ComponentType.APPLICATION, name="warrant", version=version,
                     purl=PackageURL(type="pypi", name=DISTRIBUTION, version=version))


def _agents(domain: TrustDomain, declarations: Mapping[str, ModelDeclaration]
            ) -> list[tuple[Component, Component | None]]:
    records = domain.store.list_agents()
    known = {r.name for r in records} | {r.agent_id for r in records}
    for key, stale in declarations.items():
        if key not in known:
            raise ConfigError(
                f"`{stale.source or GOVERNANCE_FILE}` declares a model for agent `{key}`, "
                f"which is not registered in `{domain.domain}`",
                hint="fix the agent name, or remove the stale `[agents.NAME]` table")
    result: list[tuple[Component, Component | None]] = []
    for record in sorted(records, key=lambda r: r.agent_id):
        declared = declarations.get(record.agent_id) or declarations.get(record.name)
        props = {"warrant:agent:owner": record.owner, "warrant:agent:purpose": record.purpose,
                 "warrant:agent:status": record.status.value,
                 "warrant:agent:risk-tier": record.risk_tier,
                 "warrant:model": declared.reference if declared else UNDECLARED}
        if record.attestation:
            props["warrant:agent:attestation"] = record.attestation
        agent = Component(type=ComponentType.APPLICATION, name=record.name,
                          group=domain.domain, bom_ref=record.agent_id,
                          description=record.purpose, properties=_props(props))
        result.append((agent, None if declared is None else _model(declared)))
    return result


def _model(declared: ModelDeclaration) -> Component:
    refs = [] if declared.model_card is None else [ExternalReference(
        type=ExternalReferenceType.MODEL_CARD,
        url=_model_card_uri(declared.model_card, declared.source or GOVERNANCE_FILE))]
    return Component(type=ComponentType.MACHINE_LEARNING_MODEL, name=declared.name,
                     group=declared.provider, version=declared.version,
                     bom_ref=f"model:{declared.reference}", external_references=refs,
                     properties=_props({"warrant:model:declared-in": declared.source}))


def _mcp_servers(servers: Sequence[McpServerSpec], pins: Sequence[ToolPin]) -> list[Component]:
    tools: dict[str, list[Component]] = {}
    for pin in pins:
        server, _, tool = pin.qualified_name.partition("/")
        tools.setdefault(server, []).append(_pinned_tool(pin, tool))
    configured = {s.name: s for s in servers}
    result = []
    for name in sorted(configured.keys() | tools.keys()):
        spec = configured.get(name)
        # Without a gateway config (never empty) nothing says whether a pinned server is
        # still configured, so the property appears only when one was given.
        props = {"warrant:mcp:configured": "true" if spec else "false"} if servers else {}
        if spec is not None:
            props["warrant:mcp:transport"] = spec.transport
            if spec.command:
                props["warrant:mcp:command"] = shlex.join(spec.command)
            if spec.url:
                props["warrant:mcp:url"] = _public_url(spec.url)
        result.append(Component(type=ComponentType.APPLICATION, name=name,
                                bom_ref=f"mcp-server:{name}", description="MCP server",
                                properties=_props(props), components=tools.get(name, [])))
    return result


def _pinned_tool(pin: ToolPin, tool: str) -> Component:
    props = {"warrant:mcp:tool-status": pin.status, "warrant:mcp:tool-status-reason": pin.reason,
             "warrant:mcp:pinned-at": _iso(pin.pinned_at)}
    if pin.changed:
        # The definition the gateway saw last differs from the pin: a rug pull to review.
        props["warrant:mcp:seen-digest"] = f"sha256:{pin.seen_digest}"
    if pin.decided_by:
        props["warrant:mcp:decided-by"] = pin.decided_by
    return Component(type=ComponentType.DATA, name=tool or pin.qualified_name,
                     bom_ref=f"mcp-tool:{pin.qualified_name}",
                     description="pinned MCP tool definition",
                     hashes=[HashType(alg=HashAlgorithm.SHA_256, content=pin.pinned_digest)],
                     properties=_props(props))


def _policies(domain: TrustDomain) -> list[Component]:
    policy_dir = domain.policy_dir
    files = sorted([*policy_dir.glob("*.cedar"), *policy_dir.glob("*.cedarschema")])
    result = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read policy file `{path}`: {exc.strerror}") from exc
        role = "schema" if path.suffix == ".cedarschema" else "policy"
        result.append(Component(
            type=ComponentType.FILE, name=path.name, bom_ref=f"policy:{path.name}",
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=hashlib.sha256(data).hexdigest())],
            properties=_props({"warrant:policy:role": role,
                               "warrant:policy:revision": domain.policies.revision})))
    return result


def _packages(packages: Iterable[importlib.metadata.Distribution] | None) -> list[Component]:
    dists = importlib.metadata.distributions() if packages is None else packages
    seen: dict[str, Component] = {}
    for dist in dists:
        name, version = _field(dist, "Name"), dist.version
        if not name or not version:
            continue
        purl = PackageURL(type="pypi", name=name, version=version)
        ref = purl.to_string()
        if ref in seen:  # the same distribution twice on sys.path: the first one wins
            continue
        license_ = _license(dist)
        seen[ref] = Component(type=ComponentType.LIBRARY, name=name, version=version,
                              purl=purl, bom_ref=ref,
                              licenses=[license_] if license_ is not None else [])
    return list(seen.values())


def _license(dist: importlib.metadata.Distribution) -> License | None:
    """The declared license: PEP 639 expression, else a short `License`, else a classifier."""
    text = _field(dist, "License-Expression")
    if not text:
        text = _field(dist, "License")
        # `License` often holds a whole license text; only a short name is a name.
        if "\n" in text or len(text) > _MAX_LICENSE_CHARS:
            text = ""
    if not text:
        classifiers = [c for c in (dist.metadata.get_all("Classifier") or [])
                       if c.startswith("License ::") and c.count("::") >= 2]
        text = classifiers[0].rsplit("::", 1)[1].strip() if classifiers else ""
    return LicenseFactory().make_from_string(text) if text else None


def _field(dist: importlib.metadata.Distribution, key: str) -> str:
    # `get_all` answers None for a missing field on every Python (`[]` warns on 3.12+).
    values = dist.metadata.get_all(key) or []
    return str(values[0]).strip() if values else ""


def _public_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def _props(values: Mapping[str, str]) -> list[Property]:
    return [Property(name=k, value=v) for k, v in sorted(values.items()) if v]
