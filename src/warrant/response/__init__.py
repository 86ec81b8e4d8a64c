"""The response engine (Agentic SOAR): detections, incidents, triage and playbooks.

`ResponseEngine(domain).start()` subscribes to a trust domain's event stream.
Single-record critical detections contain inline, before the offending call's
decision returns; stateful ones run on a worker thread. Every alert opens or
joins an incident with evidence (audit records with inclusion proofs) and a
drafted disposition; playbooks run graduated, audited steps, and high-impact
steps wait for a human unless the playbook is pre-authorised.
"""

from ._delegation import (
    DelegationConfig,
    delegation_attack,
    delegation_detections,
    delegation_new_pair,
    delegation_unusual,
)
from ._detections import (
    DetectionConfig,
    admin_action,
    canary_token,
    default_detections,
    memory_integrity,
    outside_hours,
    rate_anomaly,
    repeated_denials,
    sandbox_violation,
    tool_quarantined,
)
from ._engine import INCIDENTS_DB, INTERNAL, Observer, ResponseEngine, domain_engine
from ._export import (
    ExportDomain,
    FileSink,
    OcsfExporter,
    Sink,
    StreamSink,
    SyslogSink,
    WebhookSink,
    export_events,
    log_events,
)
from ._follow import AuditFollower, ResponseLock
from ._metrics import response_metrics
from ._model import Alert, DetectFn, Detection, Event, ResponseDomain, Severity
from ._ocsf import OCSF_VERSION, incident_to_ocsf, to_ocsf
from ._playbooks import (
    ACTIONS,
    HIGH_IMPACT,
    PLAYBOOK_DIR,
    Playbook,
    Step,
    StepMode,
    default_playbooks,
    domain_playbooks,
    load_playbooks,
    parse_playbook,
)
from ._steps import STEPS, MemoryPort, Notifier, StepContext, StepOutcome

__all__ = [  # noqa: RUF022 - plain sorted() order, like the other packages
    "ACTIONS",
    "Alert",
    "AuditFollower",
    "DetectFn",
    "Detection",
    "DelegationConfig",
    "DetectionConfig",
    "Event",
    "ExportDomain",
    "FileSink",
    "HIGH_IMPACT",
    "INCIDENTS_DB",
    "INTERNAL",
    "MemoryPort",
    "Notifier",
    "OCSF_VERSION",
    "Observer",
    "OcsfExporter",
    "PLAYBOOK_DIR",
    "Playbook",
    "ResponseLock",
    "ResponseDomain",
    "ResponseEngine",
    "STEPS",
    "Severity",
    "Sink",
    "Step",
    "StepContext",
    "StepMode",
    "StepOutcome",
    "StreamSink",
    "SyslogSink",
    "WebhookSink",
    "admin_action",
    "canary_token",
    "default_detections",
    "default_playbooks",
    "domain_engine",
    "delegation_attack",
    "delegation_detections",
    "delegation_new_pair",
    "delegation_unusual",
    "domain_playbooks",
    "export_events",
    "incident_to_ocsf",
    "load_playbooks",
    "log_events",
    "memory_integrity",
    "outside_hours",
    "parse_playbook",
    "rate_anomaly",
    "repeated_denials",
    "response_metrics",
    "sandbox_violation",
    "to_ocsf",
    "tool_quarantined",
]
