"""Enforcement: the trust domain opened, the one decision pipeline, and the `Guard` PEP."""

from ._context import CallContext, CallRequest, Stage
from ._domain import SCHEMA_FILE, STATE_DB, TrustDomain
from ._flow import SessionLedgers, TraceDataFlow
from ._guard import ApprovalRequired, Denied, Guard, GuardSession, current_session
from ._memory import MEMORY_DB, GuardedMemory
from ._messages import Envelope, InboundMessage, body_digest, message_source, receive_message
from ._pipeline import Pipeline, default_stages, session_ledgers
from ._redact import redact_arguments
from ._sandboxed import egress_recorder, record_run, sandboxed_tool
from ._telemetry import current_traceparent, instrument

__all__ = [
    "MEMORY_DB",
    "SCHEMA_FILE",
    "STATE_DB",
    "ApprovalRequired",
    "CallContext",
    "CallRequest",
    "Denied",
    "Envelope",
    "Guard",
    "GuardSession",
    "GuardedMemory",
    "InboundMessage",
    "Pipeline",
    "SessionLedgers",
    "Stage",
    "TraceDataFlow",
    "TrustDomain",
    "body_digest",
    "current_session",
    "current_traceparent",
    "default_stages",
    "egress_recorder",
    "instrument",
    "message_source",
    "receive_message",
    "record_run",
    "redact_arguments",
    "sandboxed_tool",
    "session_ledgers",
]
