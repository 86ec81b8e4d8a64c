"""One small check per control: `check(evidence) -> ControlResult`.

Checks are pure functions of the `Evidence` snapshot (no I/O), registered by
the name the catalogue uses. Adding a control is adding a function here and an
entry in `data/controls.yaml`. A check never assumes what it cannot see: when
Warrant has no way to evidence a control, the result is `not-met` with the
reason "Warrant found no evidence of ...".
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from ._evidence import Evidence

#: Credentials must live minutes, not hours (Foundation); five minutes for Optimized.
CREDENTIAL_TTL_FOUNDATION = 900
CREDENTIAL_TTL_OPTIMIZED = 300
WARRANT_TTL_ADVANCED = 3600
WARRANT_TTL_OPTIMIZED = 900


class Status(str, enum.Enum):
    MET = "met"
    NOT_MET = "not-met"
    DECLARED = "declared"
    NOT_APPLICABLE = "not-applicable"


@dataclass(frozen=True, slots=True)
class ControlResult:
    """What a check found: the status, the evidence it read, and why it is not met."""

    status: Status
    evidence: str
    reason: str = ""

    @property
    def satisfied(self) -> bool:
        """Counts towards a tier: met, declared (organisational) or not applicable."""
        return self.status is not Status.NOT_MET


Check = Callable[[Evidence], ControlResult]
CHECKS: dict[str, Check] = {}


def check(fn: Check) -> Check:
    CHECKS[fn.__name__] = fn
    return fn


def met(evidence: str) -> ControlResult:
    return ControlResult(Status.MET, evidence)


def not_met(evidence: str, reason: str) -> ControlResult:
    return ControlResult(Status.NOT_MET, evidence, reason)


def no_evidence(of: str, seen: str) -> ControlResult:
    return ControlResult(Status.NOT_MET, seen, f"Warrant found no evidence of {of}")


def _ttl(ev: Evidence, name: str, value: int, limit: int) -> ControlResult:
    text = f"`{name}` = {value} in {ev.source('config')}"
    return met(text) if value <= limit else not_met(text, f"{value}s is longer than {limit}s")


# ---- identity ------------------------------------------------------------------------------

@check
def per_agent_key(ev: Evidence) -> ControlResult:
    active = [a for a in ev.agents if a.active]
    keys = {a.key_sha256 for a in active}
    text = f"{len(active)} active agent(s), {len(keys)} distinct key(s) in {ev.source('agents')}"
    if not active:
        return not_met(text, "no agent is registered")
    if len(keys) < len(active):
        return not_met(text, "some agents share a key (shared credentials are failed compartments)")
    return met(text)


@check
def agent_id_in_decisions(ev: Evidence) -> ControlResult:
    a = ev.audit
    text = (f"{a.decisions_sampled} recent decision record(s), {a.allowed_without_agent} "
            f"allowed without an agent, in {ev.source('audit')}; pipeline: {' → '.join(ev.stages)}")
    if "Authenticate" not in ev.stages:
        return not_met(text, "the pipeline has no authentication stage")
    if a.allowed_without_agent:
        return not_met(text, "some calls were allowed without an authenticated agent")
    return met(text)


@check
def short_lived_credentials(ev: Evidence) -> ControlResult:
    return _ttl(ev, "credential_ttl_seconds", ev.config.credential_ttl_seconds,
                CREDENTIAL_TTL_FOUNDATION)


@check
def no_embedded_credentials(ev: Evidence) -> ControlResult:
    if ev.gateway is None:
        return not_met("no gateway config given",
                       "Warrant found no evidence of how tool servers get their credentials "
                       "(pass --gateway-config)")
    found = [f"{s.name}: {', '.join(s.embedded_secrets)}" for s in ev.gateway.servers
             if s.embedded_secrets]
    text = f"{len(ev.gateway.servers)} server(s) in {ev.gateway.path}"
    if found:
        return not_met(text + f"; literal credentials at {'; '.join(found)}",
                       "static credentials are embedded in the gateway config")
    return met(text + "; no literal credential in `env` or `headers`")


@check
def x509_per_agent(ev: Evidence) -> ControlResult:
    active = [a for a in ev.agents if a.active]
    missing = [a.agent_id for a in active if not a.live_certificates]
    text = f"{len(active) - len(missing)} of {len(active)} active agent(s) hold a live X.509-SVID"
    if not active or missing:
        return not_met(text, "agents without a certificate: " + (", ".join(missing) or "no agents"))
    return met(text)


@check
def mtls_required(ev: Evidence) -> ControlResult:
    return no_evidence("mutual TLS being required on every connection",
                       "the gateway serves MCP over stdio; requests are bound to the agent's key "
                       "by proof of possession, not by a TLS client certificate")


@check
def rotation_revocation(ev: Evidence) -> ControlResult:
    ttl = ev.config.credential_ttl_seconds
    text = (f"`credential_ttl_seconds` = {ttl}; {ev.revocations} revocation(s) on record; "
            f"{ev.audit.rotations} key rotation(s) in the audit log; every call checks the "
            f"revocation list (stage CheckRevocation: {'CheckRevocation' in ev.stages})")
    if "CheckRevocation" not in ev.stages:
        return not_met(text, "the pipeline does not check revocations")
    if ttl > CREDENTIAL_TTL_FOUNDATION:
        return not_met(text, f"credentials live {ttl}s: they do not rotate within minutes")
    return met(text)


@check
def hsm_keys(ev: Evidence) -> ControlResult:
    return no_evidence("keys held in an HSM or TPM",
                       f"the domain keys are files: {', '.join(ev.key_files)} "
                       f"in {ev.source('keys')}")


@check
def remote_attestation(ev: Evidence) -> ControlResult:
    attested = sum(a.attested for a in ev.agents)
    return no_evidence("remote attestation before access",
                       f"{attested} of {len(ev.agents)} agent(s) declare an attestation digest, "
                       "but no attestation service verifies it before access")


@check
def hardware_bound_credentials(ev: Evidence) -> ControlResult:
    return no_evidence("hardware-bound credentials",
                       "agent keys are software Ed25519 keys")


# ---- access --------------------------------------------------------------------------------

@check
def default_deny(ev: Evidence) -> ControlResult:
    p = ev.policy
    text = f"{p.count} policies (revision {p.revision[:19]}) in {ev.source('policy')}"
    if p.open_permits:
        return not_met(text, "unconditional permits allow every call: " + ", ".join(p.open_permits))
    return met(text + "; no unconditional permit; Cedar denies what no permit allows")


@check
def roles_match_functions(ev: Evidence) -> ControlResult:
    active = [a for a in ev.agents if a.active]
    vague = [a.agent_id for a in active if not a.owner.strip() or len(a.purpose.strip()) < 8]
    text = (f"{len(active)} active agent(s) with owner, purpose and risk tier "
            f"in {ev.source('agents')}")
    if not active:
        return not_met(text, "no agent is registered")
    if vague:
        return not_met(text, "agents without an owner or a purpose: " + ", ".join(vague))
    return met(text)


@check
def identity_based_isolation(ev: Evidence) -> ControlResult:
    p = ev.policy
    text = (f"delegation forbids: {', '.join(p.delegation_forbids) or 'none'}; "
            f"unconditional delegation permits: {', '.join(p.open_delegation) or 'none'}")
    if p.open_delegation or p.open_permits:
        return not_met(text, "any agent may delegate to any other")
    if not p.delegation_forbids:
        return not_met(text, "no policy limits the length of delegation chains")
    return met(text)


@check
def call_limits(ev: Evidence) -> ControlResult:
    if ev.gateway is None:
        return not_met("no gateway config given", "no gateway limits to report")
    limits = ", ".join(f"{k}={v:g}" for k, v in ev.gateway.limits) or "defaults"
    return met(f"gateway limits: {limits} (friction: reported, never counted)")


@check
def abac(ev: Evidence) -> ControlResult:
    keys = ev.policy.context_keys
    wanted = {"time": {"hour", "weekday"}, "data sensitivity": {"labels", "arg_labels"},
              "risk score": {"risk_score"}}
    missing = [name for name, attrs in wanted.items() if not keys & attrs]
    text = f"policies read context attributes: {', '.join(sorted(keys)) or 'none'}"
    return not_met(text, "no policy reads " + ", ".join(missing)) if missing else met(text)


@check
def task_scoped_elevation(ev: Evidence) -> ControlResult:
    return _ttl(ev, "warrant_ttl_seconds", ev.config.warrant_ttl_seconds, WARRANT_TTL_ADVANCED)


@check
def sandbox_per_agent(ev: Evidence) -> ControlResult:
    if ev.gateway is None:
        return not_met("no gateway config given",
                       "Warrant found no evidence of where tool code runs (pass --gateway-config)")
    local = [s for s in ev.gateway.servers if s.transport == "stdio"]
    bare = [s.name for s in local if not s.sandboxed]
    host = f"bubblewrap at {ev.bwrap}" if ev.bwrap else (
        "bubblewrap is not installed here: sandboxed servers refuse to start (never run bare)")
    text = f"{len(local) - len(bare)} of {len(local)} local server(s) sandboxed; {host}"
    if bare:
        return not_met(text, "local servers run outside the sandbox: " + ", ".join(bare))
    if not local:
        return ControlResult(Status.NOT_APPLICABLE, text + "; every server is remote (http)")
    return met(text)


@check
def continuous_authorisation(ev: Evidence) -> ControlResult:
    return _ttl(ev, "credential_ttl_seconds", ev.config.credential_ttl_seconds,
                CREDENTIAL_TTL_OPTIMIZED)


@check
def jit_grants(ev: Evidence) -> ControlResult:
    return _ttl(ev, "warrant_ttl_seconds", ev.config.warrant_ttl_seconds, WARRANT_TTL_OPTIMIZED)


@check
def hardware_isolation(ev: Evidence) -> ControlResult:
    return no_evidence("microVM or confidential-computing isolation",
                       "Warrant's sandbox is Linux namespaces (bubblewrap) with a seccomp filter")


# ---- input / output ------------------------------------------------------------------------

@check
def input_validation(ev: Evidence) -> ControlResult:
    text = f"pipeline stages: {' → '.join(ev.stages)}"
    needed = {"VerifyWarrant", "InspectArguments"}
    if not needed <= set(ev.stages):
        return not_met(text, "missing stage(s): " + ", ".join(sorted(needed - set(ev.stages))))
    return met(text + " (warrant argument constraints, then argument inspection)")


@check
def output_dlp(ev: Evidence) -> ControlResult:
    mode = ev.config.redact_output
    text = f"`redact_output` = \"{mode}\" in {ev.source('config')}"
    if mode != "secrets-and-pii":
        return not_met(text, "tool output is not redacted of personal data")
    return met(text + "; every redaction is listed in the outcome's audit record")


@check
def injection_filters(ev: Evidence) -> ControlResult:
    mode = ev.config.flow_injection_detector
    text = f"`flow_injection_detector` = \"{mode}\" in {ev.source('config')}"
    return not_met(text, "the injection detector is off") if mode == "off" else met(text)


@check
def exfiltration_analysis(ev: Evidence) -> ControlResult:
    flow = ev.policy.flow_policies
    text = f"data-flow policies: {', '.join(flow) or 'none'}; stage TraceDataFlow: " \
           f"{'TraceDataFlow' in ev.stages}"
    if "flow.forbid-secret-leaving" not in flow or "TraceDataFlow" not in ev.stages:
        return not_met(text, "no data-flow rule stops secret data leaving through a sink")
    return met(text)


@check
def trained_classifier(ev: Evidence) -> ControlResult:
    mode = ev.config.flow_injection_detector
    text = (f"`flow_injection_detector` = \"{mode}\"; classifier packages missing: "
            f"{', '.join(ev.classifier_missing) or 'none'} ({ev.source('host')})")
    if mode not in ("classifier", "auto"):
        return not_met(text, "the learned classifier is not selected")
    if ev.classifier_missing:
        return not_met(text, "the learned classifier is not installed")
    return met(text)


@check
def spotlighting(ev: Evidence) -> ControlResult:
    if ev.gateway is None:
        return not_met("no gateway config given",
                       "Warrant found no evidence of spotlighting (pass --gateway-config)")
    text = f"`spotlight` = \"{ev.gateway.spotlight}\" in {ev.gateway.path}"
    return not_met(text, "spotlighting is off") if ev.gateway.spotlight == "off" else met(text)


@check
def human_approval(ev: Evidence) -> ControlResult:
    held = ev.policy.needs_approval
    text = f"needs-approval policies: {', '.join(held) or 'none'}; stage ResolveApproval: " \
           f"{'ResolveApproval' in ev.stages}; approvals expire after " \
           f"{ev.config.approval_ttl_seconds}s"
    if not held or "ResolveApproval" not in ev.stages:
        return not_met(text, "no call ever waits for a human")
    return met(text)


# ---- configuration integrity ---------------------------------------------------------------

@check
def version_control(ev: Evidence) -> ControlResult:
    if ev.git_root is None:
        return not_met(f"no `.git` in {ev.home} or its parents", "the configuration is not in "
                       "version control")
    return met(f"{ev.home} is inside the git work tree {ev.git_root}")


@check
def signed_config(ev: Evidence) -> ControlResult:
    p, gw = ev.policy, ev.gateway
    parts = [f"`require_signed_config` = {str(ev.config.require_signed_config).lower()}",
             f"policies: {p.signature} ({p.signature_detail})"]
    if gw is not None:
        parts.append(f"gateway config: {gw.signature} ({gw.signature_detail})")
    text = "; ".join(parts)
    if not ev.config.require_signed_config:
        return not_met(text, "unsigned configuration is not refused at start")
    if p.signature != "verified" or (gw is not None and gw.signature != "verified"):
        return not_met(text, "configuration does not verify against its signature")
    return met(text)


@check
def attested_images(ev: Evidence) -> ControlResult:
    return no_evidence("immutable, attested agent images",
                       f"{sum(a.attested for a in ev.agents)} agent(s) declare a digest; "
                       "nothing attests the image they run")


@check
def replace_not_patch(ev: Evidence) -> ControlResult:
    return no_evidence("agents being replaced rather than patched",
                       "Warrant does not deploy agents")


# ---- observability -------------------------------------------------------------------------

@check
def actions_logged(ev: Evidence) -> ControlResult:
    a = ev.audit
    text = f"audit log of {a.size} record(s) in {ev.source('audit')}: {a.verify_detail}"
    return met(text) if a.verified else not_met(text, "the audit log does not verify")


@check
def request_id(ev: Evidence) -> ControlResult:
    a = ev.audit
    text = (f"{a.decisions_sampled} recent decision(s), {a.without_decision_id} "
            "without a decision id")
    return not_met(text, "decisions without a request id") if a.without_decision_id else met(text)


@check
def verifiable_log(ev: Evidence) -> ControlResult:
    a = ev.audit
    text = (f"Merkle audit log, {a.verify_detail}; witnessed checkpoint covers "
            f"{a.witnessed_size if a.witnessed_size is not None else 'nothing'}; "
            f"`audit_durability` = \"{ev.config.audit_durability}\"")
    if not a.verified:
        return not_met(text, "the audit log does not verify")
    if a.witnessed_size is None:
        return not_met(text, "no signed checkpoint has been witnessed outside the database")
    if ev.config.audit_durability != "full":
        return not_met(text, "records can be lost in an OS crash")
    return met(text)


@check
def replicated_logs(ev: Evidence) -> ControlResult:
    return no_evidence("replicated logs", f"one SQLite audit log in {ev.home}")


@check
def otel_tracing(ev: Evidence) -> ControlResult:
    return no_evidence("OpenTelemetry tracing", "Warrant has no trace exporter")


@check
def siem_streaming(ev: Evidence) -> ControlResult:
    return no_evidence("SIEM streaming", "Warrant has no SIEM exporter")


@check
def provenance_replay(ev: Evidence) -> ControlResult:
    return no_evidence("reasoning capture or decision replay",
                       "decisions record arguments, flow labels and outcomes, not reasoning")


# ---- monitoring & response -----------------------------------------------------------------

def _detection(ev: Evidence, *ids: str) -> tuple[str, bool]:
    have = {d for d, _ in ev.response.detections}
    return f"detections: {', '.join(sorted(have))}", set(ids) <= have


@check
def threshold_alerts(ev: Evidence) -> ControlResult:
    text, ok = _detection(ev, "response.repeated-denials", "response.rate-anomaly")
    return met(text) if ok else not_met(text, "no rate or denial threshold detection")


def _engine_ran(ev: Evidence) -> ControlResult | None:
    r = ev.response
    if r.incidents is None:
        return not_met(f"no {ev.source('response').rsplit('; ', 1)[-1]}",
                       "the response engine has never run in this domain (start the gateway)")
    return None


@check
def automated_triage(ev: Evidence) -> ControlResult:
    r = ev.response
    return _engine_ran(ev) or met(
        f"{r.incidents} incident(s), {r.triaged_alerts} of {r.alerts} alert(s) triaged; the "
        "engine drafts a disposition for every incident")


@check
def learned_baselines(ev: Evidence) -> ControlResult:
    text, ok = _detection(ev, "response.rate-anomaly")
    return met(text + " (EWMA baseline per agent)") if ok else not_met(text, "no learned baseline")


def _playbooks(ev: Evidence) -> str:
    return "; ".join(f"{p.id} [{'/'.join(p.severities)}]: "
                     + ", ".join(f"{a} ({m})" for a, m in p.steps) for p in ev.response.playbooks)


@check
def auto_containment(ev: Evidence) -> ControlResult:
    covered = {s for p in ev.response.playbooks for s in p.severities
               if ("revoke_task", "automatic") in p.steps}
    text = f"playbooks: {_playbooks(ev)}"
    if not {"high", "critical"} <= covered:
        return not_met(text, "high and critical alerts are not contained automatically")
    return met(text)


@check
def drift_detection(ev: Evidence) -> ControlResult:
    text, _ = _detection(ev)
    return no_evidence("behavioural drift detection", text)


@check
def graduated_playbooks(ev: Evidence) -> ControlResult:
    severities = {s for p in ev.response.playbooks for s in p.severities}
    reduce = {a for p in ev.response.playbooks for a, _ in p.steps} & {
        "suspend_agent", "quarantine_agent", "kill_switch"}
    text = f"playbooks: {_playbooks(ev)}"
    if not {"medium", "high", "critical"} <= severities or not reduce:
        return not_met(text, "no graduated escalation up to privilege reduction")
    return met(text)


@check
def coordinated_containment(ev: Evidence) -> ControlResult:
    actions = {a for p in ev.response.playbooks for a, _ in p.steps}
    text = f"playbook actions: {', '.join(sorted(actions))}"
    if not {"quarantine_agent", "kill_switch"} <= actions:
        return not_met(text, "no playbook quarantines an agent or stops the fleet")
    return met(text)


# ---- governance ----------------------------------------------------------------------------

@check
def violation_detection(ev: Evidence) -> ControlResult:
    text, ok = _detection(ev, "response.repeated-denials", "response.injection-then-sink")
    return _engine_ran(ev) or (met(text) if ok else not_met(text, "no violation detection"))


@check
def compliance_metrics(ev: Evidence) -> ControlResult:
    return _engine_ran(ev) or met(
        f"{ev.response.incidents} incident(s) with opened/contained/acknowledged times "
        "(`warrant metrics`)")


@check
def governance_trail(ev: Evidence) -> ControlResult:
    n = ev.audit.governance_records
    text = f"{n} governance decision(s) in the audit log"
    return met(text) if n else not_met(text, "no governance decision has been recorded")


def declared(key: str) -> Check:
    """The check of an organisational control: a declaration with owner and document."""

    def check_declared(ev: Evidence) -> ControlResult:
        gov = ev.governance
        found = gov.declarations.get(key)
        if found is None:
            where = gov.path if gov.found else f"{gov.path} (missing)"
            return not_met(f"no `[{key}]` in {where}", f"`[{key}]` is not declared")
        reviewed = f", reviewed {found.reviewed}" if found.reviewed else ""
        return ControlResult(Status.DECLARED, f"declared in {gov.path}: owner {found.owner}, "
                             f"document {found.document}{reviewed} (not verified)")

    return check_declared


# ---- phase checks (used by the plan, not by a control) -------------------------------------

@check
def tools_pinned(ev: Evidence) -> ControlResult:
    text = f"{ev.pinned_tools} MCP tool(s) pinned in {ev.home}/state.db"
    if not ev.pinned_tools:
        return not_met(text, "no tool is pinned yet (run the gateway)")
    return met(text)


@check
def memory_guard(ev: Evidence) -> ControlResult:
    if not ev.memory_in_use:
        return not_met("no memory.db in the domain", "no agent memory goes through the guard yet")
    return met("memory.db in use: items are signed, verified on every read against the audit "
               "log, and expire by TTL (untrusted content sooner)")


def resolve(name: str) -> Check:
    """The check a catalogue entry names; `declared.KEY` builds a declaration check."""
    if name.startswith("declared."):
        return declared(name.removeprefix("declared."))
    try:
        return CHECKS[name]
    except KeyError:
        raise KeyError(f"no governance check `{name}`") from None
