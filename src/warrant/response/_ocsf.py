"""Audit records and incidents as OCSF 1.7 events, for a SIEM.

Every event is built as plain JSON with OCSF's field names, then validated by
the `pydantic-ocsf` models of the OCSF 1.7.0 schema (they also fill the
derived fields: `class_uid`, `category_uid`, `type_uid`, `severity`). A record
that cannot be expressed raises `ValueError`; nothing is exported half-valid.

| Warrant | OCSF class | notes |
|---|---|---|
| `decision` record | API Activity (6003) | `action_id`/`disposition_id` from the effect |
| `outcome` record | API Activity (6003) | `status_id` from the tool's status |
| `event` record (memory writes) | API Activity (6003) | `api.operation` = `memory.*` |
| `admin` record on an agent's account | Account Change (3001) | register, retire, rotate |
| other `admin` records | API Activity (6003) | `actor.user` = the person (`by`) or Warrant |
| incident | Incident Finding (2005) | one `finding_info` per alert |

Effects: allow → `action_id` 1 Allowed, `disposition_id` 1 Allowed; deny → 2
Denied, 2 Blocked; needs-approval → 99 Other ("Needs Approval"), 14 Delayed
(the call waits for a human). OCSF has no field for a principal chain: its
first element is `actor.invoked_by` and the whole chain rides in `unmapped`,
with the reasons and the latency.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from warrant.audit import AuditRecord
from warrant.store import Incident

OCSF_VERSION = "1.7.0"
#: `metadata.log_name` of events exported from the audit log.
LOG_NAME = "warrant.audit/v1"

# (action_id, action, disposition_id, disposition, severity_id, status_id, status) per effect.
_EFFECTS: Mapping[str, tuple[int, str, int, str, int, int, str]] = {
    "allow": (1, "Allowed", 1, "Allowed", 1, 1, "Success"),
    "deny": (2, "Denied", 2, "Blocked", 3, 2, "Failure"),
    "needs-approval": (99, "Needs Approval", 14, "Delayed", 2, 99, "Pending Approval"),
}
_SEVERITY_ID: Mapping[str, int] = {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
# Incident status → (status_id, status label) of the Incident Finding class.
_INCIDENT_STATUS: Mapping[str, tuple[int, str]] = {
    "open": (1, "New"), "acked": (2, "In Progress"), "contained": (2, "In Progress"),
    "closed": (5, "Closed"),
}
# Admin actions about an agent's account → (Account Change activity_id, activity_name).
_ACCOUNT_ACTIONS: Mapping[str, tuple[int, str]] = {
    "agent.register": (1, "Create"),
    "agent.retire": (5, "Disable"),
    "agent.rotate": (99, "Rotate Key"),
    "credential.revoke-all": (99, "Revoke Credentials"),
}
_CREATE_SUFFIXES = (".init", ".issue", ".mint", ".register")


@functools.cache
def _models() -> Mapping[str, Any]:
    # Imported on first use: the models are built from the schema at import (~0.3 s),
    # which every other CLI command should not pay.
    from ocsf.v1_7_0 import events  # noqa: PLC0415 - deferred on purpose, see above

    return {"api_activity": events.ApiActivity, "account_change": events.AccountChange,
            "incident_finding": events.IncidentFinding}


@functools.cache
def _product() -> dict[str, str]:
    try:
        version = importlib.metadata.version("agent-warrant")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        version = "0"
    return {"name": "Warrant", "vendor_name": "Warrant", "uid": "agent-warrant",
            "version": version}


def epoch_ms(time: str) -> int:
    """An audit record's RFC 3339 UTC time as OCSF's epoch milliseconds."""
    parsed = datetime.strptime(time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _validated(model: str, event: dict[str, Any]) -> dict[str, Any]:
    parsed = _models()[model].model_validate(event)
    dumped: dict[str, Any] = parsed.model_dump(mode="json", exclude_none=True, by_alias=True)
    return dumped


def _metadata(record: AuditRecord, uid: str | None, seq: int | None, tenant: str | None,
              profiles: list[str]) -> dict[str, Any]:
    return {"version": OCSF_VERSION, "product": _product(), "uid": uid,
            "correlation_uid": record.decision_id, "sequence": seq, "tenant_uid": tenant,
            "log_name": LOG_NAME, "original_time": record.time, "profiles": profiles or None,
            "event_code": f"{record.kind}:{record.tool}" if record.tool else record.kind}


def _agent_user(agent: str | None) -> dict[str, Any]:
    if agent is None:
        return {"name": "unknown", "type": "Unknown", "type_id": 0}
    return {"uid": agent, "name": agent.rsplit("/", 1)[-1], "type": "AI Agent", "type_id": 99}


def _person_or_system(by: object) -> dict[str, Any]:
    if isinstance(by, str) and by.startswith("user:"):
        return {"uid": by, "name": by.removeprefix("user:"), "type": "User", "type_id": 1}
    if isinstance(by, str) and by.startswith("spiffe://"):
        return _agent_user(by)
    return {"name": str(by) if isinstance(by, str) else "warrant", "type": "System",
            "type_id": 3}


def _actor(record: AuditRecord, user: dict[str, Any]) -> dict[str, Any]:
    actor: dict[str, Any] = {"user": user, "app_name": "Warrant"}
    if record.task_id:
        # A warrant scopes one task: the task is the agent's session.
        actor["session"] = {"uid": record.task_id}
    if record.principal_chain:
        actor["invoked_by"] = record.principal_chain[0]
    return actor


def _api(record: AuditRecord, operation: str) -> dict[str, Any]:
    server, _, _tool = operation.rpartition("/")
    api: dict[str, Any] = {"operation": operation}
    if server and "://" not in operation:
        api["service"] = {"name": server}
    if record.decision_id:
        data: dict[str, Any] = {}
        if record.arguments_redacted:
            data["arguments"] = record.to_json()["arguments_redacted"]
        if record.argument_digest:
            data["argument_digest"] = record.argument_digest
        api["request"] = {"uid": record.decision_id, "data": data or None}
    return api


def _trace(record: AuditRecord, end_ms: int) -> dict[str, Any] | None:
    # Set by the pipeline when the decision ran inside a trace (W3C trace context).
    detail = record.detail or {}
    trace_id, span_id = detail.get("trace_id"), detail.get("span_id")
    if not isinstance(trace_id, str):
        return None
    trace: dict[str, Any] = {"uid": trace_id}
    if isinstance(span_id, str):
        start = end_ms - int((record.latency_us or 0) / 1000)
        trace["span"] = {"uid": span_id, "operation": "warrant.decide",
                         "start_time": start, "end_time": end_ms}
    return trace


def _unmapped(record: AuditRecord) -> dict[str, Any] | None:
    unmapped = {"principal_chain": list(record.principal_chain) or None,
                "reasons": [dict(r) for r in record.reasons] or None,
                "latency_us": record.latency_us,
                "detail": record.to_json()["detail"]}
    kept = {k: v for k, v in unmapped.items() if v is not None}
    return kept or None


def _decision(record: AuditRecord, seq: int | None, tenant: str | None) -> dict[str, Any]:
    effect = record.effect or "deny"
    if effect not in _EFFECTS:
        raise ValueError(f"unknown effect `{effect}`")
    action_id, action, disp_id, disp, severity_id, status_id, status = _EFFECTS[effect]
    time = epoch_ms(record.time)
    codes = [r["code"] for r in record.reasons]
    tool = record.tool or "unknown"
    return {
        "activity_id": 99, "activity_name": "Call Tool",
        "time": time, "severity_id": severity_id,
        "status_id": status_id, "status": status,
        "status_detail": ", ".join(codes)[:1000] or None,
        "message": f"{effect}: {tool} for {record.agent or 'an unauthenticated caller'}",
        "action_id": action_id, "action": action,
        "disposition_id": disp_id, "disposition": disp,
        "policy": {"uid": record.policy_revision, "name": "warrant policy set"}
        if record.policy_revision else None,
        "metadata": _metadata(record, record.decision_id, seq, tenant,
                              ["security_control", *(["trace"] if _trace(record, time) else [])]),
        "actor": _actor(record, _agent_user(record.agent)),
        "api": _api(record, tool),
        "src_endpoint": {"uid": record.agent, "svc_name": "agent"},
        "resources": [{"type": "Tool", "name": tool, "uid": tool}],
        "trace": _trace(record, time),
        "unmapped": _unmapped(record),
    }


def _outcome(record: AuditRecord, seq: int | None, tenant: str | None) -> dict[str, Any]:
    outcome: dict[str, Any] = record.to_json()["outcome"] or {}
    ok = outcome.get("status") == "ok"
    tool = record.tool or "unknown"
    response = {"code": None, "error": outcome.get("error") if not ok else None,
                "data": {k: v for k, v in outcome.items() if k not in ("status", "error")}
                or None,
                "message": "ok" if ok else "error"}
    return {
        "activity_id": 99, "activity_name": "Tool Result",
        "time": epoch_ms(record.time), "severity_id": 1 if ok else 2,
        "status_id": 1 if ok else 2, "status": "Success" if ok else "Failure",
        "message": f"{tool} returned {'ok' if ok else 'an error'}",
        "metadata": _metadata(record, f"{record.decision_id}/outcome", seq, tenant, []),
        "actor": _actor(record, _agent_user(record.agent)),
        "api": {**_api(record, tool), "response": response},
        "src_endpoint": {"uid": record.agent, "svc_name": "agent"},
        "resources": [{"type": "Tool", "name": tool, "uid": tool}],
        "unmapped": _unmapped(record),
    }


def _admin(record: AuditRecord, seq: int | None, tenant: str | None) -> tuple[str, dict[str, Any]]:
    action = record.tool or "admin"
    detail = dict(record.detail or {})
    actor = _actor(record, _person_or_system(detail.get("by")))
    base = {"time": epoch_ms(record.time), "severity_id": 1, "status_id": 1,
            "status": "Success", "message": f"admin: {action}",
            "metadata": _metadata(record, record.decision_id, seq, tenant, []),
            "actor": actor, "unmapped": _unmapped(record)}
    subject = detail.get("agent")
    if action in _ACCOUNT_ACTIONS and isinstance(subject, str):
        activity_id, name = _ACCOUNT_ACTIONS[action]
        return "account_change", {**base, "activity_id": activity_id, "activity_name": name,
                                  "user": _agent_user(subject)}
    activity = (1, "Create") if action.endswith(_CREATE_SUFFIXES) else (99, action)
    return "api_activity", {**base, "activity_id": activity[0], "activity_name": activity[1],
                            "api": {"operation": action,
                                    "request": {"uid": record.decision_id or action}},
                            "src_endpoint": {"svc_name": "warrant"}}


def to_ocsf(record: AuditRecord, *, seq: int | None = None,
            tenant: str | None = None) -> dict[str, Any]:
    """One audit record as an OCSF 1.7 event (plain JSON), validated.

    `seq` (the record's position in the log) becomes `metadata.sequence`;
    `tenant` (the trust domain) becomes `metadata.tenant_uid`.
    """
    match record.kind:
        case "decision":
            # Every tool call Warrant decided: who, what, and the verdict.
            return _validated("api_activity", _decision(record, seq, tenant))
        case "outcome":
            # What an allowed call returned (digest and size, never the content).
            return _validated("api_activity", _outcome(record, seq, tenant))
        case "admin":
            # Account changes for agents; every other administrative action as API activity.
            return _validated(*_admin(record, seq, tenant))
        case "event":
            # Memory writes and other events: recorded actions, allowed by construction.
            event = _outcome(record, seq, tenant) if record.outcome else {
                **_admin(record, seq, tenant)[1], "activity_id": 99,
                "activity_name": record.tool or "event",
                "api": _api(record, record.tool or "event"),
                "actor": _actor(record, _agent_user(record.agent)),
                "message": f"event: {record.tool}"}
            return _validated("api_activity", event)
        case other:  # pragma: no cover - AuditRecord rejects unknown kinds
            raise ValueError(f"unknown record kind `{other}`")


def incident_to_ocsf(incident: Incident, *, tenant: str | None = None) -> dict[str, Any]:
    """An incident as an OCSF 1.7 Incident Finding (2005), one `finding_info` per alert."""
    status_id, status = _INCIDENT_STATUS.get(incident.status, (1, "New"))
    activity_id = (3 if incident.status == "closed"
                   else 2 if incident.updated_at > incident.opened_at else 1)
    person = incident.closed_by or incident.acked_by
    findings = [{
        "uid": alert["alert_id"], "title": str(alert["summary"])[:500],
        "analytic": {"uid": alert["detection"], "name": alert["detection"],
                     "type": "Rule", "type_id": 1},
        "created_time": int(alert["at"] * 1000),
        "first_seen_time": int(alert["event_at"] * 1000),
        "related_events": [{"uid": str(s)} for s in alert["seqs"]] or None,
        "product": _product(),
    } for alert in incident.alerts] or [{"uid": incident.incident_id, "title": incident.title}]
    event = {
        "activity_id": activity_id, "time": int(incident.updated_at * 1000),
        "start_time": int(incident.first_event_at * 1000),
        "end_time": int(incident.closed_at * 1000) if incident.closed_at else None,
        "severity_id": _SEVERITY_ID.get(incident.severity, 0),
        "status_id": status_id, "status": status,
        "status_detail": incident.status, "desc": incident.title,
        "metadata": {"version": OCSF_VERSION, "product": _product(),
                     "uid": incident.incident_id, "tenant_uid": tenant,
                     "profiles": ["incident"]},
        "finding_info_list": findings,
        # OCSF asks for an assignee or a group: a person once acknowledged, else the queue.
        "assignee": _person_or_system(person) if person else None,
        "assignee_group": None if person else {"name": "warrant incident queue"},
        "comment": (incident.disposition or {}).get("what_happened"),
        "unmapped": {"agent": incident.agent, "task_id": incident.task_id,
                     "detections": incident.detections,
                     "contained_at": incident.contained_at},
    }
    return _validated("incident_finding", event)
